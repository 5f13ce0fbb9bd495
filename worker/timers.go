package worker

import (
	"sync"
	"time"
)

// timers keeps the jobs that wait for their paced slot: a timer each and no
// goroutine, so that thousands of waiting jobs cost little memory. A stop
// fires every pending timer at once, telling it so.
type timers struct {
	mu      sync.Mutex
	pending map[*delivery]waitingJob
	stopped bool
	// run runs a fired timer's function; nil: in a goroutine of its own.
	// The worker runs them on its pool (startPool): the function sends the
	// job, and a goroutine made for it would grow its stack again for
	// every job (10% of the worker's CPU in waq bench's profile).
	run func(func())
}

// setRun sets how fired timers' functions run.
func (t *timers) setRun(run func(func())) {
	t.mu.Lock()
	t.run = run
	t.mu.Unlock()
}

type waitingJob struct {
	timer *time.Timer
	fn    func(stopping bool)
}

// schedule runs fn(false) after wait, or fn(true) as soon as the worker
// stops, whichever comes first; exactly once, in a goroutine of its own (or
// of the pool, see run).
func (t *timers) schedule(d *delivery, wait time.Duration, fn func(stopping bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		go fn(true)
		return
	}
	if t.pending == nil {
		t.pending = map[*delivery]waitingJob{}
	}
	// The timer's function takes the lock, so it cannot run before the
	// entry is in the map.
	t.pending[d] = waitingJob{fn: fn, timer: time.AfterFunc(wait, func() {
		t.mu.Lock()
		_, mine := t.pending[d]
		delete(t.pending, d)
		run := t.run
		t.mu.Unlock()
		switch {
		case !mine:
		case run != nil:
			run(func() { fn(false) })
		default:
			fn(false)
		}
	})}
}

// stop fires every pending timer with stopping set, and every later
// schedule at once.
func (t *timers) stop() {
	t.mu.Lock()
	t.stopped = true
	fire := make([]func(bool), 0, len(t.pending))
	for d, w := range t.pending {
		// A timer that has fired already is waiting for the lock: it must
		// find its entry and carry the job on itself, or the job is never
		// done and the stop waits for it for ever.
		if w.timer.Stop() {
			fire = append(fire, w.fn)
			delete(t.pending, d)
		}
	}
	t.mu.Unlock()
	for _, fn := range fire {
		go fn(true)
	}
}
