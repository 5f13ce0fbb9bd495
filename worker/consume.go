package worker

// Consuming: the pool of goroutines that run jobs, the pull loop that feeds
// them, and draining it on stop.

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxPool bounds the goroutines kept to run jobs: each keeps the stack
// its deepest job grew (about 16 KiB), so thousands of them would hold
// memory the runtime could otherwise give back. Past it, a job gets a
// goroutine of its own.
const maxPool = 256

// startPool starts (once) the goroutines that run jobs; they stop when Run
// returns.
func (w *Worker) startPool(work context.Context) (jobs chan<- pulled, done <-chan struct{}) {
	w.poolOnce.Do(func() {
		w.pool = make(chan pulled)
		w.later = make(chan func())
		w.poolDone = make(chan struct{})
		for range min(cap(w.busy), maxPool) {
			go func() {
				for {
					select {
					case p := <-w.pool:
						w.handle(work, p)
					case fn := <-w.later:
						fn()
					case <-w.poolDone:
						return
					}
				}
			}()
		}
		w.timers.setRun(w.runPooled)
	})
	return w.pool, w.poolDone
}

// runPooled runs fn on a pooled goroutine, or on a goroutine of its own
// when every pooled one is busy (or the pool has ended).
func (w *Worker) runPooled(fn func()) {
	select {
	case w.later <- fn:
	default:
		go fn()
	}
}

// consume pulls jobs and hands each to a goroutine until ctx ends. The
// consume callback runs on one goroutine: blocking it (too many jobs held, a
// dependency down) is the back-pressure, and pulls stop once the client's
// buffer is full.
func (w *Worker) consume(ctx, work context.Context) error {
	batch := w.cfg.Concurrency
	if batch > 1000 {
		batch = 1000
	}
	// Jobs run on a pool of goroutines, one per busy place: a goroutine
	// made per job would grow its stack again for every job (the send path
	// is deep), which cost about 5% of the worker's CPU. The pool outlives
	// this call (a callback may still be running when it returns) and ends
	// with Run.
	jobs, poolDone := w.startPool(work)
	// clock bounds how long each message waited in the client's buffer,
	// so that one kept there past the ack wait is not sent (lapse.go).
	clock := newPullClock(batch)
	callback := func(msg jetstream.Msg) {
		start := time.Now()
		p := pulled{msg: msg, heard: clock.began(start)}
		defer clock.ended(start)
		if w.stall != nil {
			w.stall(lapsedPulled)
		}
		if ctx.Err() != nil {
			// Stopping: hand back what was pulled and not started, so
			// another worker takes it now rather than after the ack wait.
			_ = msg.Nak()
			return
		}
		if w.health.anyDown() {
			// Pulled before a dependency went down: leave it to come back
			// after the ack wait (see below).
			return
		}
		select {
		case w.held <- struct{}{}:
		case <-ctx.Done():
			_ = msg.Nak()
			return
		}
		select {
		case w.busy <- struct{}{}:
		case <-ctx.Done():
			<-w.held
			_ = msg.Nak()
			return
		}
		w.inflight.Add(1)
		select {
		case jobs <- p: // the goroutine gives back the hold, the busy place and the in-flight count
		case <-poolDone:
			<-w.busy
			<-w.held
			w.inflight.Done()
			_ = msg.Nak()
		default:
			// Every pooled goroutine is busy.
			go w.handle(work, p)
		}
	}
	for {
		if err := w.health.waitUp(ctx); err != nil {
			return nil
		}
		cc, err := w.cons.Consume(callback,
			jetstream.PullMaxMessages(batch),
			jetstream.PullExpiry(5*time.Second),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if ctx.Err() == nil && !errors.Is(err, nats.ErrConnectionClosed) {
					w.log.Debug("pull", "error", err)
				}
			}))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("could not start pulling; trying again", "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			drain(cc)
			return nil
		case <-w.health.whenDown(ctx):
			// A dependency is down: stop pulling, and drop what was pulled
			// and not started. Those jobs come back after the ack wait. Kept
			// here until the dependency returned, they could be taken up
			// late, while JetStream had already given them to another
			// delivery: two deliveries of one job at once may both send it.
			cc.Stop()
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// drain stops pulling and lets the messages already pulled reach the
// callback (which hands them back), for at most five seconds.
func drain(cc jetstream.ConsumeContext) {
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
		cc.Stop()
	}
}

// waitingJobs is how many jobs a process may hold waiting for their paced
// slot besides those sending: enough to keep every number's schedule
// reserved a couple of seconds ahead at a few thousand sends per second.
func waitingJobs(concurrency int) int {
	return min(max(2048, 2*concurrency), 8192)
}
