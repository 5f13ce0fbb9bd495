package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
)

// delivery is one delivery of one job message.
type delivery struct {
	w         *Worker
	msg       jetstream.Msg
	job       *queue.Job
	sum       queue.Summary
	gen       int
	delivered uint64
	span      trace.Span
	logID     string       // the job id for log lines; "" before the body decoded
	lg        *slog.Logger // built on the first line logged: most jobs log nothing
	state     ledger.State
	holding   bool // holds a send slot
	kept      bool // counted among its number's jobs waiting for the schedule
	claimed   bool // holds its job id in the worker's active set
	// attrs wait for the span's end: set in one call, the span's slice of
	// attributes grows once rather than at every step.
	attrs    []attribute.KeyValue
	progress time.Time // when JetStream was last told the job is in progress
}

// logger is the job's logger: every line has its id and trace id.
func (d *delivery) logger() *slog.Logger {
	if d.lg == nil {
		d.lg = d.w.log.With("job_id", d.logID, "trace_id", traceID(d.span))
	}
	return d.lg
}

// release gives the send slot back.
func (d *delivery) release() {
	if d.holding {
		<-d.w.slots
		d.holding = false
	}
}

// handle gives one delivered message its outcome for this delivery: ack
// (sent or parked, durably recorded), NakWithDelay (try again later), or
// nothing (the work context ended; JetStream redelivers after the ack wait).
//
// A job that waits for its paced slot does so on a timer, not in a
// goroutine: handle returns, and the timer carries the job on. finish gives
// back what the job holds, once, when it is done.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	d := &delivery{w: w, msg: msg, delivered: 1}
	// waiting is this goroutine's own: once the job waits on a timer,
	// another goroutine owns it and this one must not touch it again.
	waiting := false
	defer func() {
		if !waiting {
			d.done(true)
		}
	}()
	if md, err := msg.Metadata(); err == nil {
		d.delivered = md.NumDelivered
	}
	if d.delivered > 1 {
		w.metrics.Redelivered.Inc()
	}
	h := msg.Headers()
	d.gen = queue.ReplayOf(h)
	parent := propagation.TraceContext{}.Extract(ctx, queue.HeaderCarrier(h))
	job, sum, decodeErr := queue.Decode(msg.Data())
	// Every attribute known now goes in at the start, in one slice: adding
	// them one call at a time grows the span's slice again and again.
	attrs := make([]attribute.KeyValue, 0, 16+metadataLen(job))
	attrs = append(attrs,
		telemetry.AttrMessagingSystem.String("nats"),
		telemetry.AttrOperation.String("process"),
		telemetry.AttrDestination.String(msg.Subject()),
	)
	if decodeErr == nil {
		attrs = append(attrs,
			telemetry.AttrMessageID.String(job.ID),
			telemetry.AttrPhoneNumberID.String(job.PhoneNumberID),
			telemetry.AttrRecipient.String(w.hasher.Hash(sum.To)),
		)
		if sum.Template != "" {
			attrs = append(attrs, telemetry.AttrTemplate.String(sum.Template))
		}
		if d.gen > 0 {
			attrs = append(attrs, telemetry.AttrReplay.Int(d.gen))
		}
		for k, v := range job.Metadata {
			attrs = append(attrs, attribute.String(telemetry.AttrMetadataPrefix+k, v))
		}
	}
	ctx, d.span = w.tracer.Start(parent, "process "+msg.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	if decodeErr != nil {
		d.parkInvalid(ctx, decodeErr)
		return
	}
	d.job, d.sum = job, sum
	d.logID = job.ID
	if !w.claim(job.ID) {
		// Another delivery of this job is under way in this process (one
		// JetStream redelivered while this process still held it): two at
		// once could both send it. This one waits its turn.
		d.nak(time.Second)
		return
	}
	d.claimed = true
	waiting = d.run(ctx)
}

func metadataLen(j *queue.Job) int {
	if j == nil {
		return 0
	}
	return len(j.Metadata)
}

