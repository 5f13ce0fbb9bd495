package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/webhook"
)

// eventSlots bounds the status events a process handles at once.
const eventSlots = 64

// eventsAckWait is the ack wait of the status events' consumer.
const eventsAckWait = 30 * time.Second

// unmatchedTries is how many deliveries a status whose wamid is unknown gets
// (1s, then 2s apart) before it is counted as unmatched.
const unmatchedTries = 3

// consumeEvents processes status events from the WAQ_EVENTS stream until
// ctx ends: each status is matched to its job by wamid and recorded; a
// failed status goes through the policy like a synchronous error.
func (w *Worker) consumeEvents(ctx, work context.Context) error {
	sem := make(chan struct{}, eventSlots)
	cc, err := w.events.Consume(func(msg jetstream.Msg) {
		if ctx.Err() != nil || w.health.waitUp(ctx) != nil {
			_ = msg.Nak()
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			_ = msg.Nak()
			return
		}
		w.inflight.Add(1)
		ev := confirmedEvent{Msg: msg, acks: w.acks, until: time.Now().Add(eventsAckWait)}
		go func() {
			defer func() { <-sem; w.inflight.Done() }()
			w.handleStatus(work, ev)
		}()
	}, jetstream.PullMaxMessages(eventSlots), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consume status events: %w", err)
	}
	<-ctx.Done()
	drain(cc)
	return nil
}

// confirmedEvent is a status event whose ack, like a job's, is confirmed
// after a NATS outage (acks.go): an ack lost while NATS is away would
// otherwise cost a redelivery an ack wait later, handled again as a
// duplicate.
type confirmedEvent struct {
	jetstream.Msg
	acks *acks
	// until is when JetStream delivers the event again unacknowledged.
	until time.Time
}

// Ack acknowledges the event and remembers the ack for confirming.
func (e confirmedEvent) Ack() error {
	err := e.Msg.Ack()
	e.acks.sent(e.Reply(), e.until)
	return err
}

// redisLater hands a status event back for a moment: Redis failed under it.
func (w *Worker) redisLater(msg jetstream.Msg, err error) {
	w.setRedis(err)
	_ = msg.NakWithDelay(2 * time.Second)
}

// statusRank orders delivery statuses: a late "sent" does not undo a
// "delivered".
var statusRank = map[string]int{"sent": 1, "delivered": 2, "read": 3}

func (w *Worker) handleStatus(ctx context.Context, msg jetstream.Msg) {
	if webhook.IsAccountSubject(msg.Subject()) {
		w.handleAccount(ctx, msg)
		return
	}
	ev, err := webhook.DecodeEvent(msg.Data())
	if err != nil {
		w.log.Warn("status event does not decode; dropped", "error", err)
		_ = msg.Term()
		return
	}
	id, err := w.ledger.JobByWAMID(ctx, ev.WAMID)
	if err != nil {
		w.redisLater(msg, err)
		return
	}
	if id == "" {
		// Meta can report a status before the worker that sent the job has
		// written its record (the answer and the webhook race): look again
		// a little later before calling it unmatched.
		if md, err := msg.Metadata(); err == nil && md.NumDelivered < unmatchedTries {
			_ = msg.NakWithDelay(time.Duration(md.NumDelivered) * time.Second)
			return
		}
		w.metrics.Webhooks.WithLabelValues(ev.Status, "unmatched").Inc()
		w.log.Info("status for a wamid this system did not send (or no longer remembers); nothing done",
			"wamid", ev.WAMID, "status", ev.Status, "phone_number_id", ev.PhoneNumberID)
		_ = msg.Ack()
		return
	}
	st, err := w.ledger.Load(ctx, id)
	if err != nil {
		w.redisLater(msg, err)
		return
	}
	if ids := recipientIDs(ev); !st.Recipient.Knows(ids) {
		if _, err := w.ledger.RecordRecipientIDs(ctx, id, ids); err != nil {
			w.redisLater(msg, err)
			return
		}
	}
	ctx, span := w.statusSpan(ctx, ev, id, st)
	defer span.End()
	log := w.log.With("job_id", id, "trace_id", st.TraceID, "wamid", ev.WAMID)

	price := statusPricing(ev, span)
	if ev.Status != "failed" {
		out, err := w.ledger.RecordStatusWith(ctx, id, ev.Status, orNow(ev.Time(), w.now()), price)
		if err != nil {
			w.redisLater(msg, err)
			return
		}
		w.countPricing(out, price)
		result := "matched"
		if !out.Status {
			result = "duplicate"
		}
		w.metrics.Webhooks.WithLabelValues(ev.Status, result).Inc()
		log.Debug("status recorded", "status", ev.Status, "result", result)
		_ = msg.Ack()
		return
	}
	if price != nil {
		// A failed message can carry pricing too (billable false, as a
		// rule): recorded and counted like a delivered one's, before the
		// policy acts, so that every branch below (a duplicate, a stale
		// wamid, a park, a resend) keeps it. The record takes the first
		// pricing of the job, so a failed status after a sent one with
		// pricing, or a failed webhook delivered twice, counts nothing.
		out, err := w.ledger.RecordStatusWith(ctx, id, "", orNow(ev.Time(), w.now()), price)
		if err != nil {
			w.redisLater(msg, err)
			return
		}
		w.countPricing(out, price)
	}
	w.statusFailed(ctx, msg, ev, id, st, span, log)
}

