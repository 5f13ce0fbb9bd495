package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// TestAcksConfirmedAfterOutage: the acks of the last seconds before a
// disconnect and those sent while it lasts are sent again once it is back;
// older ones, and one whose ack wait has passed, are not; one the server
// never answers is given up when its ack wait passes.
func TestAcksConfirmedAfterOutage(t *testing.T) {
	var mu sync.Mutex
	tries := map[string]int{}
	a := newAcks(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute, func(_ context.Context, reply string) error {
		mu.Lock()
		defer mu.Unlock()
		tries[reply]++
		if reply == "never" {
			return errors.New("nats: timeout")
		}
		return nil
	})
	until := time.Now().Add(time.Minute)
	a.sent("old", until)
	a.recent[0].at = time.Now().Add(-2 * a.lookback) // sent long before the outage
	a.sent("recent", until)
	a.sent("lapsed", time.Now().Add(-time.Second))
	a.sent("", until)
	a.disconnected()
	a.sent("during", until)
	a.sent("never", time.Now().Add(300*time.Millisecond))
	a.reconnected()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("confirmations not over within 5s")
	}
	a.stop()
	mu.Lock()
	defer mu.Unlock()
	if n := tries["never"]; n < 1 || n >= confirmTries {
		t.Errorf("an ack never answered tried %d times: want at least once, until its ack wait passed", n)
	}
	delete(tries, "never")
	want := map[string]int{"recent": 1, "during": 1}
	if len(tries) != len(want) {
		t.Errorf("confirmed %v, want %v", tries, want)
	}
	for k, n := range want {
		if tries[k] != n {
			t.Errorf("%q tried %d times, want %d (all: %v)", k, tries[k], n, tries)
		}
	}
	var none *acks
	none.sent("x", until) // a worker that never connected
}

// BenchmarkAcksSent is what every ack costs beside Ack itself: noting it
// among the recent ones.
func BenchmarkAcksSent(b *testing.B) {
	a := newAcks(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute, nil)
	until := time.Now().Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		a.sent("$JS.ACK.WAQ_SEND.waq-worker.1.12345.12345.1700000000000000000.0", until)
	}
}
