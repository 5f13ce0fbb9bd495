package worker

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestTimersRunOnPool: a fired timer's function runs through run (the
// worker's pool), once, told it is not stopping; a stop fires the pending
// ones at once, told so.
func TestTimersRunOnPool(t *testing.T) {
	var tm timers
	var viaRun atomic.Int32
	tm.setRun(func(fn func()) { viaRun.Add(1); go fn() })
	fired := make(chan bool, 4)
	tm.schedule(&delivery{}, 5*time.Millisecond, func(stopping bool) { fired <- stopping })
	select {
	case stopping := <-fired:
		if stopping {
			t.Error("a timer that fired was told it is stopping")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the timer did not fire")
	}
	if n := viaRun.Load(); n != 1 {
		t.Errorf("run called %d times, want 1", n)
	}

	tm.schedule(&delivery{}, time.Hour, func(stopping bool) { fired <- stopping })
	tm.stop()
	select {
	case stopping := <-fired:
		if !stopping {
			t.Error("a stop did not say so")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stop did not fire the pending timer")
	}
	tm.schedule(&delivery{}, time.Hour, func(stopping bool) { fired <- stopping })
	select {
	case stopping := <-fired:
		if !stopping {
			t.Error("a schedule after the stop did not say so")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a schedule after the stop did not run")
	}
	if n := viaRun.Load(); n != 1 {
		t.Errorf("run called %d times after the stop, want 1", n)
	}
}
