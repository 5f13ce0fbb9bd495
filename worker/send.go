package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/telemetry"
)

// endpoint is the Graph API edge the job is posted to: its own api, its
// number's, the policy file's defaults.api, or /messages (numbers.Endpoint).
func (d *delivery) endpoint(num numbers.Number) string {
	return num.Endpoint(d.job.API, d.w.policy.API(), d.sum.Type)
}

// send makes one attempt and acts on its answer. Past the pool's size of
// sends in flight (WAQ_CONCURRENCY above roundTripsAlonePast) the HTTP round trip runs
// on a goroutine of its own (roundTrip) and the caller returns without
// touching the job again: send reports true, as a job that waits on a
// timer. Within it every send has a pooled goroutine, and handing the job
// from one goroutine to another would only cost CPU.
func (d *delivery) send(ctx context.Context, num numbers.Number) (waiting bool) {
	w := d.w
	// attempts counts this job's sends in its generation, this one included;
	// held are those answered with a throttle or pause.
	attempts := policy.Attempts{Sends: 1}
	if d.state.Gen == d.gen {
		attempts = policy.Attempts{Sends: d.state.Attempts + d.state.Throttles + 1, Held: d.state.Throttles}
	}
	d.attr(telemetry.AttrAttempt.Int(attempts.Sends))

	edge := d.endpoint(num)
	spanName, opts := "POST /{version}/{phone_number_id}/messages", w.httpStart
	if edge == graph.EdgeMarketingMessages {
		spanName, opts = "POST /{version}/{phone_number_id}/marketing_messages", w.marketingStart
		d.attr(telemetry.AttrAPI.String(edge))
	}
	hctx, hspan := w.tracer.Start(ctx, spanName, opts...)
	w.metrics.InFlight.Inc()
	at := &attempt{ctx: ctx, hctx: hctx, hspan: hspan, num: num, attempts: attempts, req: graph.SendRequest{
		PhoneNumberID: d.job.PhoneNumberID,
		Token:         num.Token(),
		Message:       d.job.Message,
		JobID:         d.job.ID,
		Edge:          edge,
	}}
	if cap(w.slots) > roundTripsAlonePast {
		go d.roundTrip(at)
		return true
	}
	d.call(at)
	d.answered(at)
	return false
}

// roundTripsAlonePast is the WAQ_CONCURRENCY past which a send's round trip
// runs on a goroutine of its own (send): the pool's size.
var roundTripsAlonePast = maxPool

// attempt is one send under way: what roundTrip needs, and what the answer
// is acted on with.
type attempt struct {
	ctx, hctx context.Context
	hspan     trace.Span
	num       numbers.Number
	attempts  policy.Attempts
	req       graph.SendRequest
	res       *graph.SendResult
	err       error
	took      time.Duration
}

// roundTrip is the HTTP round trip of an attempt, alone on its goroutine:
// at thousands of sends in flight each holds one for the whole round trip,
// and this one's stack stays as shallow as the bare loop's (8 KiB) instead
// of the job's (its ledger read and pacing grew it to 16–32 KiB). The
// answer is acted on by a pooled goroutine, whose stack has grown already,
// or one of its own when every pooled one is busy; that one finishes the
// job (done).
func (d *delivery) roundTrip(at *attempt) {
	d.call(at)
	d.w.runPooled(func() {
		d.answered(at)
		d.done(true)
	})
}

// call posts the attempt and keeps the answer.
func (d *delivery) call(at *attempt) {
	start := time.Now()
	at.res, at.err = d.w.graph.Send(at.hctx, at.req)
	at.took = time.Since(start)
	d.w.metrics.InFlight.Dec()
}

// answered acts on the answer of an attempt.
func (d *delivery) answered(t *attempt) {
	w, ctx, num, hspan, res, err, took, attempts := d.w, t.ctx, t.num, t.hspan, t.res, t.err, t.took, t.attempts
	at := w.now().UTC()
	a := ledger.Attempt{At: at, TraceID: traceID(d.span), SpanID: spanID(d.span), Worker: w.id}

	if err == nil {
		w.graphAnswered(graph.Failure{}, nil)
		if hspan.IsRecording() {
			hspan.SetAttributes(telemetry.AttrHTTPStatus.Int(res.HTTPStatus))
		}
		hspan.End()
		w.metrics.AttemptSeconds.WithLabelValues("sent").Observe(took.Seconds())
		d.sent(ctx, num, res, a)
		return
	}
	f, ok := graph.Classify(err)
	if !ok {
		// The work context ended mid-send: we do not know what Meta did.
		// Leave the job to be redelivered.
		hspan.End()
		d.logger().Warn("send interrupted by shutdown; the job will be redelivered", "error", err)
		return
	}
	w.graphAnswered(f, err)
	if f.HTTPStatus != 0 {
		hspan.SetAttributes(telemetry.AttrHTTPStatus.Int(f.HTTPStatus))
	}
	hspan.SetStatus(codes.Error, failureLabel(f))
	hspan.End()
	d.failed(ctx, num, err, f, attempts, took, a)
}

