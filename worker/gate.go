package worker

import (
	"context"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/throttle"
)

// Gate is the throughput control the worker consults around each send:
// pacing per number, back-off after rate limits, pauses after credential
// and account errors. It is shared by all of a worker's slots.
// throttle.Gate is the implementation; tests may inject their own.
type Gate interface {
	// Admit says whether a job for num and recipient to may be sent now;
	// with maxWait > 0 it may reserve a slot up to maxWait ahead.
	Admit(ctx context.Context, num numbers.Number, to string, maxWait time.Duration) (throttle.Admission, error)
	// Throttled is told of a rate-limit answer and returns how long to hold
	// the job back.
	Throttled(ctx context.Context, num numbers.Number, to string, scope policy.Scope, usage *graph.Usage, fallback time.Duration) time.Duration
	// Pause is told of a credential or account failure and returns how long
	// to hold the job back.
	Pause(ctx context.Context, num numbers.Number, scope policy.Scope, f graph.Failure, last *deadletter.LastError) time.Duration
	// Paused reports, from memory, whether num is paused now, and how long
	// to hold its jobs back.
	Paused(num numbers.Number) (time.Duration, bool)
	// Sent is told of every success.
	Sent(num numbers.Number)
	// Status lists what is paused or throttled, for /readyz.
	Status() throttle.Status
	// Run keeps shared state fresh until ctx ends.
	Run(ctx context.Context)
}

// maxLocalWait is the longest a job waits in the worker for its paced slot
// (without a send slot); a longer wait hands it back to JetStream.
const maxLocalWait = 2 * time.Second

// newGate builds the default gate for w.
func newGate(w *Worker) Gate {
	return throttle.New(w.fast, w.numbers, w.graph, w.metrics, w.log, throttle.Config{
		Prefix:         w.cfg.KeyPrefix,
		PauseParkAfter: w.cfg.PauseParkAfter,
		ProbeFirst:     w.cfg.PauseProbe,
		Now:            w.now,
	})
}
