package worker

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/webhook"
)

// handleAccount records an account webhook change (template status or
// quality, phone number quality, account update) in the gate's shared
// state, where the next job's check sees it: held, released, parked or
// paused (see throttle/templatehold.go and throttle/account.go).
func (w *Worker) handleAccount(ctx context.Context, msg jetstream.Msg) {
	ev, err := webhook.DecodeAccountEvent(msg.Data())
	if err != nil {
		w.log.Warn("account event does not decode; dropped", "error", err)
		_ = msg.Term()
		return
	}
	result := "recorded"
	switch ev.Field {
	case webhook.FieldTemplateStatus, webhook.FieldTemplateQuality:
		err = w.gate.RecordTemplate(ctx, ev)
	case webhook.FieldNumberQuality:
		err = w.gate.RecordNumberQuality(ctx, ev)
	case webhook.FieldAccountUpdate:
		result, err = w.gate.AccountUpdate(ctx, ev)
	}
	if err != nil {
		w.redisLater(msg, err)
		return
	}
	w.metrics.Holds.AccountEvents.WithLabelValues(ev.Field, ev.Event).Inc()
	w.log.Debug("account event", "field", ev.Field, "event", ev.Event, "waba_id", ev.WABAID, "result", result)
	_ = msg.Ack()
}
