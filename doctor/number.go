package doctor

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/waqhq/waq/numbers"
)

// phoneNode is the phone number's fields.
type phoneNode struct {
	ID                 string `json:"id"`
	Status             string `json:"status"`
	QualityRating      string `json:"quality_rating"`
	VerifiedName       string `json:"verified_name"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	NameStatus         string `json:"name_status"`
	Throughput         *struct {
		Level string `json:"level"`
	} `json:"throughput"`
}

func (o Options) checkNumber(ctx context.Context, num numbers.Number) Result {
	r := Result{Check: "phone_number"}
	var p phoneNode
	err := o.Graph.Get(ctx, url.PathEscape(num.PhoneNumberID),
		url.Values{"fields": {"status,quality_rating,verified_name,display_phone_number,name_status,throughput"}}, num.Token(), &p)
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("phone number %s could not be read: %v", num.PhoneNumberID, err)
		r.Fix = "check the phone_number_id (Business Manager → WhatsApp Manager → Phone numbers) and that the token's System User has the WABA assigned"
		return r
	}
	name := strings.TrimSpace(p.DisplayPhoneNumber + " " + quoteIf(p.VerifiedName))
	r.Detail = fmt.Sprintf("%s (%s): status %s, quality %s", num.PhoneNumberID, name, orDash(p.Status), orDash(p.QualityRating))
	if p.Throughput != nil && p.Throughput.Level != "" {
		r.Detail += ", throughput " + p.Throughput.Level
	}
	r.Status = OK
	switch strings.ToUpper(p.Status) {
	case "CONNECTED", "":
	case "FLAGGED":
		r.Status, r.Fix = Warn, "the number is flagged for low quality: improve message quality before its messaging limit is lowered"
	default:
		r.Status, r.Fix = Fail, "the number cannot send in state "+p.Status+": resolve it in WhatsApp Manager (registration, display name, account restrictions)"
	}
	switch strings.ToUpper(p.QualityRating) {
	case "RED":
		r.Status, r.Fix = Fail, "quality rating is red: pause campaigns to this audience, check opt-ins and template content, or the number will be restricted"
	case "YELLOW":
		if r.Status == OK {
			r.Status, r.Fix = Warn, "quality rating is yellow: review recent templates and audience opt-in"
		}
	}
	return r
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func quoteIf(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}
