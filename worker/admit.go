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
	select {
	case w.slots <- struct{}{}:
		d.holding = true
	case <-w.stopping:
		_ = d.msg.Nak()
		return false
	case <-ctx.Done():
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
		d.release()
		return d.admit(ctx, num, i+1)
	}
	d.send(ctx, num)
	return false
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
	adm, err := w.gate.Admit(ctx, num, d.sum.Addressee(), maxLocalWait)
	if err != nil {
		return d.admitted(ctx, num, adm, err, i)
	}
	if adm.Reserved {
		d.unkeep(num)
		if adm.Wait > 0 {
			d.after(adm.Wait, func() bool { return d.admitted(ctx, num, adm, nil, i) })
			return true
		}
		return d.admitted(ctx, num, adm, nil, i)
	}
	if adm.Wait <= 0 || adm.Scope != "pace" || i >= 1000 || !d.keep(num) {
		d.unkeep(num)
		return d.admitted(ctx, num, adm, nil, i)
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
// seconds' worth of the number's sends (at the rate it is paced at); it
// reports false past that.
func (w *Worker) keep(num numbers.Number) bool {
	limit := max(8, 4*w.gate.MPS(num))
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

// maxLocalWait is the longest a job waits in the worker for its paced slot
// (without a send slot); a longer wait hands it back to JetStream.
const maxLocalWait = 2 * time.Second

// newGate builds w's throughput gate: pacing per number, back-off after
// rate limits, pauses after credential and account errors, shared by all of
// w's slots and, through Redis, by every worker.
func newGate(w *Worker) *throttle.Gate {
	return throttle.New(w.fast, w.numbers, w.graph, w.metrics, w.log, throttle.Config{
		Prefix:         w.cfg.KeyPrefix,
		PauseParkAfter: w.cfg.PauseParkAfter,
		ProbeFirst:     w.cfg.PauseProbe,
		Now:            w.now,
	})
}
