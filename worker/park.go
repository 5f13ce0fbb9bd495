package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/codes"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
)

// park writes the dead-letter entry, then marks the ledger, then acks.
func (d *delivery) park(ctx context.Context, reason, problem string, last *deadletter.LastError, a ledger.Attempt) {
	w := d.w
	if a.At.IsZero() {
		a.At = w.now().UTC()
		a.TraceID = traceID(d.span)
		a.SpanID = d.span.SpanContext().SpanID().String()
		a.Worker = w.id
	}
	a.Action = string(policy.Park)
	if !d.record(ctx, a, ledger.CountNone) {
		return
	}
	var history []ledger.Attempt
	if err := w.durably(ctx, d.msg, func(c context.Context) error {
		var err error
		history, err = w.ledger.History(c, d.job.ID)
		return err
	}); err != nil {
		return
	}
	e := w.newEntry(d.job.ID, d.gen, reason, problem, d.msg.Data(), d.job, d.sum)
	e.Subject = d.msg.Subject()
	e.LastError = last
	e.Attempts = history
	e.TraceID, e.SpanID = traceID(d.span), d.span.SpanContext().SpanID().String()
	if err := w.durably(ctx, d.msg, func(c context.Context) error { return w.dlq.Park(c, e) }); err != nil {
		d.logger().Warn("could not park; the job will be redelivered", "error", err)
		return
	}
	if err := w.durably(ctx, d.msg, func(c context.Context) error {
		return w.ledger.MarkParked(c, d.job.ID, d.gen, reason)
	}); err != nil {
		// The entry is durable; a redelivery finds it and acks.
		return
	}
	w.metrics.Parked.WithLabelValues(reason).Inc()
	d.attr(telemetry.AttrAction.String(string(policy.Park)), telemetry.AttrDLQReason.String(reason))
	d.span.SetStatus(codes.Error, "parked: "+reason)
	d.ack()
	d.logger().Info("parked", "reason", reason, "problem", problem, "phone_number_id", d.job.PhoneNumberID, "template", d.sum.Template)
}

// parkInvalid parks a body that is not a valid job, raw bytes kept.
func (d *delivery) parkInvalid(ctx context.Context, verr error) {
	w := d.w
	h := d.msg.Headers()
	id := h.Get(queue.HeaderMsgID)
	if i := strings.Index(id, "#r"); i > 0 {
		id = id[:i]
	}
	if queue.ValidateID(id) != nil {
		// No usable Nats-Msg-Id: the body's own id, when it can be read,
		// so that an operator finds the job by the id its producer knows.
		id = queue.PeekID(d.msg.Data())
	}
	if id == "" {
		seq := uint64(0)
		if md, err := d.msg.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		id = "invalid-" + strconv.FormatUint(seq, 10)
	}
	d.logID = id
	d.attr(telemetry.AttrMessageID.String(id), telemetry.AttrAction.String(string(policy.Park)), telemetry.AttrDLQReason.String(policy.ReasonInvalid))
	d.span.SetStatus(codes.Error, "invalid job")
	e := w.newEntry(id, d.gen, policy.ReasonInvalid, verr.Error(), d.msg.Data(), nil, queue.Summary{})
	e.Subject = d.msg.Subject()
	e.TraceID, e.SpanID = traceID(d.span), d.span.SpanContext().SpanID().String()
	e.Attempts = []ledger.Attempt{{At: e.ParkedAt, Outcome: "invalid", Action: "park", Error: verr.Error(), Worker: w.id, TraceID: e.TraceID}}
	// Index what can be read of a job that does not validate.
	if pn := strings.TrimPrefix(d.msg.Subject(), subjectPrefix(d.msg.Subject())); pn != "" {
		e.PhoneNumberID = pn
	}
	if err := w.durably(ctx, d.msg, func(c context.Context) error { return w.dlq.Park(c, e) }); err != nil {
		return
	}
	w.metrics.Parked.WithLabelValues(policy.ReasonInvalid).Inc()
	d.ack()
	d.logger().Info("parked", "reason", policy.ReasonInvalid, "problem", loggable(verr))
}

// loggable is a validation problem as a log line may show it: a problem
// with message.to quotes the recipient's number, which logs never show (the
// dead-letter entry keeps the whole problem).
func loggable(verr error) string {
	var ve *queue.ValidationError
	if errors.As(verr, &ve) && ve.Field == "message.to" {
		return "invalid job: message.to: not a number with country code (the dead-letter entry has the details)"
	}
	return verr.Error()
}

func subjectPrefix(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		return subject[:i+1]
	}
	return subject
}

// jobJSON reports whether a body is a JSON object (kept as JSON in the entry
// rather than as bytes).
func jobJSON(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// newEntry is the dead-letter entry of job id (generation gen), parked now
// for reason: the one constructor of the send path and the webhook path.
// body is the job as published (nil when no longer kept), kept as the
// entry's job when it is a JSON object and as raw bytes otherwise; job and
// sum, when the body decoded (job nil otherwise), index the entry by
// number, recipient, message type, template and metadata. The caller adds
// the subject, attempts, last error and trace.
func (w *Worker) newEntry(id string, gen int, reason, problem string, body []byte, job *queue.Job, sum queue.Summary) *deadletter.Entry {
	e := &deadletter.Entry{ID: id, Reason: reason, Problem: problem, ParkedAt: w.now().UTC(), Replayed: gen}
	if jobJSON(body) {
		e.Job = body
	} else if len(body) > 0 {
		e.Raw = body
	}
	if job != nil {
		e.PhoneNumberID, e.Metadata = job.PhoneNumberID, job.Metadata
		e.To, e.Recipient, e.MessageType, e.Template, e.Language = sum.To, sum.Recipient, sum.Type, sum.Template, sum.Language
	}
	return e
}
