package worker

import (
	"context"
	"sync"
	"time"

	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/throttle"
)

// Lines: the jobs this process holds for a number whose schedule is
// reserved past the horizon (maxLocalWait) wait in one line, in the order
// they came, with neither a goroutine nor a timer of their own. One wake per
// number asks the gate for slots again once the schedule has moved up, and
// hands them to the line's jobs from the front: one Redis round trip per
// lease of slots, sized to the jobs waiting, rather than every waiting job
// asking on its own about once a second (four script runs per job at
// 80 msg/s), and no slot leased that no job here will use, which at the end
// of a backlog left the number's last slots empty.
type lines struct {
	mu      sync.Mutex
	m       map[string]*line
	stopped bool
}

// line is one number's waiting jobs, oldest first.
type line struct {
	jobs []lined
	wake *time.Timer // nil while the line's jobs are being admitted, or none wait
}

type lined struct {
	d   *delivery
	ctx context.Context
	num numbers.Number
	i   int // the job's tries at asking so far
}

// lineLimitLocked is how many jobs of num one process keeps in its line
// (w.lines.mu held): about four seconds' worth of the number's sends (at the
// rate it is paced at), or more, up to a fair share of three quarters of
// the jobs the process may hold, split between the numbers with a line.
// Past it a job goes back to JetStream until the line is shorter, so that
// one number's backlog does not take every place; within it the process
// stops pulling (every place is taken) before it pulls jobs only to hand
// them back, which costs a redelivery each and, at the end of a backlog,
// leaves the numbers' last slots to jobs that come back late.
func (w *Worker) lineLimitLocked(num numbers.Number) int {
	share := cap(w.held) * 3 / 4 / max(1, len(w.lines.m))
	return max(8, 4*w.gate.MPS(num), share)
}

// behind puts the job in its number's line when the line has jobs already
// (it would only be served after them), and reports whether it did: at the
// end, or at the front for a job that asks again (it came too late to its
// slot, and was first). The job gives its busy place back: it has no
// goroutine while in line.
func (d *delivery) behind(ctx context.Context, num numbers.Number, i int, front bool) bool {
	w := d.w
	w.lines.mu.Lock()
	l := w.lines.m[num.PhoneNumberID]
	if w.lines.stopped || l == nil || len(l.jobs) == 0 || len(l.jobs) >= w.lineLimitLocked(num) {
		w.lines.mu.Unlock()
		return false
	}
	d.progressed()
	if front {
		l.jobs = append([]lined{{d: d, ctx: ctx, num: num, i: i}}, l.jobs...)
	} else {
		l.jobs = append(l.jobs, lined{d: d, ctx: ctx, num: num, i: i})
	}
	w.lines.mu.Unlock()
	<-w.busy
	return true
}

// queue puts the job at the end of its number's line, whose schedule has no
// slot within the horizon for wait (the gate's answer), and makes sure the
// line wakes when the schedule has moved up. It reports false (the job is
// not queued) when the line is full or the worker stops.
func (d *delivery) queue(ctx context.Context, num numbers.Number, i int, wait time.Duration) bool {
	w := d.w
	w.lines.mu.Lock()
	if w.lines.stopped {
		w.lines.mu.Unlock()
		return false
	}
	if w.lines.m == nil {
		w.lines.m = map[string]*line{}
	}
	l := w.lines.m[num.PhoneNumberID]
	if l == nil {
		l = &line{}
		w.lines.m[num.PhoneNumberID] = l
	}
	if len(l.jobs) >= w.lineLimitLocked(num) {
		w.lines.mu.Unlock()
		return false
	}
	d.progressed()
	l.jobs = append(l.jobs, lined{d: d, ctx: ctx, num: num, i: i})
	if l.wake == nil {
		w.armLocked(num.PhoneNumberID, l, wait)
	}
	w.lines.mu.Unlock()
	<-w.busy
	return true
}

