package console

import (
	"strings"
	"time"

	"github.com/waqhq/waq/throttle"
	"github.com/waqhq/waq/worker"
)

// holdsData is the overview's holds: what Meta's account webhooks (or a
// 132015/132016) made the workers hold, with the reason (docs/holds.md).
type holdsData struct {
	Templates []templateRow
	// Quality are the low-quality holds of marketing: RED templates and
	// FLAGGED numbers.
	Quality  []qualityRow
	Accounts []throttle.State
	// Marketing is what a low quality does to marketing sends, in words.
	Marketing string
}

type templateRow struct {
	throttle.TemplateState
	// Does says what happens to the template's jobs.
	Does string
}

type qualityRow struct {
	What, Quality, Reason string
	Since                 time.Time
}

// Any reports whether anything is held.
func (h holdsData) Any() bool { return len(h.Templates)+len(h.Quality)+len(h.Accounts) > 0 }

// holdsOf reads the holds from what /readyz answers: the worker's view of
// the shared state, read again twice a second.
func (c *Console) holdsOf(rd worker.Readiness) holdsData {
	h := holdsData{Marketing: marketingDoes(c.opts.LowQualityMarketing)}
	for _, t := range rd.Templates {
		if t.Status != "" && t.Status != "APPROVED" && t.Status != "REINSTATED" {
			h.Templates = append(h.Templates, templateRow{TemplateState: t, Does: c.templateDoes(t)})
		}
		if strings.EqualFold(t.Quality, "RED") {
			h.Quality = append(h.Quality, qualityRow{What: "template " + t.Name + " (" + t.Language + ")", Quality: "RED",
				Reason: "message_template_quality_update: quality RED", Since: t.QualitySince})
		}
	}
	for _, q := range rd.NumberQuality {
		what := "phone number " + q.DisplayPhoneNumber
		if q.PhoneNumberID != "" {
			what += " (" + q.PhoneNumberID + ")"
		}
		reason := "phone_number_quality_update: " + q.Event
		if q.CurrentLimit != "" {
			reason += ", messaging limit " + q.CurrentLimit
		}
		h.Quality = append(h.Quality, qualityRow{What: what, Quality: q.Event, Reason: reason, Since: q.Since})
	}
	for _, p := range rd.Paused {
		if p.Source == "webhook" {
			h.Accounts = append(h.Accounts, p)
		}
	}
	return h
}

// templateDoes says what happens to a held template's jobs.
func (c *Console) templateDoes(t throttle.TemplateState) string {
	switch t.Status {
	case "PAUSED", "DISABLED":
		s := "held until it is approved again"
		if c.opts.TemplateHoldMax > 0 && !t.Since.IsZero() {
			s += ", parked as template after " + when(t.Since.Add(c.opts.TemplateHoldMax))
		}
		if !t.Until.IsZero() {
			s += "; learned from a send: one job tries again at " + when(t.Until)
		}
		return s
	}
	return "parked as template at once: never sent"
}

func marketingDoes(policy string) string {
	switch policy {
	case throttle.LowQualitySend:
		return "marketing sends go on (WAQ_LOW_QUALITY_MARKETING=send)"
	case throttle.LowQualitySlow:
		return "marketing sends are slowed to one a second (WAQ_LOW_QUALITY_MARKETING=slow)"
	}
	return "marketing sends are held (WAQ_LOW_QUALITY_MARKETING=hold)"
}