// run takes a decoded job to its outcome for this delivery. It reports true
// when the job now waits on a timer (see admit): done is then the timer's.
func (d *delivery) run(ctx context.Context) (waiting bool) {
	w := d.w
	st, err := w.ledger.Load(ctx, d.job.ID)
	if err != nil {
		d.dependencyDown(err)
		return false
	}
	d.state = st
	switch {
	case st.HasSent(d.gen):
		if d.confirmed(ctx) {
			d.alreadyDone("sent")
		}
		return false
	case st.ParkedAt(d.gen):
		if d.confirmed(ctx) {
			d.alreadyDone("parked")
		}
		return false
	case d.gen < st.Gen:
		// A newer generation (a replay) owns the job now.
		d.alreadyDone("superseded")
		return false
	}
	if d.delivered > 1 {
		// A worker may have parked the job and died before marking the
		// ledger: the dead-letter store has the last word.
		parked, err := w.dlq.Parked(ctx, d.job.ID, d.gen)
		if err != nil {
			d.dependencyDown(err)
			return false
		}
		if parked {
			if err := w.durably(ctx, d.msg, func(c context.Context) error {
				return w.ledger.MarkParked(c, d.job.ID, d.gen, "parked")
			}); err != nil || !d.confirmed(ctx) {
				return false
			}
			d.alreadyDone("parked")
			return false
		}
	}
	if d.job.Expired(w.now()) {
		d.park(ctx, policy.ReasonExpired, "not_after "+d.job.NotAfter.UTC().Format(time.RFC3339)+" passed before the job could be sent", nil, ledger.Attempt{Outcome: "expired"})
		return false
	}
	num, err := w.numbers.Lookup(d.job.PhoneNumberID)
	if err != nil {
		d.park(ctx, policy.ReasonInvalid, err.Error(), nil, ledger.Attempt{Outcome: "invalid", Error: "no token"})
		return false
	}
	return d.admit(ctx, num, 0)
}

// admitted carries on with a job the gate has answered for.
func (d *delivery) admitted(ctx context.Context, num numbers.Number, adm throttle.Admission, err error) {
	w := d.w
	if err != nil {
		d.dependencyDown(err)
		return
	}
	if adm.Park != "" {
		d.park(ctx, adm.Park, adm.Why, adm.LastError, ledger.Attempt{Outcome: "paused", Error: adm.Why})
		return
	}
	if adm.Wait > 0 {
		w.metrics.Throttled.WithLabelValues(adm.Scope).Inc()
		d.attr(telemetry.AttrAction.String("wait"), attribute.String("waq.wait.scope", adm.Scope))
		d.nak(adm.Wait)
		return
	}
	select {
	case w.slots <- struct{}{}:
		d.holding = true
	case <-w.stopping:
		_ = d.msg.Nak()
		return
	case <-ctx.Done():
		return
	}
	// A pause may have begun while the job waited for its slot (another
	// send's 190): a job that has not gone yet does not go with a bad token.
	if wait, paused := w.gate.Paused(num); paused {
		w.metrics.Throttled.WithLabelValues("paused").Inc()
		d.nak(wait)
		return
	}
	d.send(ctx, num)
}

// admit asks the gate whether the job may go (try i of its asking). A job
// whose paced slot is near (within maxLocalWait) waits for it here, without
// a send slot or a goroutine. A job whose number's schedule is further out
// also waits here, asking again, while its number holds fewer than a few
// seconds' worth of such jobs: that keeps a backlog in the stream instead of
// churning it through NakWithDelay. Any other wait (a pause, a hold, a hot
// recipient) goes back to JetStream with NakWithDelay.
func (d *delivery) admit(ctx context.Context, num numbers.Number, i int) (waiting bool) {
	w := d.w
	adm, err := w.gate.Admit(ctx, num, d.sum.To, maxLocalWait)
	if err != nil {
		d.admitted(ctx, num, adm, err)
		return false
	}
	if adm.Reserved {
		d.unkeep(num)
		if adm.Wait > 0 {
			d.after(adm.Wait, func() bool { d.admitted(ctx, num, throttle.Admission{}, nil); return false })
			return true
		}
		d.admitted(ctx, num, throttle.Admission{}, nil)
		return false
	}
	if adm.Wait <= 0 || adm.Scope != "pace" || i >= 1000 || !d.keep(num) {
		d.unkeep(num)
		d.admitted(ctx, num, adm, nil)
		return false
	}
	if time.Since(d.progress) > w.cfg.AckWait/3 {
		_ = d.msg.InProgress()
		d.progress = time.Now()
	}
	// Ask again once the schedule has moved up to the horizon.
	again := min(max(adm.Wait-maxLocalWait/2, 100*time.Millisecond), maxLocalWait)
	d.after(again, func() bool { return d.admit(ctx, num, i+1) })
	return true
}