func (d *delivery) sent(ctx context.Context, num numbers.Number, res *graph.SendResult, a ledger.Attempt) {
	w := d.w
	a.HTTPStatus = res.HTTPStatus
	a.FBTraceID = res.FBTraceID
	rec := []ledger.SentRecord{{ID: d.job.ID, Gen: d.gen, WAMID: res.WAMID, Attempt: a, Body: d.msg.Data(),
		MessageStatus: res.MessageStatus, Fresh: d.state == (ledger.State{})}}
	err := w.durably(ctx, d.msg, func(c context.Context) error { return w.ledger.RecordSentMany(c, rec) })
	if err != nil {
		// The job was sent and its record could not be written before the
		// work context ended: a redelivery will send it again.
		d.logger().Error("sent, but the record could not be written; the job may be sent twice", "wamid", res.WAMID, "error", err)
		d.span.SetStatus(codes.Error, "outcome not recorded")
		return
	}
	w.metrics.Sends.WithLabelValues("sent", d.job.PhoneNumberID).Inc()
	if d.sum.Template != "" {
		w.gate.TemplateSent(ctx, num, d.sum.Template, d.sum.Language)
	}
	d.attr(telemetry.AttrWAMID.String(res.WAMID), telemetry.AttrAction.String("sent"))
	ms := "none"
	if res.MessageStatus != "" {
		ms = ledger.KnownMessageStatus(res.MessageStatus)
		d.attr(telemetry.AttrMessageStatus.String(ms))
	}
	w.metrics.MessageStatus.WithLabelValues(ms).Inc()
	if res.FBTraceID != "" {
		d.attr(telemetry.AttrFBTraceID.String(res.FBTraceID))
	}
	d.ack()
	if ms == "held_for_quality_assessment" || ms == "paused" {
		// Sent, but Meta holds it back: the operator should know.
		d.logger().Info("sent; Meta holds the message back", "message_status", ms, "wamid", res.WAMID, "phone_number_id", d.job.PhoneNumberID)
	} else if w.log.Enabled(ctx, slog.LevelDebug) {
		d.logger().Debug("sent", "wamid", res.WAMID, "phone_number_id", d.job.PhoneNumberID)
	}
}

