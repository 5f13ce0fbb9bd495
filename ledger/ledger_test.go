package ledger_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

func code(n int) *int { return &n }

const (
	traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanHex  = "00f067aa0ba902b7"
)

func TestGenerations(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{Bodies: startBodies(t, ledger.BodiesConfig{})})
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
	// Parked, the job's history is in its dead-letter entry; a replay gives
	// it back (a history already there is kept), then starts a fresh count,
	// and the history goes on.
	if h, _ := l.History(ctx, "j"); len(h) != 0 {
		t.Errorf("history kept after the park: %+v", h)
	}
	parked := []ledger.Attempt{{At: at, Outcome: "failed"}, {At: at, Outcome: "failed"}, {At: at, Outcome: "failed"}, {At: at, Outcome: "throttled"}}
	if err := l.RestoreHistory(ctx, "j", parked); err != nil {
		t.Fatal(err)
	}
	if err := l.RestoreHistory(ctx, "j", parked[:1]); err != nil {
		t.Fatal(err)
	}
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
	if err := l.RecordSent(ctx, "j", 1, "wamid.1", ledger.Attempt{At: at, TraceID: traceHex, SpanID: spanHex}, []byte(`{"id":"j"}`)); err != nil {
		t.Fatal(err)
	}
	st, _ = l.Load(ctx, "j")
	if !st.HasSent(1) || st.HasSent(2) || st.TraceID != traceHex || st.SpanID != spanHex || !st.SentAs("wamid.1") || st.SentAs("wamid.2") || st.Parked != "" {
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

// TestSentFirstTimeIsSmall: a job sent at its first attempt has no key of
// its own, only fields in the compact index's buckets, which expire after
// the retention (and at most a quarter of it more).
func TestSentFirstTimeIsSmall(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	l := ledger.New(rdb, ledger.Options{Buckets: 4})
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		id := "quick" + strconv.Itoa(i)
		if err := l.RecordSentMany(ctx, []ledger.SentRecord{{ID: id, WAMID: "wamid." + id, Attempt: ledger.Attempt{At: time.Now()}, Body: []byte("body"), Fresh: true}}); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	// 4 job buckets, 4 wamid buckets, the window's count and bucket count.
	if len(keys) > 10 {
		t.Errorf("%d keys for 50 jobs sent first time: %v", len(keys), keys)
	}
	for _, k := range keys {
		ttl := rdb.TTL(ctx, k).Val()
		if ttl < 168*time.Hour || ttl > 210*time.Hour {
			t.Errorf("%s expires in %s, want 168h to 210h", k, ttl)
		}
		if strings.HasPrefix(k, "waq:lj:") || strings.HasPrefix(k, "waq:lw:") {
			if enc := rdb.ObjectEncoding(ctx, k).Val(); enc != "listpack" {
				t.Errorf("%s is stored as %s, want listpack", k, enc)
			}
		}
	}
	for i := 0; i < 50; i++ {
		id := "quick" + strconv.Itoa(i)
		if st, err := l.Load(ctx, id); err != nil || !st.Sent() || !st.SentAs("wamid."+id) {
			t.Fatalf("%s: %+v %v", id, st, err)
		}
		if j, _ := l.JobByWAMID(ctx, "wamid."+id); j != id {
			t.Fatalf("wamid of %s: %q", id, j)
		}
	}
	if st, _ := l.Load(ctx, "never"); st.Sent() || st != (ledger.State{}) {
		t.Errorf("a job never sent: %+v", st)
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
	if st.Sent() || st.Parked != "window" || st.ParkedGen != 1 || !st.FailureActedOn("wamid.B") || st.FailureActedOn("wamid.A") {
		t.Errorf("state = %+v", st)
	}
}

func TestStatusOrder(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	now := time.Now()
	// A record written before the compact index (the compact record's
	// order is TestCompactStatus's); a job with no record at all gets no
	// status (it was written into a hash without expiry before).
	if fresh, err := l.RecordStatus(ctx, "s", "delivered", now); err != nil || fresh {
		t.Errorf("no record: fresh %v (%v)", fresh, err)
	}
	if n, _ := r.Client(t).Exists(ctx, "waq:j:{s}").Result(); n != 0 {
		t.Error("a status of an unknown job left a key")
	}
	r.Client(t).HSet(ctx, "waq:j:{s}", "w", "wamid.s", "s", now.UnixMilli())
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

// TestRecordSentFresh: the record of a job sent first time (no hash) reads
// back as that of a job that failed before: state, wamid lookup, body, and
// no history.
func TestRecordSentFresh(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	l := ledger.New(conn.AutoPipelined(rdb), ledger.Options{Retention: time.Hour, ResendWindow: time.Minute,
		Bodies: startBodies(t, ledger.BodiesConfig{MaxAge: time.Minute})})
	ctx := context.Background()
	at := time.Now().Truncate(time.Second)
	a := ledger.Attempt{At: at, TraceID: traceHex, SpanID: spanHex}
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
		got, err := l.Load(ctx, id)
		if err != nil || got.SentAt != want.SentAt || !got.SentAt.Equal(at) || got.TraceID != traceHex || got.Gen != gen || got.SentGen != gen ||
			!got.HasSent(gen) || got.HasSent(gen+1) || !got.SentAs("wamid."+id) || got.SentAs("wamid.s") {
			t.Errorf("gen %d: state %+v, like %+v (%v)", gen, got, want, err)
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
		if n := rdb.Exists(ctx, "waq:j:{"+id+"}", "waq:j:{"+id+"}:b").Val(); n != 0 {
			t.Errorf("gen %d: %d keys of its own", gen, n)
		}
	}
}
