// Package telemetry is waq's observability: Prometheus metrics, OpenTelemetry
// tracing configured by the standard OTEL_* variables, structured logs, and
// the keyed hash that stands in for a recipient's number wherever telemetry
// would otherwise show it.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus metrics, all named waq_*. Labels are
// bounded sets: outcome, phone number id (the business's own numbers), code,
// reason; never a job id or a recipient.
type Metrics struct {
	Sends           *prometheus.CounterVec   // outcome, phone_number_id
	APIErrors       *prometheus.CounterVec   // code
	Retries         *prometheus.CounterVec   // code
	Parked          *prometheus.CounterVec   // reason
	DeadLetter      *prometheus.GaugeVec     // reason
	AttemptSeconds  *prometheus.HistogramVec // outcome
	Pending         prometheus.Gauge
	AckPending      prometheus.Gauge
	Redelivered     prometheus.Counter
	AlreadyDone     prometheus.Counter
	Lapsed          *prometheus.CounterVec // stage
	Throttled       *prometheus.CounterVec // scope
	Paused          *prometheus.GaugeVec   // phone_number_id
	ThrottledNumber *prometheus.GaugeVec   // phone_number_id
	Rate            *prometheus.GaugeVec   // phone_number_id
	InFlight        prometheus.Gauge
	Webhooks        *prometheus.CounterVec // status, result
	WebhookPosts    *prometheus.CounterVec // result
	Up              *prometheus.GaugeVec   // dependency
	AuthFailures    *prometheus.CounterVec // surface, result
	Holds           *HoldMetrics
	MessageStatus   *prometheus.CounterVec // status
	Pricing         *prometheus.CounterVec // category, pricing_model, type, billable
	SystemMessages  *prometheus.CounterVec // type
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_sends_total", Help: "Send attempts to the Graph API by outcome (sent, failed, throttled) and business phone number.",
		}, []string{"outcome", "phone_number_id"}),
		APIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_api_errors_total", Help: "Failed attempts by Graph API error code (\"http_NNN\" or \"transport\" when the answer had no code).",
		}, []string{"code"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_retries_total", Help: "Jobs scheduled for another attempt after a failure, by error code.",
		}, []string{"code"}),
		Parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_parked_total", Help: "Jobs parked in the dead-letter store, by reason.",
		}, []string{"reason"}),
		DeadLetter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_dead_letter_entries", Help: "Entries in the dead-letter store, by reason.",
		}, []string{"reason"}),
		AttemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "waq_attempt_duration_seconds",
			Help:    "Duration of one Graph API send attempt, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, .75, 1, 2, 5, 10, 20},
		}, []string{"outcome"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waq_consumer_pending", Help: "Jobs in the stream not yet delivered to a worker.",
		}),
		AckPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waq_consumer_ack_pending", Help: "Jobs delivered and not yet acknowledged (in flight or waiting for a retry).",
		}),
		Redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waq_redeliveries_total", Help: "Job deliveries that were not the first delivery of that message.",
		}),
		AlreadyDone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waq_already_done_total", Help: "Deliveries acknowledged without a send because the job was already sent or parked.",
		}),
		Lapsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_lapsed_deliveries_total", Help: "Deliveries given up unsent because JetStream may have handed them to another worker (five sixths of the ack wait since it last heard of them), by stage (pulled: before the worker took them up; waiting: waiting for a paced or send slot).",
		}, []string{"stage"}),
		Throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_throttled_total", Help: "Jobs held back by a rate limit, by scope (number, recipient, app, waba, pace).",
		}, []string{"scope"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_paused", Help: "1 while sending for a business phone number is paused (credential or account problem).",
		}, []string{"phone_number_id"}),
		ThrottledNumber: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_number_throttled", Help: "1 while a business phone number runs below its configured rate after 130429.",
		}, []string{"phone_number_id"}),
		Rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_number_rate", Help: "Current pacing rate (messages per second) of a business phone number.",
		}, []string{"phone_number_id"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waq_sends_in_flight", Help: "Graph API sends in flight in this process.",
		}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_webhook_statuses_total", Help: "Status webhook events by status and result (matched, unmatched, duplicate).",
		}, []string{"status", "result"}),
		WebhookPosts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_webhook_received_total", Help: "Statuses and account changes received on /webhook by result (stored, account, invalid, invalid_signature, too_large, unparsed, other).",
		}, []string{"result"}),
		MessageStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_message_status_total", Help: "Accepted sends by the answer's message_status (accepted, held_for_quality_assessment, paused, none, other).",
		}, []string{"status"}),
		Pricing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_pricing_messages_total", Help: "Messages by the pricing their status webhooks gave, failed ones included (once per message): category, pricing_model, type, billable.",
		}, []string{"category", "pricing_model", "type", "billable"}),
		SystemMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_webhook_system_messages_total", Help: "System messages received on /webhook by type (user_changed_user_id, user_changed_number, other): a user's number or business-scoped user ID changed.",
		}, []string{"type"}),
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "waq_dependency_up", Help: "1 when a dependency (nats, redis) answers.",
		}, []string{"dependency"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waq_auth_failures_total", Help: "Wrong admin tokens (result wrong_token) and attempts refused with 429 past the per-address limit (limited), by surface (admin_api, console).",
		}, []string{"surface", "result"}),
	}
	reg.MustRegister(m.Sends, m.APIErrors, m.Retries, m.Parked, m.DeadLetter, m.AttemptSeconds,
		m.Pending, m.AckPending, m.Redelivered, m.AlreadyDone, m.Lapsed, m.Throttled, m.Paused,
		m.ThrottledNumber, m.Rate, m.InFlight, m.Webhooks, m.WebhookPosts, m.Up, m.AuthFailures,
		m.MessageStatus, m.Pricing, m.SystemMessages)
	m.Holds = newHoldMetrics(reg)
	return m
}
