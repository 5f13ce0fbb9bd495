package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

// TestParkEndToEndBytes: what a job parked by the worker keeps in Redis (its
// dead-letter entry with its indexes and counters, its ledger record,
// whatever else parking writes), measured from used_memory over 5,000 jobs
// that the simulator answers 131026, stays within 1,500 bytes a job at the
// default settings. The jobs are like a producer's: UUIDv7 ids, a
// recipient each, a text body and metadata.
func TestParkEndToEndBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("parks 5,000 jobs: about 10 seconds")
	}
	const jobs = 5000
	e := setup(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Respond: fakegraph.Response{Error: fakegraph.Code(131026)}}); err != nil {
		t.Fatal(err)
	}
	// A high rate for the number: pacing is not what is measured.
	cfg := e.config()
	cfg.PhoneNumbersFile = filepath.Join(t.TempDir(), "numbers.yaml")
	if err := os.WriteFile(cfg.PhoneNumbersFile, []byte("phone_numbers:\n  - phone_number_id: \""+pn+"\"\n    waba_id: \"102290129340398\"\n    mps: 10000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Concurrency, cfg.LogLevel = 128, "info"
	w := e.start(t, cfg)
	rdb := e.redis.Client(t)
	ctx := context.Background()
	before := testenv.UsedMemory(t, rdb) // resets commandstats: the calls below are since now

	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
	}
	publishAsync(t, e.js, ids, func(i int) *queue.Job { return parkJob(ids[i], i) })
	testenv.Eventually(t, 60*time.Second, func() error {
		st, err := e.dlq.Stats(ctx, deadletter.Filter{})
		if err != nil {
			return err
		}
		if st.Total < jobs {
			return fmt.Errorf("%d of %d parked", st.Total, jobs)
		}
		return nil
	})
	e.streamEmpty(t, 30*time.Second)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	calls := commandCalls(t, rdb)
	// The stats call of the wait above is not parking: at most a few
	// hundred commands for the whole run.
	after := testenv.UsedMemory(t, rdb)
	per := float64(after-before) / jobs
	t.Logf("%.1f bytes of Redis per parked job, %.1f Redis commands per parked job (%d jobs); by key: %s",
		per, float64(calls)/jobs, jobs, keyBreakdown(t, rdb, jobs))
	if st, err := e.dlq.Stats(ctx, deadletter.Filter{}); err != nil || st.Total != jobs || st.ByReason["undeliverable"] != jobs {
		t.Fatalf("stats after parking: %+v %v", st, err)
	}
	if per > 1500 {
		t.Errorf("%.1f bytes per parked job, want at most 1,500", per)
	}
}

// publishAsync publishes len(ids) jobs, job(i) each, in windows of async
// publishes, and waits until JetStream has them all.
func publishAsync(t *testing.T, js jetstream.JetStream, ids []string, job func(i int) *queue.Job) {
	t.Helper()
	const window = 1000 // below the client's limit of async publishes in flight (4000)
	for i := 0; i < len(ids); i += window {
		for j := i; j < min(i+window, len(ids)); j++ {
			jb := job(j)
			data, err := json.Marshal(jb)
			if err != nil {
				t.Fatal(err)
			}
			msg := nats.NewMsg("waq.send." + jb.PhoneNumberID)
			msg.Data = data
			msg.Header.Set(queue.HeaderMsgID, jb.ID)
			if _, err := js.PublishMsgAsync(msg); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			t.Fatal("async publishes not acknowledged within a minute")
		}
	}
}

// commandCalls is how many commands Redis has run (every cmdstat's
// calls, scripts' own commands included).
func commandCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		_, rest, _ := strings.Cut(line, "calls=")
		v, _, _ := strings.Cut(rest, ",")
		c, _ := strconv.ParseInt(v, 10, 64)
		n += c
	}
	return n
}

// keyBreakdown is MEMORY USAGE summed by the shape of the keys (ids and
// shard numbers taken out), per job, largest first: where the bytes go.
func keyBreakdown(t *testing.T, rdb *redis.Client, jobs int) string {
	t.Helper()
	ctx := context.Background()
	sums, counts := map[string]int64{}, map[string]int{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	cmds := make([]*redis.IntCmd, len(keys))
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.MemoryUsage(ctx, k, 0)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		shape := keyShape(k)
		sums[shape] += cmds[i].Val()
		counts[shape]++
	}
	shapes := make([]string, 0, len(sums))
	for s := range sums {
		shapes = append(shapes, s)
	}
	sort.Slice(shapes, func(i, j int) bool { return sums[shapes[i]] > sums[shapes[j]] })
	var b strings.Builder
	for i, s := range shapes {
		if i == 12 {
			break
		}
		fmt.Fprintf(&b, "%s ×%d %.1f; ", s, counts[s], float64(sums[s])/float64(jobs))
	}
	return b.String()
}

// keyShape is a key with what varies per job or shard replaced.
func keyShape(k string) string {
	k = shardTag.ReplaceAllString(k, "{dlq:K}")
	parts := strings.Split(k, ":")
	for i, p := range parts {
		if len(p) >= 16 && !strings.Contains(p, "=") && !strings.HasPrefix(p, "{dlq") {
			parts[i] = "ID"
		}
	}
	return strings.Join(parts, ":")
}

var shardTag = regexp.MustCompile(`\{dlq:[0-9]+\}`)

// parkJob is job i of TestParkEndToEndBytes: half of them template messages
// (as most production traffic is, and the bench's), half text, each to a
// recipient of its own, with metadata.
func parkJob(id string, i int) *queue.Job {
	to := fmt.Sprintf("1555%07d", 1000000+i)
	if i%2 == 0 {
		return textJob(id, to)
	}
	return &queue.Job{ID: id, PhoneNumberID: pn, Message: queue.TemplateMessage(to, "order_update", "en_US", strconv.Itoa(i)), Metadata: map[string]string{"tenant": "acme"}}
}
