package ledger_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// usedMemory is Redis's used_memory.
func usedMemory(t *testing.T, r *testenv.Redis) int64 {
	t.Helper()
	info, err := r.Client(t).Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

// TestSentJobBytes: what a job sent first time keeps in Redis for the whole
// retention (its record and its wamid's entry, with UUIDv7 ids, real trace
// ids and wamids of Meta's length), measured from used_memory, stays within
// 100 bytes at the default settings.
func TestSentJobBytes(t *testing.T) {
	const jobs = 20000
	r := testenv.StartRedis(t)
	writer := r.Client(t)
	l := ledger.New(conn.AutoPipelined(writer), ledger.Options{})
	ctx := context.Background()
	if err := l.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	before := usedMemory(t, r)
	batch := make([]ledger.SentRecord, 0, 100)
	for i := 0; i < jobs; i++ {
		id := uuid.Must(uuid.NewV7()).String()
		tid := strings.ReplaceAll(uuid.NewString(), "-", "")
		batch = append(batch, ledger.SentRecord{ID: id, WAMID: "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI" + strconv.Itoa(100000000+i) + "QTNDQTVCM0Q0Q0Y2RTg3N0UA",
			Attempt: ledger.Attempt{At: time.Now(), TraceID: tid, SpanID: tid[:16]}, Fresh: true})
		if len(batch) == cap(batch) {
			if err := l.RecordSentMany(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// The writer's connections go first: their buffers are not state.
	writer.Close()
	per := float64(usedMemory(t, r)-before) / jobs
	t.Logf("%.1f bytes of Redis per sent job (%d jobs)", per, jobs)
	if per > 100 {
		t.Errorf("%.1f bytes per sent job, want at most 100", per)
	}
}
