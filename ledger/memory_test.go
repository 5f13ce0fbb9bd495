package ledger_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// usedMemory is testenv.UsedMemory of r.
func usedMemory(t testing.TB, r *testenv.Redis) int64 {
	t.Helper()
	return testenv.UsedMemory(t, r.Client(t))
}

// memLedger is a ledger at the default settings on a redis-server of the
// test's own, with its scripts loaded, and the client it writes with.
func memLedger(t testing.TB) (*testenv.Redis, *redis.Client, *ledger.Ledger) {
	return memLedgerWith(t, ledger.Options{})
}

// memLedgerWith is memLedger with opts.
func memLedgerWith(t testing.TB, opts ledger.Options) (*testenv.Redis, *redis.Client, *ledger.Ledger) {
	t.Helper()
	r := testenv.StartRedis(t)
	writer := r.Client(t)
	l := ledger.New(conn.AutoPipelined(writer), opts)
	if err := l.LoadScripts(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, writer, l
}

// sendFresh records n jobs sent first time, as the worker does (UUIDv7 ids,
// real trace ids, wamids of Meta's length, 100 a batch), and returns their ids.
func sendFresh(t testing.TB, l *ledger.Ledger, n int) []string {
	return sendFreshEvery(t, l, n, func() {})
}

// sendFreshEvery is sendFresh calling tick after every batch.
func sendFreshEvery(t testing.TB, l *ledger.Ledger, n int, tick func()) []string {
	t.Helper()
	ids := make([]string, 0, n)
	batch := make([]ledger.SentRecord, 0, 100)
	for i := 0; i < n; i++ {
		id := uuid.Must(uuid.NewV7()).String()
		ids = append(ids, id)
		tid := strings.ReplaceAll(uuid.NewString(), "-", "")
		batch = append(batch, ledger.SentRecord{ID: id, WAMID: "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI" + strconv.Itoa(100000000+i) + "QTNDQTVCM0Q0Q0Y2RTg3N0UA",
			Attempt: ledger.Attempt{At: time.Now(), TraceID: tid, SpanID: tid[:16]}, Fresh: true})
		if len(batch) == cap(batch) || i == n-1 {
			if err := l.RecordSentMany(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
			tick()
		}
	}
	return ids
}

// TestSentJobBytes: what a job sent first time keeps in Redis for the whole
// retention (its record and its wamid's entry, with UUIDv7 ids, real trace
// ids and wamids of Meta's length), measured from used_memory, stays within
// 100 bytes at the default settings.
func TestSentJobBytes(t *testing.T) {
	const jobs = 20000
	r, writer, l := memLedger(t)
	before := usedMemory(t, r)
	sendFresh(t, l, jobs)
	// The writer's connections go first: their buffers are not state.
	writer.Close()
	per := float64(usedMemory(t, r)-before) / jobs
	t.Logf("%.1f bytes of Redis per sent job (%d jobs)", per, jobs)
	if per > 100 {
		t.Errorf("%.1f bytes per sent job, want at most 100", per)
	}
}

// TestStatusBytes: the status webhooks of a job sent first time, with their
// pricing and without business-scoped user IDs (the common case), add
// nothing to its record; a job whose status gave its recipient's BSUIDs
// keeps them in a hash of its own, measured here.
func TestStatusBytes(t *testing.T) {
	const jobs = 2000
	r, writer, l := memLedger(t)
	ctx := context.Background()
	before := usedMemory(t, r)
	ids := sendFresh(t, l, jobs)
	sent := usedMemory(t, r)
	keys := writer.DBSize(ctx).Val()
	price := &ledger.Pricing{Billable: true, PricingModel: "PMP", Category: "utility", Type: "regular"}
	for _, id := range ids {
		if _, err := l.RecordStatusWith(ctx, id, "delivered", time.Now(), price); err != nil {
			t.Fatal(err)
		}
		// What the worker does for a status without BSUIDs.
		if _, err := l.RecordRecipientIDs(ctx, id, ledger.RecipientIDs{}); err != nil {
			t.Fatal(err)
		}
	}
	statuses := usedMemory(t, r)
	if n := writer.DBSize(ctx).Val(); n != keys {
		t.Errorf("statuses without BSUIDs made keys: %d before, %d after", keys, n)
	}
	for i, id := range ids {
		ids := ledger.RecipientIDs{UserID: "US.1349120865530" + strconv.Itoa(1000000+i), ParentUserID: "US.ENT.1181579921288" + strconv.Itoa(1000000+i)}
		if _, err := l.RecordRecipientIDs(ctx, id, ids); err != nil {
			t.Fatal(err)
		}
	}
	withIDs := usedMemory(t, r)
	if st, err := l.Load(ctx, ids[7]); err != nil || st.Recipient.UserID != "US.13491208655301000007" || st.Pricing == nil || !st.Sent() {
		t.Errorf("state after the IDs: %+v %v", st, err)
	}
	writer.Close()
	perSent, perStatus, perIDs := float64(sent-before)/jobs, float64(statuses-sent)/jobs, float64(withIDs-statuses)/jobs
	// used_memory moves by a few tens of bytes a job either way at this
	// count (allocator pages): the key count above is the exact check.
	t.Logf("%.1f bytes per sent job (%d jobs: fixed costs of the index included); its statuses without BSUIDs %+.1f; a user ID and a parent ID kept %+.1f",
		perSent, jobs, perStatus, perIDs)
}

// BenchmarkSentJobBytes sends a million jobs first time into one window of
// the compact index and reports Redis's bytes per sent job: with the
// default first-window bucket count (256, sized for about 20,000 sends,
// which grows in steps as the window fills: past 128 records a bucket
// Redis would store it as a hashtable) and with
// WAQ_LEDGER_BUCKETS sized for the volume (a million ÷ 64). Run it with
// -benchtime 1x: each run sends a million, whatever b.N.
func BenchmarkSentJobBytes(b *testing.B) {
	const jobs = 1_000_000
	for _, buckets := range []int{256, jobs / 64} {
		b.Run("buckets="+strconv.Itoa(buckets), func(b *testing.B) {
			for b.Loop() {
				// The ledger's clock runs at 2,000 sends a second (a sender
				// of 100 million a day at twice its average), as the
				// buckets' steps are timed (index.go).
				c := &clock{t: time.Now()}
				r, writer, l := memLedgerWith(b, ledger.Options{Buckets: buckets, Now: c.now})
				before := usedMemory(b, r)
				sendFreshEvery(b, l, jobs, func() { c.add(50 * time.Millisecond) })
				writer.Close()
				b.ReportMetric(float64(usedMemory(b, r)-before)/jobs, "bytes/sent-job")
			}
		})
	}
}
