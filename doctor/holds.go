package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/waqhq/waq/throttle"
)

// Hold is what a holds check found, for machines (`--json`'s "hold"): a
// template held, a template's quality RED, a number FLAGGED, an account
// restricted, jobs in the hold set. Jobs are counted as a whole (the hold
// set's size), not by template.
type Hold struct {
	// Kind is template, template_quality, number_quality, account or
	// held_jobs.
	Kind     string `json:"kind"`
	Template string `json:"template,omitempty"`
	Language string `json:"language,omitempty"`
	WABAID   string `json:"waba_id,omitempty"`
	// Status is the template's status, its quality (RED), the number's
	// event (FLAGGED), or the account's scope (waba).
	Status             string    `json:"status"`
	Reason             string    `json:"reason,omitempty"`
	DisplayPhoneNumber string    `json:"display_phone_number,omitempty"`
	CurrentLimit       string    `json:"current_limit,omitempty"`
	Since              time.Time `json:"since,omitzero"`
	// Until is when one job tries a template learned paused from a send
	// again, or when an account restriction expires.
	Until time.Time `json:"until,omitzero"`
	// PhoneNumberIDs are the numbers an account pause stops (those of the
	// phone-number file in that WABA).
	PhoneNumberIDs []string `json:"phone_number_ids,omitempty"`
	// Marketing is what happens to marketing sends under a low quality
	// (WAQ_LOW_QUALITY_MARKETING: hold, slow or send).
	Marketing string `json:"marketing,omitempty"`
	// Jobs is how many jobs wait in the hold set (kind held_jobs).
	Jobs int64 `json:"jobs,omitempty"`
}

