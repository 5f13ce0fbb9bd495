package worker

import (
	"testing"
	"time"
)

// The bound of a message's wait in the client's buffer is the callback's
// running time since the message 2×batch before it began: a callback held
// 10 s makes the messages behind it (as many as the buffer may hold) count
// as delivered before the hold, and the bound falls back once they passed;
// a callback that never blocks gives each message about its own start.
func TestPullClock(t *testing.T) {
	p := newPullClock(2) // the buffer holds up to 4
	t0 := time.Unix(1_000_000, 0)
	now := t0
	took := []time.Duration{10 * time.Second, 0, 0, time.Second, 0, 0, 0, 0}
	want := []time.Duration{0, 10 * time.Second, 10 * time.Second, 10 * time.Second, 11 * time.Second, time.Second, time.Second, time.Second}
	for i := range took {
		if got := now.Sub(p.began(now)); got != want[i] {
			t.Errorf("message %d: waited at most %v, want %v", i, got, want[i])
		}
		p.ran(took[i])
		now = now.Add(took[i])
	}
	// A slow trickle, nothing blocked: the callback's few microseconds on
	// the messages before, however far apart they came.
	q := newPullClock(2)
	for i := range 10 {
		now = now.Add(time.Hour)
		if got := now.Sub(q.began(now)); got != time.Duration(min(i, 4))*time.Microsecond {
			t.Errorf("trickle %d: waited at most %v, want %dµs", i, got, min(i, 4))
		}
		q.ran(time.Microsecond)
		now = now.Add(time.Microsecond)
	}
}

// BenchmarkPullClock is what the consume callback adds per message.
func BenchmarkPullClock(b *testing.B) {
	p := newPullClock(256)
	for b.Loop() {
		start := time.Now()
		_ = p.began(start)
		p.ended(start)
	}
}