// claim marks a job id as under way in this process; false when it already
// is.
func (w *Worker) claim(id string) bool {
	w.activeMu.Lock()
	defer w.activeMu.Unlock()
	if _, busy := w.active[id]; busy {
		return false
	}
	w.active[id] = struct{}{}
	return true
}

func (w *Worker) unclaim(id string) {
	w.activeMu.Lock()
	delete(w.active, id)
	w.activeMu.Unlock()
}

// keep counts the job among those its number holds waiting for the
// schedule (once); it reports false past about four seconds' worth.
func (d *delivery) keep(num numbers.Number) bool {
	if d.kept {
		return true
	}
	if !d.w.keep(num) {
		return false
	}
	d.kept = true
	return true
}

// unkeep takes the job out of its number's waiting count.
func (d *delivery) unkeep(num numbers.Number) {
	if d.kept {
		d.w.unkeep(num.PhoneNumberID)
		d.kept = false
	}
}

// keep counts a job waiting here for its number's schedule, up to about four
// seconds' worth of the number's sends; it reports false past that.
func (w *Worker) keep(num numbers.Number) bool {
	limit := max(8, 4*num.MPS)
	w.keptMu.Lock()
	defer w.keptMu.Unlock()
	if w.kept[num.PhoneNumberID] >= limit {
		return false
	}
	w.kept[num.PhoneNumberID]++
	return true
}

func (w *Worker) unkeep(pn string) {
	w.keptMu.Lock()
	defer w.keptMu.Unlock()
	if w.kept[pn]--; w.kept[pn] <= 0 {
		delete(w.kept, pn)
	}
}

// after carries the job on with next once wait has passed, on a timer,
// and the caller must return without touching the job again: the timer's
// goroutine owns it now. next reports whether the job waits again. A stop
// hands the waiting job back at once.
func (d *delivery) after(wait time.Duration, next func() (waiting bool)) {
	// A job on a timer has no goroutine: it gives its busy place back.
	<-d.w.busy
	d.w.timers.schedule(d, wait, func(stopping bool) {
		if !stopping {
			select {
			case d.w.busy <- struct{}{}:
			case <-d.w.stopping:
				stopping = true
			}
		}
		if stopping {
			_ = d.msg.Nak()
			d.done(false)
			return
		}
		if !next() {
			d.done(true)
		}
	})
}

// attr adds attributes to the job's span (when it ends).
func (d *delivery) attr(kv ...attribute.KeyValue) {
	if d.attrs == nil {
		d.attrs = make([]attribute.KeyValue, 0, 8)
	}
	d.attrs = append(d.attrs, kv...)
}

// done finishes the job: the span ends, and the send slot, the busy place
// (when it has one), the hold and the in-flight count are given back.
func (d *delivery) done(busy bool) {
	d.release()
	if d.span != nil {
		if len(d.attrs) > 0 {
			d.span.SetAttributes(d.attrs...)
		}
		d.span.End()
	}
	if d.kept {
		d.w.unkeep(d.job.PhoneNumberID)
		d.kept = false
	}
	if d.claimed {
		d.w.unclaim(d.job.ID)
		d.claimed = false
	}
	if busy {
		<-d.w.busy
	}
	<-d.w.held
	d.w.inflight.Done()
}

