package throttle

import (
	"testing"
	"time"
)

// TestSlackTakesTheRoundTrip: a slot counted from the answer's arrival errs
// late by the round trip that reserved it, so the lateness a job may add is
// what is left of lateLimit, and never less than minSlack. Before, a job on
// a slot reserved in a 20 ms round trip could still go 15 ms late: 35 ms
// past its true slot, beyond windowGuard, and mps+1 sends fitted in one
// second (TestWindowAcrossGates saw 201 of 200 under load).
func TestSlackTakesTheRoundTrip(t *testing.T) {
	for _, c := range []struct {
		rtt, want time.Duration
	}{
		{0, lateLimit},
		{-time.Millisecond, lateLimit}, // the wall clock stepped back: no more than lateLimit
		{4 * time.Millisecond, lateLimit - 4*time.Millisecond},
		{lateLimit - minSlack, minSlack},
		{20 * time.Millisecond, minSlack},
		{time.Second, minSlack},
	} {
		got := slackAfter(c.rtt)
		if got != c.want {
			t.Errorf("rtt %v: slack %v, want %v", c.rtt, got, c.want)
		}
		// The job's lateness and the slot's error stay within the guard.
		if c.rtt+got > windowGuard && got != minSlack {
			t.Errorf("rtt %v + slack %v beyond the guard %v", c.rtt, got, windowGuard)
		}
	}
	at := time.Unix(1_000, 0)
	a := reservedAt(at, at.Add(-time.Second), slackAfter(12*time.Millisecond))
	if a.Late(at.Add(3*time.Millisecond)) || !a.Late(at.Add(6*time.Millisecond)) {
		t.Errorf("a slot reserved in 12 ms: late at 3 ms %v, at 6 ms %v; want false, true", a.Late(at.Add(3*time.Millisecond)), a.Late(at.Add(6*time.Millisecond)))
	}
	var ls leases
	ls.m = map[string]*lease{}
	ls.put("n", 0, at, 10*time.Millisecond, 2, minSlack)
	// 7 ms past the first slot (slack 5 ms): that slot is given up and the
	// next, 3 ms ahead, is handed out with the lease's slack.
	got, slack, ok, _ := ls.take("n", at.Add(7*time.Millisecond), lateLimit)
	if !ok || !got.Equal(at.Add(10*time.Millisecond)) || slack != minSlack {
		t.Errorf("7 ms late: slot %v (want %v), slack %v, ok %v", got, at.Add(10*time.Millisecond), slack, ok)
	}
	if _, _, ok, _ := ls.take("n", at.Add(11*time.Millisecond), lateLimit); ok {
		t.Error("a lease of two slots handed out a third")
	}
}
