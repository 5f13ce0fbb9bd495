package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/policy"
)

// DeadLetters is what the dead-letters check counted, for machines
// (`--json`'s "dead_letters"). It names no recipient.
type DeadLetters struct {
	// Parked is the number of jobs parked in the last --since.
	Parked int64 `json:"parked"`
	// ByPhoneNumber and ByUserID split them by how the job addressed its
	// recipient: message.to (a number) or message.recipient (a
	// business-scoped user ID).
	ByPhoneNumber int64 `json:"addressed_by_phone_number"`
	ByUserID      int64 `json:"addressed_by_user_id"`
	// UserIDNotSupported counts those Meta refused with 131062 (a BSUID
	// recipient not supported for that message); NotAllowed those refused
	// with 131030 (the recipient is not in a test number's allowed list).
	UserIDNotSupported int64 `json:"user_id_not_supported"`
	NotAllowed         int64 `json:"recipient_not_allowed"`
}

// The codes the check gives advice of their own for, however the rest of
// the failures are spread: each says what to change in the job or the app.
const (
	codeUserIDNotSupported = 131062
	codeNotAllowed         = 131030
)

func (o Options) checkDeadLetters(ctx context.Context) Result {
	r := Result{Check: "dead_letters"}
	f, err := deadletter.Params{Since: o.Since.String()}.Filter()
	if err != nil {
		r.Status, r.Detail = Fail, err.Error()
		return r
	}
	st, err := o.Store.Stats(ctx, f)
	if err != nil {
		r.Status, r.Detail = Fail, "dead-letter store unreadable: "+err.Error()
		r.Fix = "check WAQ_REDIS_URL"
		return r
	}
	dl := DeadLetters{
		Parked: st.Total, ByUserID: st.UserIDEntries, ByPhoneNumber: st.Total - st.UserIDEntries,
		UserIDNotSupported: st.ByCode[strconv.Itoa(codeUserIDNotSupported)], NotAllowed: st.ByCode[strconv.Itoa(codeNotAllowed)],
	}
	r.DeadLetters = &dl
	since := o.Since.String()
	if st.Total == 0 {
		r.Status, r.Detail = OK, "no job parked in the last "+since
		return r
	}
	r.Status = Warn
	r.Detail = fmt.Sprintf("%d parked in the last %s", st.Total, since)
	if dl.ByUserID > 0 {
		r.Detail += fmt.Sprintf(" (%d addressed by business-scoped user ID, %d by phone number)", dl.ByUserID, dl.ByPhoneNumber)
	}
	r.Detail += ": " + st.Verdict
	r.Fix = isolationFix(st)
	var codes []string
	for _, c := range []struct {
		code int
		n    int64
	}{{codeUserIDNotSupported, dl.UserIDNotSupported}, {codeNotAllowed, dl.NotAllowed}} {
		if c.n == 0 {
			continue
		}
		a, _ := policy.CodeAdvice(c.code)
		jobs := "jobs"
		if c.n == 1 {
			jobs = "job"
		}
		codes = append(codes, fmt.Sprintf("%d (%d %s): %s", c.code, c.n, jobs, a.Next))
	}
	switch {
	case len(codes) == 0:
	case len(st.ByCode) == 1:
		// The isolation's fix is that code's advice already.
		r.Fix = codes[0]
	default:
		r.Fix = strings.Join(append(codes, r.Fix), "; ")
	}
	return r
}

// isolationFix says what to do about where the failures concentrate; the
// verdict in the detail already says where ("... go to one recipient",
// "...: broad"), so the fix does not repeat it.
func isolationFix(st *deadletter.Stats) string {
	switch st.Isolation {
	case "code", "account":
		// What the failures share is their code or reason: its next step.
		if st.Advice != nil {
			return st.Advice.Next
		}
	case "recipient":
		if st.Recipients > 1 && st.Advice != nil {
			return st.Advice.Next
		}
		return "check that recipient first: is it on WhatsApp, did it block the business?"
	case "template":
		if len(st.ByTemplate) > 1 {
			return "check each template in WhatsApp Manager › Message templates (status, languages, parameters); waq doctor --template NAME --language CODE checks one"
		}
		return "run waq doctor --template NAME --language CODE, and check the template's status in WhatsApp Manager"
	case "phone_number":
		return "run waq doctor --phone-number-id P; check the number's status, quality and limits"
	default:
		return "check the token and Meta's status page, then waq dlq export for a support ticket (fbtrace_id included)"
	}
	return ""
}