// send makes one attempt and acts on its answer.
func (d *delivery) send(ctx context.Context, num numbers.Number) {
	w := d.w
	// attempts counts this job's sends in its generation, this one included;
	// held are those answered with a throttle or pause.
	attempts := policy.Attempts{Sends: 1}
	if d.state.Gen == d.gen {
		attempts = policy.Attempts{Sends: d.state.Attempts + d.state.Throttles + 1, Held: d.state.Throttles}
	}
	d.attr(telemetry.AttrAttempt.Int(attempts.Sends))

	hctx, hspan := w.tracer.Start(ctx, "POST /{version}/{phone_number_id}/messages",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(w.httpAttrs...))
	w.metrics.InFlight.Inc()
	start := time.Now()
	res, err := w.graph.Send(hctx, graph.SendRequest{
		PhoneNumberID: d.job.PhoneNumberID,
		Token:         num.Token(),
		Message:       d.job.Message,
		JobID:         d.job.ID,
	})
	took := time.Since(start)
	w.metrics.InFlight.Dec()
	at := w.now().UTC()
	a := ledger.Attempt{At: at, TraceID: traceID(d.span), SpanID: d.span.SpanContext().SpanID().String(), Worker: w.id}

	if err == nil {
		hspan.SetAttributes(telemetry.AttrHTTPStatus.Int(res.HTTPStatus))
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
		Fresh: d.state == (ledger.State{})}}
	err := w.durably(ctx, d.msg, func(c context.Context) error { return w.ledger.RecordSentMany(c, rec) })
	if err != nil {
		// The job was sent and its record could not be written before the
		// work context ended: a redelivery will send it again.
		d.logger().Error("sent, but the record could not be written; the job may be sent twice", "wamid", res.WAMID, "error", err)
		d.span.SetStatus(codes.Error, "outcome not recorded")
		return
	}
	w.gate.Sent(num)
	w.metrics.Sends.WithLabelValues("sent", d.job.PhoneNumberID).Inc()
	d.attr(telemetry.AttrWAMID.String(res.WAMID), telemetry.AttrAction.String("sent"))
	if res.FBTraceID != "" {
		d.attr(telemetry.AttrFBTraceID.String(res.FBTraceID))
	}
	d.ack()
	if w.log.Enabled(ctx, slog.LevelDebug) {
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
		delay := w.gate.Throttled(ctx, num, d.sum.To, dec.Scope, usage, dec.Delay)
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
	e := &deadletter.Entry{
		ID:            d.job.ID,
		Reason:        reason,
		Problem:       problem,
		Job:           d.msg.Data(),
		Subject:       d.msg.Subject(),
		PhoneNumberID: d.job.PhoneNumberID,
		To:            d.sum.To,
		MessageType:   d.sum.Type,
		Template:      d.sum.Template,
		Language:      d.sum.Language,
		Metadata:      d.job.Metadata,
		LastError:     last,
		Attempts:      history,
		TraceID:       traceID(d.span),
		SpanID:        d.span.SpanContext().SpanID().String(),
		ParkedAt:      w.now().UTC(),
		Replayed:      d.gen,
	}
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
		seq := uint64(0)
		if md, err := d.msg.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		id = "invalid-" + strconv.FormatUint(seq, 10)
	}
	d.logID = id
	d.attr(telemetry.AttrMessageID.String(id), telemetry.AttrAction.String(string(policy.Park)), telemetry.AttrDLQReason.String(policy.ReasonInvalid))
	d.span.SetStatus(codes.Error, "invalid job")
	now := w.now().UTC()
	e := &deadletter.Entry{
		ID:       id,
		Reason:   policy.ReasonInvalid,
		Problem:  verr.Error(),
		Subject:  d.msg.Subject(),
		TraceID:  traceID(d.span),
		SpanID:   d.span.SpanContext().SpanID().String(),
		ParkedAt: now,
		Replayed: d.gen,
		Attempts: []ledger.Attempt{{At: now, Outcome: "invalid", Action: "park", Error: verr.Error(), Worker: w.id, TraceID: traceID(d.span)}},
	}
	if jobJSON(d.msg.Data()) {
		e.Job = d.msg.Data()
	} else {
		e.Raw = d.msg.Data()
	}
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

