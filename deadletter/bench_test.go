package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// BenchmarkDLQ measures the operations against a store of 1,000,000
// entries (WAQ_BENCH_DLQ_ENTRIES to change it) in a real redis-server:
//
//	go test -run '^$' -bench BenchmarkDLQ -benchtime 3x ./deadletter/
//
// It loads the entries through the store's own park script, pipelined, and
// reports Redis memory per entry (used_memory delta / entries).
func BenchmarkDLQ(b *testing.B) {
	rdb, n, now := benchRedis(b, 1_000_000)
	ctx := context.Background()
	s := New(rdb, Options{Prefix: "bench", Now: func() time.Time { return now }})
	before := testenv.UsedMemory(b, rdb)
	start := time.Now()
	load(b, s, n, now)
	loaded := time.Since(start)
	perEntry := float64(testenv.UsedMemory(b, rdb)-before) / float64(n)
	b.Logf("loaded %d entries in %s; redis used_memory %.0f bytes per entry", n, loaded.Round(time.Millisecond), perEntry)

	b.Run("memory", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
		}
		b.ReportMetric(perEntry, "B/entry")
	})
	b.Run("list-limit100-reason+number", func(b *testing.B) {
		f := Filter{Reason: "window", PhoneNumberID: pn(1)}
		for i := 0; i < b.N; i++ {
			page, err := s.List(ctx, f, "", 100)
			if err != nil || len(page.Entries) != 100 {
				b.Fatalf("%d entries, %v", len(page.Entries), err)
			}
		}
	})
	b.Run("list-limit100-code", func(b *testing.B) {
		code := 131026
		for i := 0; i < b.N; i++ {
			page, err := s.List(ctx, Filter{Code: &code}, "", 100)
			if err != nil || len(page.Entries) != 100 {
				b.Fatalf("%d entries, %v", len(page.Entries), err)
			}
		}
	})
	b.Run("list-limit100-code-sharing-its-reason", func(b *testing.B) {
		// 132015 parks as "template" beside 132001: a code without an index
		// of its own walks its reason's.
		code := 132015
		for i := 0; i < b.N; i++ {
			page, err := s.List(ctx, Filter{Code: &code}, "", 100)
			if err != nil || len(page.Entries) != 100 {
				b.Fatalf("%d entries, %v", len(page.Entries), err)
			}
		}
	})
	b.Run("stats-code", func(b *testing.B) {
		code := 131000
		for i := 0; i < b.N; i++ {
			if _, err := s.Stats(ctx, Filter{Code: &code}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stats", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			st, err := s.Stats(ctx, Filter{})
			if err != nil || st.Total != int64(n) {
				b.Fatalf("%+v, %v", st, err)
			}
		}
	})
	b.Run("stats-reason", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Stats(ctx, Filter{Reason: "window"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stats-reason+number-scan", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Stats(ctx, Filter{Reason: "template", PhoneNumberID: pn(6)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	gen := 0
	b.Run(fmt.Sprintf("replay-%d", n/100), func(b *testing.B) {
		nt := testenv.StartNATS(b)
		_, js := nt.Connect(b)
		if _, err := queue.EnsureStream(ctx, js, queue.StreamConfig{}); err != nil {
			b.Fatal(err)
		}
		pub := queue.NewProducer(js, queue.ProducerOptions{})
		f := Filter{Reason: "template", Template: "replay_me"}
		for i := 0; i < b.N; i++ {
			// Park the 10,000 entries (again), one generation on: the
			// framework runs this function more than once.
			b.StopTimer()
			gen++
			reparkReplayMe(b, s, n, now, gen)
			b.StartTimer()
			tot, err := s.Replay(ctx, pub, ReplayRequest{Filter: f, Concurrency: 32}, func(ReplayResult) error { return nil })
			if err != nil || tot.Done != n/100 {
				b.Fatalf("%+v, %v", tot, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/replay")
	})
}

// benchRedis starts the redis-server of a benchmark, and says how many
// entries to load (def, or WAQ_BENCH_DLQ_ENTRIES) and the time to park
// them at. No AOF: loading a million entries with fsync on every write
// would measure the disk, not the store.
func benchRedis(b *testing.B, def int) (rdb *redis.Client, n int, now time.Time) {
	n = def
	if v := os.Getenv("WAQ_BENCH_DLQ_ENTRIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	return testenv.StartRedis(b, "--appendonly", "no").Client(b), n, time.Now().UTC()
}

func pn(i int) string { return fmt.Sprintf("1065403522429%02d", i) }

// benchEntry is entry i of the synthetic store: reasons, codes, numbers,
// templates and recipients spread as an incident leaves them, parked over
// 20 days with many in the same millisecond. Every 100th entry (10,000 of
// a million) has template "replay_me", which the replay benchmark selects.
func benchEntry(i int, now time.Time, gen int) *Entry {
	type kind struct {
		reason string
		code   int
		tpl    bool
	}
	kinds := []kind{
		{"window", 131047, false}, {"window", 131047, false},
		{"retries_exhausted", 131000, true}, {"retries_exhausted", 131000, true}, {"retries_exhausted", 131000, true}, {"retries_exhausted", 131000, true},
		{"template", 132001, true}, {"template", 132015, true},
		{"undeliverable", 131026, true}, {"invalid", 131008, false},
	}
	k := kinds[i%len(kinds)]
	tpl := ""
	if k.tpl {
		tpl = "template_" + strconv.Itoa(i%50)
	}
	if i%100 == 6 {
		k, tpl = kind{"template", 132001, true}, "replay_me"
	}
	id := fmt.Sprintf("018f6b1e-%08x-7c4e-9d2a-%012x", i, i*7919)
	to := strconv.Itoa(15550000000 + i%200000)
	num := pn(i % 20)
	var msg string
	if tpl != "" {
		msg = fmt.Sprintf(`{"messaging_product":"whatsapp","to":%q,"type":"template","template":{"name":%q,"language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"%d"}]}]}}`, to, tpl, i)
	} else {
		msg = fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual","to":%q,"type":"text","text":{"body":"Your order %d has shipped and will arrive tomorrow."}}`, to, i)
	}
	job := fmt.Sprintf(`{"id":%q,"phone_number_id":%q,"message":%s,"metadata":{"tenant":"acme","campaign":"c-42"}}`, id, num, msg)
	at := now.Add(-time.Duration(i%(20*24*3600)) * time.Second).Truncate(time.Second)
	code := k.code
	fb := fmt.Sprintf("A%022x", i)
	attempt := ledger.Attempt{At: at.Add(-time.Minute), Outcome: "failed", Action: "park", HTTPStatus: 400, Code: &code, FBTraceID: fb,
		TraceID: fmt.Sprintf("%032x", i+1), SpanID: fmt.Sprintf("%016x", i+1), Worker: "worker-1"}
	e := &Entry{
		ID: id, Reason: k.reason, Problem: "the policy parks " + strconv.Itoa(code), Job: json.RawMessage(job), Subject: "waq.send." + num,
		PhoneNumberID: num, To: to, Template: tpl, Metadata: map[string]string{"tenant": "acme", "campaign": "c-42"},
		LastError: &LastError{HTTPStatus: 400, Code: &code, Type: "OAuthException", Title: "Message failed to send", Message: "Message failed to send because of an error", Details: "see the error code", FBTraceID: fb},
		Attempts:  []ledger.Attempt{attempt}, TraceID: attempt.TraceID, SpanID: attempt.SpanID, ParkedAt: at, Replayed: gen,
	}
	if tpl != "" {
		e.MessageType, e.Language = "template", "en_US"
	} else {
		e.MessageType = "text"
	}
	return e
}

// load parks n entries through the park script, 1,000 to a pipeline.
func load(b *testing.B, s *Store, n int, now time.Time) {
	parkMany(b, s, n, now, func(int) bool { return true }, 0)
}

func reparkReplayMe(b *testing.B, s *Store, n int, now time.Time, gen int) {
	parkMany(b, s, n, now, func(i int) bool { return i%100 == 6 }, gen)
}

func parkMany(b testing.TB, s *Store, n int, now time.Time, which func(int) bool, gen int) {
	ctx := context.Background()
	if err := parkScript.Load(ctx, s.rdb).Err(); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < min(lo+batch, n); i++ {
				if !which(i) {
					continue
				}
				e := benchEntry(i, now, gen)
				data, err := e.encode()
				if err != nil {
					return err
				}
				b := s.baseOf(e)
				parkScript.EvalSha(ctx, p, entryKeys(b, e.ID), b, e.ID, data, e.ParkedAt.UnixMilli(), e.Reason, e.codeKey(),
					e.PhoneNumberID, e.Template, e.To)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