// statusPricing is a status's pricing as the ledger keeps it, nil when the
// webhook gave none (or one of another shape), and puts it on the span.
func statusPricing(ev webhook.Status, span trace.Span) *ledger.Pricing {
	p := ev.Pricing
	if p == nil {
		return nil
	}
	price := &ledger.Pricing{Billable: p.Billable, PricingModel: p.PricingModel, Category: p.Category, Type: p.Type}
	k := price.Known()
	span.SetAttributes(telemetry.AttrPricingCategory.String(k.Category), telemetry.AttrBillable.Bool(k.Billable))
	return price
}

// countPricing counts a message's pricing once: when the record took it
// (Meta repeats the pricing on each status of a message).
func (w *Worker) countPricing(out ledger.StatusRecorded, price *ledger.Pricing) {
	if !out.Pricing || price == nil {
		return
	}
	k := price.Known()
	w.metrics.Pricing.WithLabelValues(label(k.Category), label(k.PricingModel), label(k.Type), strconv.FormatBool(k.Billable)).Inc()
}

// recipientIDs are the business-scoped user IDs a status gives that the
// job does not carry: the recipient's, when the job addressed it by number
// (the status has a recipient_id; a job addressed by BSUID has it in its
// body), and the parent's. An ID not in Meta's format is left out.
func recipientIDs(ev webhook.Status) ledger.RecipientIDs {
	var ids ledger.RecipientIDs
	if ev.RecipientID != "" && queue.IsUserID(ev.RecipientUserID) && !queue.IsParentUserID(ev.RecipientUserID) {
		ids.UserID = ev.RecipientUserID
	}
	if queue.IsParentUserID(ev.RecipientParentUserID) {
		ids.ParentUserID = ev.RecipientParentUserID
	}
	return ids
}

// statusSpan is the status's span in the job's trace: a child of the send
// attempt, and linked to it.
func (w *Worker) statusSpan(ctx context.Context, ev webhook.Status, id string, st ledger.State) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			telemetry.AttrMessagingSystem.String("nats"),
			telemetry.AttrOperation.String("process"),
			telemetry.AttrMessageID.String(id),
			telemetry.AttrPhoneNumberID.String(ev.PhoneNumberID),
			telemetry.AttrWAMID.String(ev.WAMID),
			telemetry.AttrStatus.String(ev.Status),
		),
	}
	if tid, err := trace.TraceIDFromHex(st.TraceID); err == nil {
		if sid, err := trace.SpanIDFromHex(st.SpanID); err == nil {
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("waq.link", "send attempt")}}))
		}
	}
	return w.tracer.Start(ctx, "status "+ev.Status, opts...)
}

