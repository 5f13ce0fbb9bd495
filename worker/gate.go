package worker

import (
	"context"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
)

// Admission is the gate's answer before a send.
type Admission struct {
	// Wait > 0: hold the job back this long (NakWithDelay), for Scope.
	Wait  time.Duration
	Scope string
	// Park != "": park the job with this reason (a pause that gave up).
	Park      string
	Why       string
	LastError *deadletter.LastError
}

// Gate is the throughput control the worker consults around each send:
// pacing per number, back-off after rate limits, pauses after credential
// and account errors. Implementations are shared by all of a worker's
// slots and must be safe for concurrent use.
type Gate interface {
	// Admit says whether a job for num and recipient to may be sent now.
	Admit(ctx context.Context, num numbers.Number, to string) (Admission, error)
	// Throttled is told of a rate-limit answer (policy.Throttle with its
	// scope) and returns how long to hold the job back.
	Throttled(ctx context.Context, num numbers.Number, to string, scope policy.Scope, usage *graph.Usage, fallback time.Duration) time.Duration
	// Pause is told of a credential or account failure and returns how long
	// to hold the job back.
	Pause(ctx context.Context, num numbers.Number, scope policy.Scope, f graph.Failure, last *deadletter.LastError) time.Duration
	// Sent is told of every success.
	Sent(num numbers.Number)
	// Status lists numbers currently paused or throttled, for /readyz.
	Status() GateStatus
}

// GateStatus is what /readyz shows of the gate.
type GateStatus struct {
	Paused    []NumberState `json:"paused"`
	Throttled []NumberState `json:"throttled"`
	// AllPaused is true when no number can send.
	AllPaused bool `json:"all_paused"`
}

// NumberState is one number held back, and why.
type NumberState struct {
	PhoneNumberID string    `json:"phone_number_id,omitempty"`
	Scope         string    `json:"scope"`
	Reason        string    `json:"reason"`
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until,omitempty"`
	Rate          float64   `json:"rate,omitempty"`
}

// newGate builds the default gate for w.
func newGate(w *Worker) Gate { return passGate{} }

// passGate admits everything and waits the policy's fallback delays.
type passGate struct{}

func (passGate) Admit(context.Context, numbers.Number, string) (Admission, error) {
	return Admission{}, nil
}
func (passGate) Throttled(_ context.Context, _ numbers.Number, _ string, _ policy.Scope, _ *graph.Usage, fallback time.Duration) time.Duration {
	return fallback
}
func (passGate) Pause(_ context.Context, _ numbers.Number, _ policy.Scope, _ graph.Failure, _ *deadletter.LastError) time.Duration {
	return 30 * time.Second
}
func (passGate) Sent(numbers.Number) {}
func (passGate) Status() GateStatus  { return GateStatus{} }