// checkHolds reports what the workers hold for Meta's account webhooks (or
// a 132015/132016), as they share it in Redis: one result per hold, or one
// "holds" result saying nothing is held.
func (o Options) checkHolds(ctx context.Context) []Result {
	hs, err := throttle.ReadHolds(ctx, o.Redis, o.KeyPrefix)
	if err != nil {
		return []Result{{Check: "holds", Status: Fail, Detail: "the holds could not be read from Redis: " + err.Error(), Fix: "check WAQ_REDIS_URL"}}
	}
	var out []Result
	for _, t := range hs.Templates {
		if t.Status != "" && t.Status != "APPROVED" && t.Status != "REINSTATED" {
			out = append(out, o.templateHold(t))
		}
		if strings.EqualFold(t.Quality, "RED") {
			what := fmt.Sprintf("template %s (%s%s) quality RED since %s", t.Name, t.Language, inWABA(t.WABAID), stamp(t.QualitySince))
			out = append(out, o.lowQuality("template_quality", what, "edit the template or pause the campaigns that use it: a RED template gets paused by Meta (132015)",
				Hold{Kind: "template_quality", Template: t.Name, Language: t.Language, WABAID: t.WABAID, Status: "RED", Since: t.QualitySince}))
		}
	}
	for _, q := range hs.Numbers {
		what := fmt.Sprintf("phone number %s FLAGGED since %s", q.DisplayPhoneNumber, stamp(q.Since))
		if q.CurrentLimit != "" {
			what += " (messaging limit " + q.CurrentLimit + ")"
		}
		out = append(out, o.lowQuality("number_quality", what, "improve the number's quality (opt-ins, fewer marketing sends) before Meta lowers its messaging limit",
			Hold{Kind: "number_quality", Status: q.Event, DisplayPhoneNumber: q.DisplayPhoneNumber, CurrentLimit: q.CurrentLimit, Since: q.Since}))
	}
	for _, a := range hs.Accounts {
		out = append(out, o.accountHold(a))
	}
	if len(out) == 0 {
		out = append(out, Result{Check: "holds", Status: OK, Detail: "nothing held: no template paused, disabled, rejected or RED, no number flagged, no account restricted"})
	}
	if hs.HeldJobs > 0 {
		out = append(out, Result{Check: "held_jobs", Status: OK, Hold: &Hold{Kind: "held_jobs", Status: "held", Jobs: hs.HeldJobs},
			Detail: fmt.Sprintf("%d %s in the hold set (%s), out of the stream: each is looked at again every WAQ_HOLD_RECHECK, then sent, held again or parked", hs.HeldJobs, plural(hs.HeldJobs, "job", "jobs"), throttle.HoldSetKey(o.KeyPrefix))})
	}
	return out
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (o Options) templateHold(t throttle.TemplateState) Result {
	h := Hold{Kind: "template", Template: t.Name, Language: t.Language, WABAID: t.WABAID, Status: t.Status, Reason: t.Reason, Since: t.Since, Until: t.Until}
	r := Result{Check: "template_hold", Hold: &h}
	r.Detail = fmt.Sprintf("template %s (%s%s) %s since %s", t.Name, t.Language, inWABA(t.WABAID), t.Status, stamp(t.Since))
	if t.Reason != "" {
		r.Detail += " (" + t.Reason + ")"
	}
	switch t.Status {
	case "PAUSED", "DISABLED":
		r.Status = Warn
		r.Detail += ": its jobs are held, not sent and not parked"
		if !t.Since.IsZero() && o.HoldMax > 0 {
			r.Detail += fmt.Sprintf(", until %s; then parked as template (WAQ_TEMPLATE_HOLD_MAX %s)", stamp(t.Since.Add(o.HoldMax)), o.HoldMax)
		}
		if !t.Until.IsZero() {
			r.Detail += "; learned from a send, one job tries it again at " + stamp(t.Until)
		}
		r.Fix = "fix the template in WhatsApp Manager › Message templates (or wait for Meta's review): its APPROVED webhook releases the held jobs"
		if t.Status == "DISABLED" {
			r.Fix = "a disabled template does not come back: create a new one; the held jobs park as template when the hold ends, then waq dlq replay --reason template --as-template NEW --language CODE"
		}
	default:
		// REJECTED, DELETED, PENDING_DELETION: parked at once.
		r.Status = Fail
		r.Detail += ": its jobs are parked as template, never sent"
		r.Fix = "send with another template; replay the parked jobs with waq dlq replay --reason template --as-template NAME --language CODE"
	}
	return r
}

// lowQuality is a RED template's or a FLAGGED number's result: what happens
// to its marketing sends.
func (o Options) lowQuality(check, what, fix string, h Hold) Result {
	h.Marketing = o.LowQualityMarketing
	if h.Marketing == "" {
		h.Marketing = throttle.LowQualityHold
	}
	r := Result{Check: check, Status: Warn, Fix: fix, Hold: &h}
	switch h.Marketing {
	case throttle.LowQualitySend:
		r.Detail = what + ": marketing sends go on (WAQ_LOW_QUALITY_MARKETING=send)"
	case throttle.LowQualitySlow:
		r.Detail = what + ": marketing sends slowed to one a second (WAQ_LOW_QUALITY_MARKETING=slow)"
	default:
		r.Detail = what + ": marketing sends held (WAQ_LOW_QUALITY_MARKETING=hold)"
	}
	r.Detail += "; utility and authentication sends go"
	return r
}

func (o Options) accountHold(a throttle.State) Result {
	waba := a.WABAOf()
	h := Hold{Kind: "account", WABAID: waba, Status: a.Scope, Reason: a.Reason, Since: a.Since, Until: a.Until}
	if o.Numbers != nil {
		for _, n := range o.Numbers.Listed() {
			if n.WABAID == waba {
				h.PhoneNumberIDs = append(h.PhoneNumberIDs, n.PhoneNumberID)
			}
		}
	}
	r := Result{Check: "account", Status: Fail, Hold: &h}
	r.Detail = fmt.Sprintf("WABA %s paused by an account webhook since %s: %s", waba, stamp(a.Since), a.Reason)
	if len(h.PhoneNumberIDs) > 0 {
		r.Detail += "; numbers " + strings.Join(h.PhoneNumberIDs, ", ") + " do not send"
	} else {
		r.Detail += "; no number of the phone-number file is in this WABA"
	}
	if a.Until.IsZero() {
		r.Detail += ", until Meta lifts it"
	} else {
		r.Detail += ", until " + stamp(a.Until)
	}
	r.Fix = "see WhatsApp Manager › Account quality for the restriction and appeal it there; its jobs are parked as account after WAQ_PAUSE_PARK_AFTER"
	return r
}

func inWABA(waba string) string {
	if waba == "" {
		return ""
	}
	return ", WABA " + waba
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