// statusFailed acts on a failed status once per wamid: park the job with
// its reason, or send it again as a new generation.
func (w *Worker) statusFailed(ctx context.Context, msg jetstream.Msg, ev webhook.Status, id string, st ledger.State, span trace.Span, log *slog.Logger) {
	f := graph.Failure{Transport: true}
	var se webhook.StatusError
	if len(ev.Errors) > 0 {
		se = ev.Errors[0]
		f = graph.Failure{HasCode: true, Code: se.Code}
		span.SetAttributes(telemetry.AttrErrorCode.Int(se.Code))
	}
	span.SetStatus(codes.Error, "failed by webhook: "+failureLabel(f))
	switch {
	case st.FailureActedOn(ev.WAMID):
		w.metrics.Webhooks.WithLabelValues("failed", "duplicate").Inc()
		_ = msg.Ack()
		return
	case !st.Sent() && st.Parked == "":
		// The wamid's index is written in the same round trip as the job's
		// record; a restarted Redis can split them for a moment. Look again.
		if md, err := msg.Metadata(); err == nil && md.NumDelivered < unmatchedTries {
			_ = msg.NakWithDelay(time.Duration(md.NumDelivered) * time.Second)
			return
		}
		w.metrics.Webhooks.WithLabelValues("failed", "stale").Inc()
		_ = msg.Ack()
		return
	case !st.SentAs(ev.WAMID):
		// The job was sent again, or parked, since: this failure is old news.
		w.metrics.Webhooks.WithLabelValues("failed", "stale").Inc()
		_ = msg.Ack()
		return
	case statusRank[st.Status] >= statusRank["delivered"]:
		// Meta said delivered (or read) before: record the contradiction,
		// do not park or send a message the customer has.
		_, _ = w.ledger.RecordStatus(ctx, id, "failed", orNow(ev.Time(), w.now()))
		w.metrics.Webhooks.WithLabelValues("failed", "after_delivered").Inc()
		log.Warn("failed status after delivered; recorded, not acted on", "code", failureLabel(f))
		_ = msg.Ack()
		return
	}
	attempts := policy.Attempts{Sends: st.Attempts + st.Throttles + 1, Held: st.Throttles}
	dec := w.policy.DecideAttempts(f, attempts)
	span.SetAttributes(telemetry.AttrAction.String(string(dec.Action)))
	a := ledger.Attempt{At: w.now().UTC(), Outcome: "failed", Action: string(dec.Action),
		TraceID: traceID(span), SpanID: span.SpanContext().SpanID().String(), Worker: w.id, Error: "reported by webhook"}
	if f.HasCode {
		c := f.Code
		a.Code = &c
	}
	body, err := w.ledger.Body(ctx, id)
	if err != nil {
		w.redisLater(msg, err)
		return
	}

	if dec.Action != policy.Park && body != nil {
		// A failure worth another try: wait its backoff once (the event
		// comes back), then publish the job again as a new generation.
		if md, err := msg.Metadata(); err == nil && md.NumDelivered == 1 && dec.Delay > 0 {
			a.DelayMS = dec.Delay.Milliseconds()
			log.Info("failed by webhook; sending again after the backoff", "code", failureLabel(f), "delay", dec.Delay.String())
			_ = msg.NakWithDelay(dec.Delay)
			return
		}
		if err := w.resend(ctx, body, st, span); err != nil {
			log.Warn("could not publish the job again; the event will be retried", "error", err)
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
		out, err := w.ledger.RecordWebhookFailure(ctx, id, ev.WAMID, false, "", st.SentGen, a)
		if err != nil {
			w.redisLater(msg, err)
			return
		}
		w.metrics.Webhooks.WithLabelValues("failed", "resent").Inc()
		w.metrics.Retries.WithLabelValues(failureLabel(f)).Inc()
		log.Info("failed by webhook; sent again as a new attempt", "code", failureLabel(f), "recorded", out == ledger.WebhookRecorded)
		_ = msg.Ack()
		return
	}

	reason, problem := dec.Reason, "failed by webhook: "+failureLabel(f)
	if dec.Action != policy.Park {
		// Worth another try, but the job's body is no longer kept.
		reason, problem = policy.ReasonRetriesExhausted, problem+"; the job is past the resend window (WAQ_RESEND_WINDOW), so it cannot be sent again"
	}
	history, err := w.ledger.History(ctx, id)
	if err != nil {
		w.redisLater(msg, err)
		return
	}
	history = append(history, a)
	var job *queue.Job
	var sum queue.Summary
	if body != nil {
		if j, su, err := queue.Decode(body); err == nil {
			job, sum = j, su
		}
	}
	e := w.newEntry(id, st.SentGen, reason, problem, body, job, sum)
	e.Attempts, e.TraceID, e.SpanID = history, st.TraceID, st.SpanID
	e.LastError = &deadletter.LastError{Title: se.Title, Message: se.Message, Details: se.Details()}
	if f.HasCode {
		c := f.Code
		e.LastError.Code = &c
	}
	e.PhoneNumberID = ev.PhoneNumberID
	if job != nil {
		e.Subject = queue.Subject(queue.DefaultSubjectPrefix, job.PhoneNumberID)
	}
	if e.To == "" && e.Recipient == "" {
		e.To, e.Recipient = ev.RecipientID, ev.RecipientUserID
		if e.To != "" {
			e.Recipient = ""
		}
	}
	if err := w.dlq.Park(ctx, e); err != nil {
		w.redisLater(msg, err)
		return
	}
	if _, err := w.ledger.RecordWebhookFailure(ctx, id, ev.WAMID, true, reason, st.SentGen, a); err != nil {
		w.redisLater(msg, err)
		return
	}
	w.metrics.Webhooks.WithLabelValues("failed", "parked").Inc()
	w.metrics.Parked.WithLabelValues(reason).Inc()
	span.SetAttributes(telemetry.AttrDLQReason.String(reason))
	log.Info("failed by webhook; parked", "reason", reason, "code", failureLabel(f))
	_ = msg.Ack()
}

// resend publishes a sent job again as the next generation; its
// de-duplication id makes a second publish for the same failure a no-op.
func (w *Worker) resend(ctx context.Context, body []byte, st ledger.State, span trace.Span) error {
	var job queue.Job
	if err := json.Unmarshal(body, &job); err != nil {
		return fmt.Errorf("stored job does not decode: %w", err)
	}
	_, err := w.producer.PublishWith(trace.ContextWithSpan(ctx, span), &job, queue.PublishOptions{Replay: st.SentGen + 1})
	if err != nil {
		return err
	}
	return nil
}

// label is a metric label value: "none" for a value Meta left out.
func label(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
