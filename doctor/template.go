package doctor

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/waqhq/waq/numbers"
)

type templatesPage struct {
	Data []struct {
		Name     string `json:"name"`
		Language string `json:"language"`
		Status   string `json:"status"`
		Category string `json:"category"`
	} `json:"data"`
}

func (o Options) checkTemplate(ctx context.Context, num numbers.Number) Result {
	r := Result{Check: "template"}
	waba := o.WABAID
	if waba == "" {
		waba = num.WABAID
	}
	if waba == "" {
		r.Status, r.Detail = Fail, "no WABA id to look the template up in"
		r.Fix = "give --waba-id, or list the number with its waba_id in WAQ_PHONE_NUMBERS_FILE"
		return r
	}
	var page templatesPage
	err := o.Graph.Get(ctx, url.PathEscape(waba)+"/message_templates",
		url.Values{"name": {o.Template}, "limit": {"100"}, "fields": {"name,language,status,category"}}, num.Token(), &page)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("templates of WABA %s could not be read: %v", waba, err)
		r.Fix = "check the WABA id and that the token has whatsapp_business_management"
		return r
	}
	var langs []string
	for _, t := range page.Data {
		if t.Name != o.Template {
			continue
		}
		langs = append(langs, t.Language)
		if o.Language != "" && t.Language != o.Language {
			continue
		}
		r.Detail = fmt.Sprintf("template %q (%s, %s) is %s", t.Name, t.Language, strings.ToLower(t.Category), t.Status)
		switch strings.ToUpper(t.Status) {
		case "APPROVED":
			r.Status = OK
		case "PAUSED":
			r.Status, r.Fix = Fail, "the template is paused for low quality (132015): edit it or wait for Meta to unpause it; sends fail until then"
		case "DISABLED":
			r.Status, r.Fix = Fail, "the template is disabled (132016): create a new template"
		case "PENDING", "IN_APPEAL":
			r.Status, r.Fix = Warn, "the template is not approved yet: sends fail with 132001 until it is"
		default:
			r.Status, r.Fix = Fail, "the template cannot be sent in state "+t.Status+": fix it in WhatsApp Manager"
		}
		return r
	}
	r.Status = Fail
	if len(langs) > 0 {
		r.Detail = fmt.Sprintf("template %q exists in %s but not in %s", o.Template, strings.Join(langs, ", "), o.Language)
		r.Fix = "send with one of those language codes, or add the translation (132001 otherwise)"
		return r
	}
	r.Detail = fmt.Sprintf("template %q does not exist in WABA %s", o.Template, waba)
	r.Fix = "check the name (case matters) or create it; a missing template fails with 132001"
	return r
}
