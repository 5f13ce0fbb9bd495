package ledger_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

func code(n int) *int { return &n }

func TestGenerations(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	at := time.Now()
	for i := 1; i <= 3; i++ {
		n, err := l.RecordAttempt(ctx, "j", 0, ledger.Attempt{At: at, Outcome: "failed", Code: code(131000)}, ledger.CountAttempt)
		if err != nil || n != i {
			t.Fatalf("attempt %d: %d %v", i, n, err)
		}
	}
	if n, _ := l.RecordAttempt(ctx, "j", 0, ledger.Attempt{At: at, Outcome: "throttled"}, ledger.CountHeld); n != 1 {
		t.Errorf("held = %d", n)
	}
	if err := l.MarkParked(ctx, "j", 0, "retries_exhausted"); err != nil {
		t.Fatal(err)
	}
	st, _ := l.Load(ctx, "j")
	if st.Attempts != 3 || st.Throttles != 1 || !st.ParkedAt(0) || st.ParkedAt(1) || st.Sent() {
		t.Fatalf("state = %+v", st)
	}
	// A replay (generation 1) starts a fresh count; the history goes on.
	if n, err := l.RecordAttempt(ctx, "j", 1, ledger.Attempt{At: at, Outcome: "failed"}, ledger.CountAttempt); err != nil || n != 1 {
		t.Fatalf("gen 1: %d %v", n, err)
	}
	st, _ = l.Load(ctx, "j")
	if st.Gen != 1 || st.Attempts != 1 || st.Throttles != 0 || st.Parked != "" {
		t.Errorf("after the replay = %+v", st)
	}
	// The older generation is stale now.
	if _, err := l.RecordAttempt(ctx, "j", 0, ledger.Attempt{At: at}, ledger.CountAttempt); !errors.Is(err, ledger.ErrStale) {
		t.Errorf("stale generation: %v", err)
	}
	if err := l.RecordSent(ctx, "j", 1, "wamid.1", ledger.Attempt{At: at, TraceID: "t", SpanID: "s"}, []byte(`{"id":"j"}`)); err != nil {
		t.Fatal(err)
	}
	st, _ = l.Load(ctx, "j")
	if !st.HasSent(1) || st.HasSent(2) || st.TraceID != "t" || st.SpanID != "s" {
		t.Errorf("sent = %+v", st)
	}
	h, _ := l.History(ctx, "j")
	if len(h) != 6 || h[5].Outcome != "sent" || h[5].Gen != 1 {
		t.Errorf("history = %+v", h)
	}
	if b, _ := l.Body(ctx, "j"); string(b) != `{"id":"j"}` {
		t.Errorf("body = %s", b)
	}
	if id, _ := l.JobByWAMID(ctx, "wamid.1"); id != "j" {
		t.Errorf("wamid index = %q", id)
	}
}

// TestSentFirstTimeIsSmall: a job sent at its first attempt keeps no history.
func TestSentFirstTimeIsSmall(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	l := ledger.New(rdb, ledger.Options{ResendWindow: -1})
	ctx := context.Background()
	if err := l.RecordSent(ctx, "quick", 0, "wamid.q", ledger.Attempt{At: time.Now()}, []byte("body")); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, "waq:j:{quick}:h", "waq:j:{quick}:b").Result(); n != 0 {
		t.Errorf("%d extra keys for a job sent first time without a resend window", n)
	}
	if ttl, _ := rdb.TTL(ctx, "waq:j:{quick}").Result(); ttl < 167*time.Hour {
		t.Errorf("record ttl = %s", ttl)
	}
}