// confirmed makes sure, with WAQ_REDIS_WAIT_REPLICAS, that the replicas
// have the outcome a delivery found before the job is acknowledged again;
// false leaves the job for a later delivery.
func (d *delivery) confirmed(ctx context.Context) bool {
	if d.w.cfg.RedisWaitReplicas == 0 {
		return true
	}
	return d.w.durably(ctx, d.msg, func(c context.Context) error { return d.w.ledger.Confirm(c, d.job.ID) }) == nil
}

func (d *delivery) alreadyDone(why string) {
	d.w.metrics.AlreadyDone.Inc()
	d.attr(attribute.String("waq.already", why))
	d.ack()
	if d.w.log.Enabled(context.Background(), slog.LevelDebug) {
		if d.w.log.Enabled(context.Background(), slog.LevelDebug) {
			d.logger().Debug("already done; acknowledged without a send", "state", why, "delivery", d.delivered)
		}
	}
}

// dependencyDown hands the message back and marks Redis down when that is
// the cause, so the consume loop stops taking jobs.
func (d *delivery) dependencyDown(err error) {
	if isTransient(err) {
		d.w.setRedis(err)
	}
	if d.logID != "" {
		d.logger().Warn("dependency error; job handed back", "error", err)
	}
	d.nak(2 * time.Second)
}

func (d *delivery) ack() {
	if err := d.msg.Ack(); err != nil && d.logID != "" {
		// The outcome is recorded: a redelivery will be acked without a send.
		d.logger().Debug("ack not sent", "error", err)
	}
}

func (d *delivery) nak(delay time.Duration) {
	if err := d.msg.NakWithDelay(jitter(delay)); err != nil && d.logID != "" {
		d.logger().Debug("nak not sent; JetStream redelivers after the ack wait", "error", err)
	}
}

// durably runs write until it succeeds, while it fails for a transient
// reason (Redis down, failing over). Meanwhile Redis is marked down and
// JetStream is told the job is still being worked on. It gives up when ctx
// ends or the error is not transient.
//
// The job must not be handed to another worker meanwhile: while this one
// holds an answer it could not record, a second delivery would find no
// record and send again. So each try and each pause between tries is
// bounded by a quarter of the ack wait, and JetStream hears "in progress"
// at least every half of it, however long Redis stays away.
func (w *Worker) durably(ctx context.Context, msg jetstream.Msg, write func(context.Context) error) error {
	quarter := w.cfg.AckWait / 4
	wait := 50 * time.Millisecond
	progress := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, min(5*time.Second, quarter))
		err := write(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if !isTransient(err) || ctx.Err() != nil {
			return err
		}
		w.setRedis(err)
		if time.Since(progress) >= quarter {
			_ = msg.InProgress()
			progress = time.Now()
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(wait, quarter)):
		}
		if wait < 2*time.Second {
			wait *= 2
		}
	}
}

// isTransient tells a Redis that is unreachable, loading or failing over
// from an error that would repeat (a bug, a bad script).
func isTransient(err error) bool {
	if err == nil || errors.Is(err, ledger.ErrStale) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		// A replica behind or gone (a failover under way): write again.
		errors.Is(err, conn.ErrNotReplicated) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOSCRIPT", "connection refused", "connection reset", "broken pipe", "i/o timeout"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// failureLabel is the metric label and short name of a failure.
func failureLabel(f graph.Failure) string {
	switch {
	case f.HasCode:
		return strconv.Itoa(f.Code)
	case f.Transport && f.HTTPStatus == 0:
		return "transport"
	case f.Transport:
		return "http_" + strconv.Itoa(f.HTTPStatus)
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

func traceID(span trace.Span) string {
	sc := span.SpanContext()
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