func (d *delivery) failed(ctx context.Context, num numbers.Number, err error, f graph.Failure, attempts policy.Attempts, took time.Duration, a ledger.Attempt) {
	w := d.w
	label := failureLabel(f)
	w.metrics.APIErrors.WithLabelValues(label).Inc()
	a.HTTPStatus = f.HTTPStatus
	a.FBTraceID = f.FBTraceID
	a.Subcode = f.Subcode
	if f.HasCode {
		if f.Code == 131057 {
			// Maintenance, as while Meta upgrades the number's throughput.
			w.gate.Maintenance(num)
		}
		c := f.Code
		a.Code = &c
		d.attr(telemetry.AttrErrorCode.Int(f.Code))
		if f.Subcode != 0 {
			d.attr(telemetry.AttrErrorSubcode.Int(f.Subcode))
		}
	} else {
		a.Error = shortError(err)
	}
	if f.FBTraceID != "" {
		d.attr(telemetry.AttrFBTraceID.String(f.FBTraceID))
	}
	d.span.SetStatus(codes.Error, label)

	dec := w.policy.DecideAttempts(f, attempts)
	a.Action = string(dec.Action)
	d.attr(telemetry.AttrAction.String(string(dec.Action)))
	last := lastError(err, f)

	switch dec.Action {
	case policy.Retry:
		a.Outcome = "failed"
		a.DelayMS = dec.Delay.Milliseconds()
		w.metrics.Sends.WithLabelValues("failed", d.job.PhoneNumberID).Inc()
		w.metrics.AttemptSeconds.WithLabelValues("failed").Observe(took.Seconds())
		if !d.record(ctx, a, ledger.CountAttempt) {
			return
		}
		w.metrics.Retries.WithLabelValues(label).Inc()
		d.logger().Info("send failed; retrying", "code", label, "fbtrace_id", f.FBTraceID, "attempt", attempts.Sends, "delay", dec.Delay.String())
		d.nak(dec.Delay)
	case policy.Throttle:
		a.Outcome = "throttled"
		w.metrics.Sends.WithLabelValues("throttled", d.job.PhoneNumberID).Inc()
		w.metrics.AttemptSeconds.WithLabelValues("throttled").Observe(took.Seconds())
		var usage *graph.Usage
		var ae *graph.APIError
		if errors.As(err, &ae) {
			usage = ae.Usage
		}
		delay := w.gate.Throttled(ctx, num, d.sum.Addressee(), dec.Scope, usage, dec.Delay)
		a.DelayMS = delay.Milliseconds()
		if !d.record(ctx, a, ledger.CountHeld) {
			return
		}
		w.metrics.Throttled.WithLabelValues(string(dec.Scope)).Inc()
		d.logger().Info("rate limited; holding back", "code", label, "scope", string(dec.Scope), "delay", delay.String())
		d.nak(delay)
	case policy.Pause:
		a.Outcome = "paused"
		w.metrics.Sends.WithLabelValues("failed", d.job.PhoneNumberID).Inc()
		w.metrics.AttemptSeconds.WithLabelValues("failed").Observe(took.Seconds())
		if dec.Scope == policy.ScopeTemplate {
			d.templateFailed(ctx, num, f, last, dec, a)
			return
		}
		delay := w.gate.Pause(ctx, num, dec.Scope, f, last)
		a.DelayMS = delay.Milliseconds()
		if !d.record(ctx, a, ledger.CountHeld) {
			return
		}
		d.logger().Warn("credential or account problem; pausing", "code", label, "fbtrace_id", f.FBTraceID, "scope", string(dec.Scope), "phone_number_id", d.job.PhoneNumberID)
		d.nak(delay)
	default: // policy.Park, retries exhausted included
		a.Outcome = "failed"
		w.metrics.Sends.WithLabelValues("failed", d.job.PhoneNumberID).Inc()
		w.metrics.AttemptSeconds.WithLabelValues("failed").Observe(took.Seconds())
		problem := "the policy parks " + label
		if dec.Exhausted {
			problem = fmt.Sprintf("%s after %d sends", label, attempts.Sends)
		}
		d.park(ctx, dec.Reason, problem, last, a)
	}
}

// record appends an attempt durably; false when it could not (the message
// is left for redelivery).
func (d *delivery) record(ctx context.Context, a ledger.Attempt, c ledger.Count) bool {
	err := d.w.durably(ctx, d.msg, func(cx context.Context) error {
		_, err := d.w.ledger.RecordAttempt(cx, d.job.ID, d.gen, a, c)
		return err
	})
	if errors.Is(err, ledger.ErrStale) {
		d.alreadyDone("superseded")
		return false
	}
	if err != nil {
		d.logger().Warn("attempt could not be recorded; the job will be redelivered", "error", err)
		return false
	}
	return true
}

// failureLabel is the metric label and short name of a failure.
func failureLabel(f graph.Failure) string {
	switch {
	case f.HasCode:
		return strconv.Itoa(f.Code)
	case f.Transport && f.HTTPStatus == 0:
		return "transport"
	default:
		return "http_" + strconv.Itoa(f.HTTPStatus)
	}
}

// lastError keeps every field of a failed answer for the dead-letter entry.
func lastError(err error, f graph.Failure) *deadletter.LastError {
	le := &deadletter.LastError{HTTPStatus: f.HTTPStatus, FBTraceID: f.FBTraceID}
	var ae *graph.APIError
	if errors.As(err, &ae) {
		c := ae.Code
		le.Code = &c
		le.Subcode = ae.Subcode
		le.Type = ae.Type
		le.Title = ae.Title
		le.Message = ae.Message
		le.Details = ae.Details
		le.UserTitle = ae.UserTitle
		le.UserMsg = ae.UserMsg
		return le
	}
	var te *graph.TransportError
	if errors.As(err, &te) {
		le.Transport = string(te.Kind)
		le.Message = shortError(err)
	}
	return le
}

func shortError(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
