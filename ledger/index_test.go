package ledger_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// clock is a settable clock for the ledger's windows.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestWindows: a record is found for the whole retention while the windows
// roll over, and not after; a window's bucket count comes from the records
// of the window before it.
func TestWindows(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	// In the future, so that the windows' keys, expiring on Redis's clock, stay.
	c := &clock{t: time.Now().Add(48 * time.Hour).Truncate(time.Hour)}
	opts := ledger.Options{Retention: 4 * time.Hour, Buckets: 2, Now: c.now}
	l := ledger.New(rdb, opts)
	ctx := context.Background()
	send := func(id string) {
		t.Helper()
		if err := l.RecordSent(ctx, id, 0, "wamid."+id, ledger.Attempt{At: c.now()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 256; i++ {
		send("early" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	// The next window sizes itself from the first one's 256 records (each
	// process adds to the count 64 at a time).
	c.add(time.Hour)
	send("second")
	if n, _ := rdb.Get(ctx, "waq:lb:"+windowOf(c.now())).Int(); n != 4 {
		t.Errorf("a window after 256 records has %d buckets, want 4", n)
	}
	c.add(-time.Hour)
	// Windows of an hour: the record must be there until 4h after its
	// window ended, whichever process asks.
	for h := 0; h < 4; h++ {
		c.add(time.Hour)
		other := ledger.New(rdb, opts)
		if st, err := other.Load(ctx, "earlyaa"); err != nil || !st.SentAs("wamid.earlyaa") {
			t.Fatalf("after %dh: %+v %v", h+1, st, err)
		}
		if id, _ := other.JobByWAMID(ctx, "wamid.earlyaa"); id != "earlyaa" {
			t.Fatalf("after %dh: wamid gives %q", h+1, id)
		}
	}
	send("later")
	c.add(time.Hour)
	if st, _ := ledger.New(rdb, opts).Load(ctx, "earlyaa"); st.Sent() {
		t.Errorf("found past the retention: %+v", st)
	}
	if st, _ := ledger.New(rdb, opts).Load(ctx, "second"); !st.Sent() {
		t.Errorf("a record of the second window is gone: %+v", st)
	}
	if st, _ := ledger.New(rdb, opts).Load(ctx, "later"); !st.Sent() {
		t.Errorf("a record of a later window is gone: %+v", st)
	}
	if ttl := rdb.PTTL(ctx, "waq:lb:"+windowOf(c.now().Add(-time.Hour))).Val(); ttl <= 0 {
		t.Errorf("bucket count without an expiry: %v", ttl)
	}
}

func windowOf(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli()/time.Hour.Milliseconds(), 10)
}

// TestIDForms: ids that are UUIDs in another case, long ids, ids of 15 and
// 16 bytes (15 + the kind byte is a UUID's 16) and a UUID of another variant
// than RFC 4122's come back from their wamid as they were.
func TestIDForms(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	for _, id := range []string{
		"018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90",
		"018F6B1E-8F3A-7C4E-9D2A-3B5C6D7E8F90",
		"sixteen-bytes-id",
		"failed-unpriced",
		"ñññññññ1",
		"72666169-6c65-642d-756e-707269636564",
		strings.Repeat("l", 128),
		"x",
	} {
		if err := l.RecordSent(ctx, id, 0, "wamid."+id, ledger.Attempt{At: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := l.JobByWAMID(ctx, "wamid."+id); err != nil || got != id {
			t.Errorf("id %q comes back as %q (%v)", id, got, err)
		}
	}
	if got, _ := l.JobByWAMID(ctx, "wamid.never"); got != "" {
		t.Errorf("unknown wamid: %q", got)
	}
}

// TestIDValuesWrittenBefore: index values of 16 bytes written before 15-byte
// ids had a form of their own ('r' and the id) read as that id, UUIDs of
// every variant as UUIDs, and every value written now as what it is.
func TestIDValuesWrittenBefore(t *testing.T) {
	for _, c := range []struct {
		value string
		uuid  bool
	}{
		{"rfailed-unpriced", false},
		{"r" + "ñññññññ1", false}, // byte 8 is 0xb1, RFC 4122's variant bits
		{string(mustBytes("018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90")), true},
		{string(mustBytes("72666169-6c65-642d-b56e-70726963fe64")), true}, // starts with 'r', not text
		{string(mustBytes("3f666169-6c65-642d-356e-707269636564")), true}, // another variant, not 'r'
	} {
		if got := ledger.IsUUIDValue(c.value); got != c.uuid {
			t.Errorf("%q: read as a UUID %v, want %v", c.value, got, c.uuid)
		}
	}
	for _, id := range []string{"failed-unpriced", "ñññññññ1", "72666169-6c65-642d-756e-707269636564", "x"} {
		if v := ledger.EncodeID(id); ledger.IsUUIDValue(v) {
			t.Errorf("id %q is written as %q, which reads as a UUID", id, v)
		}
	}
}

func mustBytes(s string) []byte {
	u := uuid.MustParse(s)
	return u[:]
}

// TestCompactStatus: delivery statuses on a sent job's compact record keep
// their order and time, and a webhook failure of its wamid parks it once.
func TestCompactStatus(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	sent := time.Now().Truncate(time.Second)
	if err := l.RecordSent(ctx, "c", 0, "wamid.c", ledger.Attempt{At: sent, TraceID: traceHex, SpanID: spanHex}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		status string
		fresh  bool
	}{{"delivered", true}, {"sent", false}, {"bogus", false}, {"read", true}, {"delivered", false}} {
		fresh, err := l.RecordStatus(ctx, "c", c.status, sent.Add(3*time.Minute))
		if err != nil || fresh != c.fresh {
			t.Errorf("%s: fresh %v, want %v (%v)", c.status, fresh, c.fresh, err)
		}
	}
	st, _ := l.Load(ctx, "c")
	if st.Status != "read" || !st.StatusAt.Equal(sent.Add(3*time.Minute)) || !st.SentAs("wamid.c") || st.TraceID != traceHex {
		t.Errorf("state = %+v", st)
	}
	a := ledger.Attempt{At: time.Now(), Outcome: "failed", Code: code(131047)}
	if out, _ := l.RecordWebhookFailure(ctx, "c", "wamid.other", true, "window", 0, a); out != ledger.WebhookStale {
		t.Errorf("another wamid: %v", out)
	}
	if out, err := l.RecordWebhookFailure(ctx, "c", "wamid.c", true, "window", 0, a); err != nil || out != ledger.WebhookRecorded {
		t.Fatalf("park: %v %v", out, err)
	}
	if out, _ := l.RecordWebhookFailure(ctx, "c", "wamid.c", true, "window", 0, a); out != ledger.WebhookDone {
		t.Errorf("the same failure again: %v", out)
	}
	st, _ = l.Load(ctx, "c")
	if st.Sent() || st.Parked != "window" || !st.FailureActedOn("wamid.c") || st.Status != "read" {
		t.Errorf("after the park: %+v", st)
	}
	// The dead-letter entry holds the history of a parked job.
	if h, _ := l.History(ctx, "c"); len(h) != 0 {
		t.Errorf("history kept after the park: %+v", h)
	}
}

// TestLegacyRecords: records written before the compact index (a hash with
// the wamid, a wamid key, a body key) are still read and acted on.
func TestLegacyRecords(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	rdb.HSet(ctx, "waq:j:{old}", "w", "wamid.old", "s", time.Now().UnixMilli(), "sg", 0, "ti", traceHex, "si", spanHex)
	rdb.Set(ctx, "waq:w:wamid.old", "old", time.Hour)
	rdb.Set(ctx, "waq:j:{old}:b", `{"id":"old"}`, time.Hour)
	l := ledger.New(rdb, ledger.Options{})
	st, err := l.Load(ctx, "old")
	if err != nil || !st.Sent() || !st.SentAs("wamid.old") || st.TraceID != traceHex {
		t.Fatalf("old record: %+v %v", st, err)
	}
	if id, _ := l.JobByWAMID(ctx, "wamid.old"); id != "old" {
		t.Errorf("old wamid key: %q", id)
	}
	if b, _ := l.Body(ctx, "old"); string(b) != `{"id":"old"}` {
		t.Errorf("old body: %s", b)
	}
	if fresh, _ := l.RecordStatus(ctx, "old", "delivered", time.Now()); !fresh {
		t.Error("status on an old record not recorded")
	}
	a := ledger.Attempt{At: time.Now(), Outcome: "failed"}
	if out, _ := l.RecordWebhookFailure(ctx, "old", "wamid.old", true, "window", 0, a); out != ledger.WebhookRecorded {
		t.Errorf("park an old record: %v", out)
	}
	if st, _ := l.Load(ctx, "old"); st.Sent() || st.Parked != "window" || !st.FailureActedOn("wamid.old") {
		t.Errorf("old record after the park: %+v", st)
	}
}

// TestFirstWindowGrows: a window that outgrows its buckets (the first one
// of a deployment has no predecessor to size it) announces four times as
// many and writes to them from a few seconds later on, while every record,
// before and after, is found by its id and its wamid from any process —
// one that learnt the window's buckets before it grew too. Before steps, the
// 1,200 records stayed in the window's 4 buckets (300 fields each: Redis
// hashtables, twice the bytes of listpacks).
func TestFirstWindowGrows(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	c := &clock{t: time.Now().Add(48 * time.Hour).Truncate(time.Hour).Add(time.Minute)}
	opts := ledger.Options{Retention: 4 * time.Hour, Buckets: 4, Now: c.now}
	l := ledger.New(rdb, opts)
	ctx := context.Background()
	reader := ledger.New(rdb, opts) // learns the buckets early
	if _, err := reader.Load(ctx, "nothing"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 1200; i++ {
		id := "grow-" + strconv.Itoa(i)
		ids = append(ids, id)
		if err := l.RecordSent(ctx, id, 0, "wamid."+id, ledger.Attempt{At: c.now()}, nil); err != nil {
			t.Fatal(err)
		}
		c.add(50 * time.Millisecond) // 20 a second: a minute in all
	}
	w := windowOf(c.now())
	if v := rdb.Get(ctx, "waq:lb:"+w+":1").Val(); !strings.HasPrefix(v, "16:") {
		t.Errorf("step 1 of a window of 4 buckets after 1,200 records: %q, want 16 buckets", v)
	}
	if v := rdb.Get(ctx, "waq:lb:"+w+":2").Val(); !strings.HasPrefix(v, "64:") {
		t.Errorf("step 2 after 1,200 records (more than 72 × 16): %q, want 64 buckets", v)
	}
	keys, err := rdb.Keys(ctx, "waq:lj:"+w+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	most := int64(0)
	for _, k := range keys {
		if n := rdb.HLen(ctx, k).Val(); n > most {
			most = n
		}
	}
	if most > 128 {
		t.Errorf("a bucket holds %d records of 1,200 (%d buckets), want at most 128 (hash-max-listpack-entries)", most, len(keys))
	}
	for _, p := range []*ledger.Ledger{l, reader, ledger.New(rdb, opts)} {
		for _, id := range ids {
			if st, err := p.Load(ctx, id); err != nil || !st.SentAs("wamid."+id) {
				t.Fatalf("%s not found sent: %+v %v", id, st, err)
			}
			if got, err := p.JobByWAMID(ctx, "wamid."+id); err != nil || got != id {
				t.Fatalf("wamid.%s gives %q %v", id, got, err)
			}
		}
	}
}

// TestBadStep: a step of the bucket count that is not "<count>:<ms>" is an
// error of the lookup, not a record missed.
func TestBadStep(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	c := &clock{t: time.Now().Add(48 * time.Hour).Truncate(time.Hour)}
	opts := ledger.Options{Retention: 4 * time.Hour, Buckets: 4, Now: c.now}
	ctx := context.Background()
	if err := ledger.New(rdb, opts).RecordSent(ctx, "a", 0, "wamid.a", ledger.Attempt{At: c.now()}, nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "16", "x:1", "16:x", "0:1", "-4:1"} {
		rdb.Set(ctx, "waq:lb:"+windowOf(c.now())+":1", bad, time.Hour)
		if _, err := ledger.New(rdb, opts).Load(ctx, "a"); err == nil {
			t.Errorf("step %q: no error", bad)
		}
	}
}

// TestRecordWithContextDone: a sent record is written whatever its context
// (the worker writes it after a send that may have taken its deadline), so
// where it goes is read with the context's values but not its deadline,
// once what the ledger knew of the window is stale too.
func TestRecordWithContextDone(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	c := &clock{t: time.Now().Add(48 * time.Hour).Truncate(time.Hour)}
	l := ledger.New(conn.AutoPipelined(rdb), ledger.Options{Retention: 4 * time.Hour, Now: c.now})
	ctx := context.Background()
	if err := l.RecordSent(ctx, "first", 0, "wamid.first", ledger.Attempt{At: c.now()}, nil); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Second) // the window's buckets are read again
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.RecordSentMany(done, []ledger.SentRecord{{ID: "late", WAMID: "wamid.late", Attempt: ledger.Attempt{At: c.now()}, Fresh: true}}); err != nil {
		t.Fatalf("record with its context done: %v", err)
	}
	if st, err := l.Load(ctx, "late"); err != nil || !st.SentAs("wamid.late") {
		t.Fatalf("not found sent: %+v %v", st, err)
	}
}
