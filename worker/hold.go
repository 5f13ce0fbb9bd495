package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
)

// heldBack asks the gate whether the job's template (paused, disabled,
// rejected, deleted, RED for marketing) or its number's quality (FLAGGED,
// for marketing) holds it back. It reports true when the job was put in
// the hold set for a while (not sent, not parked, not lost; a slowed one
// is handed back to JetStream for its second) or parked
// (a rejected or deleted template, a hold past WAQ_TEMPLATE_HOLD_MAX).
func (d *delivery) heldBack(ctx context.Context, num numbers.Number) bool {
	w := d.w
	j := throttle.Job{Template: d.sum.Template, Language: d.sum.Language}
	j.Category = w.gate.Category(num, d.endpoint(num) == queue.APIMarketingMessages, j.Template, j.Language)
	adm := w.gate.Check(ctx, num, j)
	switch {
	case adm.Park != "":
		d.attr(attribute.String("waq.hold.scope", adm.Scope))
		d.park(ctx, adm.Park, adm.Why, &deadletter.LastError{Title: adm.Why}, ledger.Attempt{Outcome: "held", Error: adm.Why})
		return true
	case adm.Wait > 0:
		w.metrics.Holds.Held.WithLabelValues(adm.Scope).Inc()
		d.attr(telemetry.AttrAction.String("hold"), attribute.String("waq.hold.scope", adm.Scope))
		if d.delivered == 1 {
			d.logger().Info("held: not sent for now", "scope", adm.Scope, "why", adm.Why, "look_again_in", adm.Wait.Round(time.Second).String())
		}
		if adm.Hold {
			d.hold(ctx, adm.Wait)
		} else {
			d.nak(adm.Wait)
		}
		return true
	}
	return false
}

// templateFailed acts on a send whose template Meta says is paused or
// disabled (132015, 132016; the policy's pause with scope template): the
// template is held for every job, and this job waits in the hold set with them.
func (d *delivery) templateFailed(ctx context.Context, num numbers.Number, f graph.Failure, last *deadletter.LastError, dec policy.Decision, a ledger.Attempt) {
	w := d.w
	if d.sum.Template == "" {
		// The policy file holds a template for a code on a job that has
		// none: nothing to hold, so park it with the rule's reason.
		d.park(ctx, dec.Reason, "the policy holds the template for "+failureLabel(f)+", but the job is not a template message", last, a)
		return
	}
	delay := w.gate.HoldTemplate(ctx, num, d.sum.Template, d.sum.Language, f, last)
	a.DelayMS = delay.Milliseconds()
	if !d.record(ctx, a, ledger.CountHeld) {
		return
	}
	w.metrics.Holds.Held.WithLabelValues(throttle.ScopeTemplate).Inc()
	d.logger().Warn("template paused or disabled; its jobs are held", "code", failureLabel(f), "template", d.sum.Template,
		"language", d.sum.Language, "delay", delay.String())
	d.hold(ctx, delay)
}
