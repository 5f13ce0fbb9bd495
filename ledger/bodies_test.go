package ledger_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// TestBodiesBatched: jobs recorded as sent at the same time share messages
// of the bodies stream, and each one's body reads back as its own (for a
// webhook failure that parks it or sends it again).
func TestBodiesBatched(t *testing.T) {
	r := testenv.StartRedis(t)
	bodies, js := startBodiesJS(t, ledger.BodiesConfig{})
	ctx := context.Background()
	var errs []error
	var mu sync.Mutex
	l := ledger.New(conn.AutoPipelined(r.Client(t)), ledger.Options{Bodies: bodies, OnBodyError: func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}})
	const jobs = 300
	body := func(i int) string { return fmt.Sprintf(`{"id":"b%d","pad":"%0*d"}`, i, i%700, 0) }
	var wg sync.WaitGroup
	fail := make(chan error, jobs)
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "b" + strconv.Itoa(i)
			rec := ledger.SentRecord{ID: id, WAMID: "wamid." + id, Attempt: ledger.Attempt{At: time.Now()}, Body: []byte(body(i)), Fresh: true}
			if err := l.RecordSentMany(ctx, []ledger.SentRecord{rec}); err != nil {
				fail <- err
			}
		}()
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("bodies not kept: %v", errs)
	}
	for i := range jobs {
		id := "b" + strconv.Itoa(i)
		if b, err := l.Body(ctx, id); err != nil || string(b) != body(i) {
			t.Fatalf("%s: body %q %v", id, b, err)
		}
	}
	s, err := js.Stream(ctx, "WAQ_BODIES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 || info.State.Msgs >= jobs {
		t.Errorf("%d messages for %d bodies sent together, want fewer", info.State.Msgs, jobs)
	}
	t.Logf("%d bodies in %d messages", jobs, info.State.Msgs)
}

// TestBodyMessages: a message of one body (as written before batches) is
// still read; a batch finds only the bodies it holds, and a cut batch
// reads as no body rather than a wrong one.
func TestBodyMessages(t *testing.T) {
	bodies, js := startBodiesJS(t, ledger.BodiesConfig{})
	ctx := context.Background()
	publish := func(hdr, val string, data []byte) uint64 {
		m := nats.NewMsg("waq.body")
		m.Header.Set(hdr, val)
		m.Data = data
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	frame := func(id, body string) []byte {
		return append(append([]byte{byte(len(id))}, id+string(rune(len(body)))...), body...)
	}
	one := publish("Waq-Job-Id", "old", []byte(`{"id":"old"}`))
	batch := append(frame("a", `{"id":"a"}`), frame("bb", `{"id":"bb"}`)...)
	two := publish("Waq-Bodies", "2", batch)
	cut := publish("Waq-Bodies", "2", batch[:len(batch)-3])
	tests := []struct {
		id   string
		seq  uint64
		want string
	}{
		{"old", one, `{"id":"old"}`},
		{"other", one, ""},
		{"a", two, `{"id":"a"}`},
		{"bb", two, `{"id":"bb"}`},
		{"b", two, ""},
		{"old", two, ""},
		{"a", cut, ""},
		{"bb", cut, ""},
		{"a", cut + 10, ""},
	}
	for _, tt := range tests {
		got, err := bodies.GetBody(ctx, tt.id, tt.seq)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s at %d: %q %v, want %q", tt.id, tt.seq, got, err, tt.want)
		}
	}
}
