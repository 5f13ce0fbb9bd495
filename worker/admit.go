package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
)

// admitted carries on with a job the gate has answered for (try i of its
// asking). It reports true when the job waits on a timer again (a job that
// came too late to its paced slot asks for another).
func (d *delivery) admitted(ctx context.Context, num numbers.Number, adm throttle.Admission, err error, i int) (waiting bool) {
	w := d.w
	if d.gaveUp(lapsedWaiting) {
		return false
	}
	if err != nil {
		d.dependencyDown(err)
		return false
	}
	if adm.Park != "" {
		d.park(ctx, adm.Park, adm.Why, adm.LastError, ledger.Attempt{Outcome: "paused", Error: adm.Why})
		return false
	}
	if adm.Wait > 0 && !adm.Reserved {
		w.metrics.Throttled.WithLabelValues(adm.Scope).Inc()
		d.attr(telemetry.AttrAction.String("wait"), attribute.String("waq.wait.scope", adm.Scope))
		d.nak(adm.Wait)
		return false
	}
	if w.stall != nil {
		w.stall(lapsedWaiting)
	}
	select {
	case w.slots <- struct{}{}:
		d.holding = true
	case <-w.stopping:
		d.nakNow()
		return false
	case <-ctx.Done():
		return false
	}
	// Every send slot may have been taken for long, or the process stood
	// still: too late to have said "in progress", the job is given up
	// (lapse.go).
	if d.gaveUp(lapsedWaiting) {
		return false
	}
	// A pause may have begun while the job waited for its slot (another
	// send's 190): a job that has not gone yet does not go with a bad token.
	if wait, paused := w.gate.Paused(num); paused {
		w.metrics.Throttled.WithLabelValues("paused").Inc()
		d.nak(wait)
		return false
	}
	// A job that reaches the send too long after its paced slot (a busy
	// CPU, every send slot taken) would bunch up with the number's next
	// sends: it gives the send slot back and asks for a new paced slot.
	if adm.Late(time.Now()) && i < 1000 {
		w.metrics.Throttled.WithLabelValues("late").Inc()
		d.release()
		return d.admit(ctx, num, i+1)
	}
	// The job may have waited a while for its slot and its send slot: the
	// send and its record must fit in the ack wait, or a second worker gets
	// the job meanwhile, finds no record and sends it again.
	d.keepFor(d.w.cfg.GraphTimeout)
	return d.send(ctx, num)
}

// admit asks the gate whether the job may go (try i of its asking). A job
// whose paced slot is near (within maxLocalWait) waits for it here, without
// a send slot or a goroutine. A job whose number's schedule is further out
// waits here too, in its number's line (line.go), while the line holds
// fewer than a few seconds' worth of jobs: that keeps a backlog in the
// stream instead of churning it through NakWithDelay. Any other wait (a
// pause, a hold, a hot recipient) goes back to JetStream with
// NakWithDelay.
func (d *delivery) admit(ctx context.Context, num numbers.Number, i int) (waiting bool) {
	w := d.w
	if d.behind(ctx, num, i, i > 0) {
		return true
	}
	adm, err := w.gate.Admit(ctx, num, d.sum.Addressee(), maxLocalWait)
	if err != nil {
		return d.admitted(ctx, num, adm, err, i)
	}
	if adm.Reserved {
		if adm.Wait > 0 {
			d.after(adm.Wait, func() bool { return d.admitted(ctx, num, adm, nil, i) })
			return true
		}
		return d.admitted(ctx, num, adm, nil, i)
	}
	if adm.Wait > 0 && adm.Scope == "pace" && i < 1000 && d.queue(ctx, num, i, adm.Wait) {
		return true
	}
	return d.admitted(ctx, num, adm, nil, i)
}

// after carries the job on with next once wait has passed, on a timer,
// and the caller must return without touching the job again: the timer's
// goroutine owns it now. next reports whether the job waits again. A stop
// hands the waiting job back at once.
func (d *delivery) after(wait time.Duration, next func() (waiting bool)) {
	// A job on a timer has no goroutine: it gives its busy place back.
	<-d.w.busy
	d.wakeAt(wait, next)
}

// wakeAt is after for a job that holds no busy place (one out of its line).
// A wait longer than a third of the ack wait is cut into steps, each told
// to JetStream as in progress: a job waiting here is this worker's, and must
// not be redelivered to another meanwhile.
func (d *delivery) wakeAt(wait time.Duration, next func() (waiting bool)) {
	step := d.w.cfg.AckWait / 3
	d.keepFor(min(wait, step))
	if wait > step {
		d.w.timers.schedule(d, step, func(stopping bool) {
			if stopping {
				d.nakNow()
				d.done(false)
				return
			}
			if d.gaveUp(lapsedWaiting) {
				// The timer came too late to say "in progress" in time.
				d.done(false)
				return
			}
			d.wakeAt(wait-step, next)
		})
		return
	}
	d.w.timers.schedule(d, wait, func(stopping bool) {
		if !stopping {
			select {
			case d.w.busy <- struct{}{}:
			case <-d.w.stopping:
				stopping = true
			}
		}
		if stopping {
			d.nakNow()
			d.done(false)
			return
		}
		if !next() {
			d.done(true)
		}
	})
}

// keepFor tells JetStream the job is in progress unless what is left of a
// third of the ack wait, since the job came or was last said to be in
// progress, covers dur more: a job this worker holds must not be redelivered
// to another meanwhile (it would find no record and send too). With the
// default ack wait (a minute) a job that waits a couple of seconds for its
// slot sends nothing more.
func (d *delivery) keepFor(dur time.Duration) {
	last := d.progress
	if last.IsZero() {
		last = d.received
	}
	if now := time.Now(); now.Sub(last)+dur >= d.w.cfg.AckWait/3 {
		d.inProgress(now)
	}
}

// maxLocalWait is the longest a job waits in the worker for its paced slot
// (without a send slot); a longer wait hands it back to JetStream.
const maxLocalWait = 2 * time.Second

// newGate builds w's throughput gate: pacing per number, back-off after
// rate limits, pauses after credential and account errors, shared by all of
// w's slots and, through Redis, by every worker.
func newGate(w *Worker) *throttle.Gate {
	return throttle.New(w.fast, w.numbers, w.graph, w.metrics, w.log, throttle.Config{
		Prefix:          w.cfg.KeyPrefix,
		PauseParkAfter:  w.cfg.PauseParkAfter,
		ProbeFirst:      w.cfg.PauseProbe,
		LevelEvery:      w.cfg.LevelEvery,
		HashRecipient:   w.hasher.Hash,
		TemplateHoldMax: w.cfg.TemplateHoldMax, HoldRecheck: w.cfg.HoldRecheck, TemplateRetry: w.cfg.TemplateRetry,
		LowQualityMarketing: w.cfg.LowQualityMarketing,
		Now:                 w.now,
	})
}
