package fakegraph

import (
	"strconv"
	"strings"
)

// templateBody is the template object of a send, as far as the simulator
// checks it.
type templateBody struct {
	Name     *string `json:"name"`
	Language *struct {
		Code   string `json:"code"`
		Policy string `json:"policy"`
	} `json:"language"`
	Components []struct {
		Type       string `json:"type"`
		Parameters count  `json:"parameters"`
	} `json:"components"`
}

// checkTemplate checks a template send against the templates that exist:
// to a BSUID (bsuid) an authentication template fails with 131062, on the
// Marketing Messages API (api) a template that is not a marketing one with
// 100.
func (sn *snapshot) checkTemplate(tb *templateBody, waba string, bsuid bool, api string) *errSpec {
	name, lang := *tb.Name, tb.Language.Code
	var t *templateInfo
	for _, ti := range sn.templates[name] {
		if ti.language == lang && (ti.WABAID == "" || ti.WABAID == waba) {
			t = ti
			break
		}
	}
	if t == nil {
		e := codeError(132001)
		e.details = "template name (" + name + ") does not exist in " + lang
		e.userMsg = e.details
		return e
	}
	switch t.Status {
	case "APPROVED":
	case "PAUSED":
		e := codeError(132015)
		e.details = "Template " + name + " is paused due to low quality and cannot be sent."
		return e
	case "DISABLED":
		e := codeError(132016)
		e.details = "Template " + name + " has been paused too many times due to low quality and is now permanently disabled."
		return e
	default:
		e := codeError(132001)
		e.details = "template name (" + name + ") does not exist in " + lang + " (status " + t.Status + ")"
		e.userMsg = e.details
		return e
	}
	if bsuid && t.Category == "AUTHENTICATION" {
		e := codeError(131062)
		e.details = "Template " + name + " is an authentication template: send it to a phone number, not a business-scoped user ID."
		return e
	}
	if api == APIMarketingMessages && t.Category != "MARKETING" {
		return invalidParam("(#100) Invalid parameter", "Template "+name+" is a "+t.Category+" template: the Marketing Messages API sends marketing templates only.")
	}
	got := 0
	for _, c := range tb.Components {
		if strings.EqualFold(c.Type, "body") {
			got += int(c.Parameters)
		}
	}
	if got != t.BodyParams {
		e := codeError(132000)
		e.details = "body: number of localizable_params (" + strconv.Itoa(got) + ") does not match the expected number of params (" + strconv.Itoa(t.BodyParams) + ")"
		e.userMsg = e.details
		return e
	}
	return nil
}