// progressed tells JetStream that a job waiting in line is in progress,
// unless it did so lately: a line may hold a job for a while (a number
// slowed after 130429), and the job may have waited in the client's buffer
// before. Called before the job joins, and for every job of the line at
// each wake, with w.lines.mu held: a job in line is the line's.
func (d *delivery) progressed() {
	if now := time.Now(); now.Sub(d.progress) >= d.w.cfg.AckWait/3 {
		d.inProgress(now)
	}
}

// again is when a line whose schedule's first free slot is wait away asks
// again: once the schedule is within half the horizon, so that each wake
// leases about half a horizon's worth of slots and the schedule never runs
// dry while the line has jobs.
func again(wait time.Duration) time.Duration {
	return min(max(wait-maxLocalWait/2, 10*time.Millisecond), maxLocalWait)
}

// armLocked sets the line's wake (w.lines.mu held).
func (w *Worker) armLocked(pn string, l *line, wait time.Duration) {
	// A line wakes at least every third of the ack wait, when its jobs are
	// told to JetStream as in progress.
	l.wake = time.AfterFunc(min(again(wait), w.cfg.AckWait/3), func() { w.serveLine(pn, l) })
}

// serveLine admits the line's jobs from the front until the gate has no slot
// within the horizon, then sets the line's next wake; a line left empty is
// forgotten. Each admitted job carries on as it would have after its own
// Admit.
func (w *Worker) serveLine(pn string, l *line) {
	for {
		w.lines.mu.Lock()
		if w.lines.stopped {
			w.lines.mu.Unlock()
			return
		}
		if len(l.jobs) == 0 {
			l.wake = nil
			if w.lines.m[pn] == l {
				delete(w.lines.m, pn)
			}
			w.lines.mu.Unlock()
			return
		}
		j := l.jobs[0]
		l.jobs = l.jobs[1:]
		ready := len(l.jobs) + 1
		w.lines.mu.Unlock()

		d := j.d
		adm, err := w.gate.AdmitReady(j.ctx, j.num, d.sum.Addressee(), maxLocalWait, ready)
		if err == nil && !adm.Reserved && adm.Wait > 0 && adm.Scope == "pace" && j.i < 1000 {
			// No slot within the horizon: the job stays first.
			j.i++
			w.lines.mu.Lock()
			if w.lines.stopped {
				w.lines.mu.Unlock()
				w.handBack(d)
				return
			}
			l.jobs = append([]lined{j}, l.jobs...)
			for _, j := range l.jobs {
				j.d.progressed()
			}
			w.armLocked(pn, l, adm.Wait)
			w.lines.mu.Unlock()
			return
		}
		d.carryOn(j.ctx, j.num, adm, err, j.i)
	}
}

// carryOn takes a job out of its line on with the gate's answer: on a timer
// to its slot, or in a goroutine of its own (with a busy place) for
// anything else.
func (d *delivery) carryOn(ctx context.Context, num numbers.Number, adm throttle.Admission, err error, i int) {
	if err == nil && adm.Reserved && adm.Wait > 0 {
		d.wakeAt(adm.Wait, func() bool { return d.admitted(ctx, num, adm, nil, i) })
		return
	}
	go func() {
		select {
		case d.w.busy <- struct{}{}:
		case <-d.w.stopping:
			d.w.handBack(d)
			return
		}
		if !d.admitted(ctx, num, adm, err, i) {
			d.done(true)
		}
	}()
}

// handBack gives a job without a busy place back to JetStream at once (the
// worker stops).
func (w *Worker) handBack(d *delivery) {
	d.nakNow()
	d.done(false)
}

// stopLines hands every job in a line back to JetStream, and every job that
// would join one later.
func (w *Worker) stopLines() {
	w.lines.mu.Lock()
	w.lines.stopped = true
	var back []*delivery
	for pn, l := range w.lines.m {
		if l.wake != nil {
			l.wake.Stop()
		}
		for _, j := range l.jobs {
			back = append(back, j.d)
		}
		l.jobs = nil
		delete(w.lines.m, pn)
	}
	w.lines.mu.Unlock()
	for _, d := range back {
		w.handBack(d)
	}
}
