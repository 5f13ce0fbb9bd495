package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/webhook"
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

// TestStatusEventAcksConfirmed: a status event's ack goes the way of a
// job's: one sent while NATS is away (or in the seconds before it went) is
// sent again as a request once the connection is back, and the server's
// answer confirms it — here on a real JetStream consumer, whose ack floor
// then covers the event. With a plain ack nothing is remembered, and an ack
// the server never got costs a redelivery an ack wait (30 s) later.
func TestStatusEventAcksConfirmed(t *testing.T) {
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	ctx := context.Background()
	s, err := queue.EnsureStream(ctx, js, queue.StreamConfig{Name: "WAQ_EVENTS", SubjectPrefix: webhook.DefaultSubjectPrefix})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := queue.EnsureConsumer(ctx, s, queue.ConsumerConfig{Durable: "waq-status", AckWait: eventsAckWait, MaxAckPending: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := js.Publish(ctx, webhook.DefaultSubjectPrefix+".1", []byte(`{"id":"wamid.`+strconv.Itoa(i)+`","status":"delivered"}`)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var confirmed []string
	a := newAcks(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute, func(ctx context.Context, reply string) error {
		mu.Lock()
		confirmed = append(confirmed, reply)
		mu.Unlock()
		return natsConfirm(nc)(ctx, reply)
	})
	defer a.stop()
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 2 {
		t.Fatalf("fetched %d events", len(msgs))
	}
	before := confirmedEvent{Msg: msgs[0], acks: a, until: time.Now().Add(eventsAckWait)}
	if err := before.Ack(); err != nil { // acked just before NATS went away
		t.Fatal(err)
	}
	a.disconnected()
	during := confirmedEvent{Msg: msgs[1], acks: a, until: time.Now().Add(eventsAckWait)}
	if err := during.Ack(); err != nil { // acked while it was away
		t.Fatal(err)
	}
	a.reconnected()
	testenv.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(confirmed) != 2 || confirmed[0] == confirmed[1] || !slices.Contains(confirmed, msgs[0].Reply()) || !slices.Contains(confirmed, msgs[1].Reply()) {
			return fmt.Errorf("confirmed %q", confirmed)
		}
		return nil
	})
	a.stop()
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.AckFloor.Stream != 2 {
		t.Errorf("after the confirmations: %d events unacknowledged, ack floor %d: want 0, 2", info.NumAckPending, info.AckFloor.Stream)
	}
}