func TestWebhookFailureOnce(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	l.RecordSent(ctx, "w", 0, "wamid.A", ledger.Attempt{At: time.Now()}, nil)
	a := ledger.Attempt{At: time.Now(), Outcome: "failed", Code: code(131000)}
	if out, err := l.RecordWebhookFailure(ctx, "w", "wamid.A", false, "", 0, a); err != nil || out != ledger.WebhookRecorded {
		t.Fatalf("first: %v %v", out, err)
	}
	if out, _ := l.RecordWebhookFailure(ctx, "w", "wamid.A", false, "", 0, a); out != ledger.WebhookDone {
		t.Errorf("second: %v", out)
	}
	// Sent again as generation 1 with a new wamid; an old failure is stale.
	l.RecordSent(ctx, "w", 1, "wamid.B", ledger.Attempt{At: time.Now()}, nil)
	if out, _ := l.RecordWebhookFailure(ctx, "w", "wamid.X", true, "window", 1, a); out != ledger.WebhookStale {
		t.Errorf("other wamid: %v", out)
	}
	if out, _ := l.RecordWebhookFailure(ctx, "w", "wamid.B", true, "window", 1, a); out != ledger.WebhookRecorded {
		t.Errorf("park: %v", out)
	}
	st, _ := l.Load(ctx, "w")
	if st.Sent() || st.Parked != "window" || st.ParkedGen != 1 || st.FailedWAMID != "wamid.B" {
		t.Errorf("state = %+v", st)
	}
}

func TestStatusOrder(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	now := time.Now()
	for _, c := range []struct {
		status string
		fresh  bool
	}{{"delivered", true}, {"sent", false}, {"read", true}, {"delivered", false}, {"failed", true}, {"read", false}} {
		fresh, err := l.RecordStatus(ctx, "s", c.status, now)
		if err != nil || fresh != c.fresh {
			t.Errorf("%s: fresh %v, want %v (%v)", c.status, fresh, c.fresh, err)
		}
	}
}

// TestRestartedRedisForgetsScripts: the pipelined write reloads its script
// after a restart (NOSCRIPT) instead of failing.
func TestRestartedRedisForgetsScripts(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	if err := l.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	r.Start(t)
	testenv.Eventually(t, 5*time.Second, func() error { return l.Ping(ctx) })
	if err := l.RecordSentMany(ctx, []ledger.SentRecord{{ID: "a", WAMID: "wamid.a", Attempt: ledger.Attempt{At: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := l.Load(ctx, "a"); !st.Sent() {
		t.Error("not recorded after a restart")
	}
}

// TestRecordSentFresh: the plain-command record of a job sent first time
// reads back as the script's does: state, wamid lookup, body, expiries, and
// no history.
func TestRecordSentFresh(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	l := ledger.New(conn.AutoPipelined(rdb), ledger.Options{Retention: time.Hour, ResendWindow: time.Minute})
	ctx := context.Background()
	at := time.UnixMilli(1764100000123)
	a := ledger.Attempt{At: at, TraceID: "t1", SpanID: "s1"}
	if err := l.RecordSent(ctx, "script", 0, "wamid.s", a, []byte(`{"id":"script"}`)); err != nil {
		t.Fatal(err)
	}
	for _, gen := range []int{0, 2} {
		id := "fresh" + strconv.Itoa(gen)
		rec := ledger.SentRecord{ID: id, Gen: gen, WAMID: "wamid." + id, Attempt: a, Body: []byte(`{"id":"` + id + `"}`), Fresh: true}
		if err := l.RecordSentMany(ctx, []ledger.SentRecord{rec}); err != nil {
			t.Fatal(err)
		}
		want, _ := l.Load(ctx, "script")
		want.WAMID, want.Gen, want.SentGen = "wamid."+id, gen, gen
		got, err := l.Load(ctx, id)
		if err != nil || got != want || !got.HasSent(gen) || got.HasSent(gen+1) {
			t.Errorf("gen %d: state %+v, want %+v (%v)", gen, got, want, err)
		}
		if j, err := l.JobByWAMID(ctx, "wamid."+id); err != nil || j != id {
			t.Errorf("gen %d: wamid lookup %q %v", gen, j, err)
		}
		if b, _ := l.Body(ctx, id); string(b) != `{"id":"`+id+`"}` {
			t.Errorf("gen %d: body %s", gen, b)
		}
		if h, _ := l.History(ctx, id); len(h) != 0 {
			t.Errorf("gen %d: a job sent first time has no history: %+v", gen, h)
		}
		if ttl := rdb.PTTL(ctx, "waq:j:{"+id+"}").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
			t.Errorf("gen %d: record expires in %v, want the retention", gen, ttl)
		}
		if ttl := rdb.PTTL(ctx, "waq:j:{"+id+"}:b").Val(); ttl <= 59*time.Second || ttl > time.Minute {
			t.Errorf("gen %d: body expires in %v, want the resend window", gen, ttl)
		}
	}
}
