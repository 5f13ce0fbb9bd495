package doctor

import (
	"context"
	"fmt"

	"github.com/waqhq/waq/deadletter"
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
	since := o.Since.String()
	if st.Total == 0 {
		r.Status, r.Detail = OK, "no job parked in the last "+since
		return r
	}
	r.Status = Warn
	r.Detail = fmt.Sprintf("%d parked in the last %s: %s", st.Total, since, st.Verdict)
	// The verdict in the detail already says where the failures
	// concentrate ("... go to one recipient", "...: broad"); the fix says
	// what to do about it without repeating that.
	switch st.Isolation {
	case "code", "account":
		// What the failures share is their code or reason: its next step.
		if st.Advice != nil {
			r.Fix = st.Advice.Next
		}
	case "recipient":
		r.Fix = "check that recipient first: is it on WhatsApp, did it block the business?"
		if st.Recipients > 1 && st.Advice != nil {
			r.Fix = st.Advice.Next
		}
	case "template":
		r.Fix = "run waq doctor --template NAME --language CODE, and check the template's status in WhatsApp Manager"
		if len(st.ByTemplate) > 1 {
			r.Fix = "check each template in WhatsApp Manager › Message templates (status, languages, parameters); waq doctor --template NAME --language CODE checks one"
		}
	case "phone_number":
		r.Fix = "run waq doctor --phone-number-id P; check the number's status, quality and limits"
	default:
		r.Fix = "check the token and Meta's status page, then waq dlq export for a support ticket (fbtrace_id included)"
	}
	return r
}
