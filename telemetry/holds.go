package telemetry

import "github.com/prometheus/client_golang/prometheus"

// HoldMetrics are the metrics of Meta's account webhooks and the holds they
// set (templates, number quality, account restrictions). Template labels
// are the business's own template names and languages: a bounded set.
type HoldMetrics struct {
	AccountEvents   *prometheus.CounterVec // field, event
	Held            *prometheus.CounterVec // scope
	TemplateStatus  *prometheus.GaugeVec   // template, language, status
	TemplateQuality *prometheus.GaugeVec   // template, language, quality
	NumberQuality   *prometheus.GaugeVec   // display_phone_number, event, current_limit
	HeldJobs        prometheus.Gauge       // the hold set's size
}

func newHoldMetrics(reg prometheus.Registerer) *HoldMetrics {
	m := &HoldMetrics{
		AccountEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_account_events_total", Help: "Account webhook changes processed, by field (message_template_status_update, message_template_quality_update, phone_number_quality_update, account_update) and event.",
		}, []string{"field", "event"}),
		Held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_held_total", Help: "Jobs handed back without a send by a template or quality hold, by scope (template, quality).",
		}, []string{"scope"}),
		TemplateStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_template_status", Help: "1 for each template and language whose last status is not APPROVED (PAUSED, DISABLED, REJECTED, ...), as a webhook or a send error said.",
		}, []string{"template", "language", "status"}),
		TemplateQuality: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_template_quality", Help: "1 for each template and language by its last quality score (GREEN, YELLOW, RED, UNKNOWN).",
		}, []string{"template", "language", "quality"}),
		NumberQuality: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_number_quality", Help: "1 for each business display number by its last phone_number_quality_update event (FLAGGED, UNFLAGGED, ...) and messaging limit.",
		}, []string{"display_phone_number", "event", "current_limit"}),
		HeldJobs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waq_held_jobs", Help: "Jobs in the hold set now (held for their template or quality, out of the stream until they are looked at again): the shared set's ZCARD, the same on every worker, read at most a second apart.",
		}),
	}
	reg.MustRegister(m.AccountEvents, m.Held, m.TemplateStatus, m.TemplateQuality, m.NumberQuality, m.HeldJobs)
	return m
}
