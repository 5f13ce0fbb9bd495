package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
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
	claimed   bool // holds its job id in the worker's active set
	// attrs wait for the span's end: set in one call, the span's slice of
	// attributes grows once rather than at every step.
	attrs    []attribute.KeyValue
	progress time.Time // when JetStream was last told the job is in progress
	received time.Time // the earliest JetStream may have delivered it (pullClock)
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
func (w *Worker) handle(ctx context.Context, p pulled) {
	msg := p.msg
	d := &delivery{w: w, msg: msg, delivered: 1, received: p.heard}
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
	ctx, d.span = w.tracer.Start(parent, "process "+msg.Subject(), consumerSpan)
	if d.span.IsRecording() {
		d.span.SetAttributes(spanAttrs(w, msg, job, sum, d.gen, decodeErr)...)
	}
	if decodeErr == nil {
		d.job, d.sum = job, sum
		d.logID = job.ID
	}
	if d.gaveUp(lapsedPulled) {
		// It waited in the client's buffer, or the process stood still,
		// until JetStream may have given it to another worker.
		return
	}
	if decodeErr != nil {
		d.parkInvalid(ctx, decodeErr)
		return
	}
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

// consumerSpan starts a job's span; made once, as an option is allocated
// each time one is made.
var consumerSpan = trace.WithSpanKind(trace.SpanKindConsumer)

// spanAttrs is every attribute of a job's span known at its start, in one
// slice: added one call at a time, they would grow the span's slice again
// and again. Only a span that records gets them (not with tracing off):
// the recipient's hash alone is a keyed hash per job.
func spanAttrs(w *Worker, msg jetstream.Msg, job *queue.Job, sum queue.Summary, gen int, decodeErr error) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 16+metadataLen(job))
	attrs = append(attrs,
		telemetry.AttrMessagingSystem.String("nats"),
		telemetry.AttrOperation.String("process"),
		telemetry.AttrDestination.String(msg.Subject()),
	)
	if decodeErr != nil {
		return attrs
	}
	attrs = append(attrs,
		telemetry.AttrMessageID.String(job.ID),
		telemetry.AttrPhoneNumberID.String(job.PhoneNumberID),
		telemetry.AttrRecipient.String(w.hasher.Hash(sum.Addressee())),
	)
	if sum.Template != "" {
		attrs = append(attrs, telemetry.AttrTemplate.String(sum.Template))
	}
	if gen > 0 {
		attrs = append(attrs, telemetry.AttrReplay.Int(gen))
	}
	for k, v := range job.Metadata {
		attrs = append(attrs, attribute.String(telemetry.AttrMetadataPrefix+k, v))
	}
	return attrs
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
	if d.heldBack(ctx, num) {
		return false
	}
	return d.admit(ctx, num, 0)
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

// attr adds attributes to the job's span (when it ends).
func (d *delivery) attr(kv ...attribute.KeyValue) {
	if !d.span.IsRecording() {
		return
	}
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

func (d *delivery) alreadyDone(why string) {
	d.w.metrics.AlreadyDone.Inc()
	d.attr(attribute.String("waq.already", why))
	d.ack()
	if d.w.log.Enabled(context.Background(), slog.LevelDebug) {
		d.logger().Debug("already done; acknowledged without a send", "state", why, "delivery", d.delivered)
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
	// JetStream delivers the job again an ack wait after it last heard of
	// it: until then, confirming the ack after an outage spares that.
	heard := d.received
	if d.progress.After(heard) {
		heard = d.progress
	}
	d.w.acks.sent(d.msg.Reply(), heard.Add(d.w.cfg.AckWait))
}

func (d *delivery) nak(delay time.Duration) {
	if d.lapsed(time.Now()) {
		return // see nakNow
	}
	if err := d.msg.NakWithDelay(jitter(delay)); err != nil && d.logID != "" {
		d.logger().Debug("nak not sent; JetStream redelivers after the ack wait", "error", err)
	}
}

func spanID(span trace.Span) string {
	sc := span.SpanContext()
	if !sc.HasSpanID() {
		return ""
	}
	return sc.SpanID().String()
}

func traceID(span trace.Span) string {
	sc := span.SpanContext()
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
