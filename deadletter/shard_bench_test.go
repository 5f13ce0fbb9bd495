package deadletter

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkShards measures the operations a person waits for, on one
// redis-server, in the layout of 16 shards and in the layout before (every
// key under {dlq}, which is what a store reads as its legacy base), with
// 100,000 entries in each (WAQ_BENCH_DLQ_ENTRIES to change it):
//
//	go test -run '^$' -bench BenchmarkShards -benchtime 200x ./deadletter/
//
// Each operation is a pair of sub-benchmarks, .../one-tag and .../shards.
func BenchmarkShards(b *testing.B) {
	rdb, n, now := benchRedis(b, 100_000)
	ctx := context.Background()
	clock := func() time.Time { return now }
	old := New(rdb, Options{Prefix: "old", Now: clock})
	old.shards, old.all = nil, []string{old.legacy}
	layouts := []struct {
		name string
		s    *Store
	}{{"one-tag", old}, {"shards", New(rdb, Options{Prefix: "new", Now: clock})}}
	for _, l := range layouts {
		parkMany(b, l.s, n, now, func(int) bool { return true }, 0)
	}
	mid, err := layouts[0].s.List(ctx, Filter{}, "", n/2)
	if err != nil {
		b.Fatal(err)
	}
	deep := mid.Next
	code := 131026
	ops := []struct {
		name string
		run  func(b *testing.B, s *Store, i int)
	}{
		{"park", func(b *testing.B, s *Store, i int) {
			if err := s.Park(ctx, benchEntry(n+i, now, 0)); err != nil {
				b.Fatal(err)
			}
		}},
		{"show", func(b *testing.B, s *Store, i int) {
			if _, err := s.Show(ctx, benchEntry(i*7919%n, now, 0).ID); err != nil {
				b.Fatal(err)
			}
		}},
		{"show-missing", func(b *testing.B, s *Store, i int) {
			if _, err := s.Show(ctx, "missing-"+strconv.Itoa(i)); err != ErrNotFound {
				b.Fatal(err)
			}
		}},
		{"parked", func(b *testing.B, s *Store, i int) {
			if ok, err := s.Parked(ctx, benchEntry(i*7919%n, now, 0).ID, 0); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}},
		{"resolve-prefix", func(b *testing.B, s *Store, i int) {
			id := benchEntry(i*7919%n, now, 0).ID
			if got, err := s.ResolveID(ctx, id[:24]); err != nil || got != id {
				b.Fatal(got, err)
			}
		}},
		{"list-100", func(b *testing.B, s *Store, i int) { listN(b, s, Filter{}, "", 100) }},
		{"list-100-deep", func(b *testing.B, s *Store, i int) { listN(b, s, Filter{}, deep, 100) }},
		{"list-100-code", func(b *testing.B, s *Store, i int) { listN(b, s, Filter{Code: &code}, "", 100) }},
		{"list-100-reason+number", func(b *testing.B, s *Store, i int) {
			listN(b, s, Filter{Reason: "window", PhoneNumberID: pn(1)}, "", 100)
		}},
		{"stats", func(b *testing.B, s *Store, i int) {
			if _, err := s.Stats(ctx, Filter{}); err != nil {
				b.Fatal(err)
			}
		}},
		{"stats-reason", func(b *testing.B, s *Store, i int) {
			if _, err := s.Stats(ctx, Filter{Reason: "window"}); err != nil {
				b.Fatal(err)
			}
		}},
		{"stats-reason+number-scan", func(b *testing.B, s *Store, i int) {
			if _, err := s.Stats(ctx, Filter{Reason: "template", PhoneNumberID: pn(6)}); err != nil {
				b.Fatal(err)
			}
		}},
	}
	for _, op := range ops {
		for _, l := range layouts {
			b.Run(op.name+"/"+l.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					op.run(b, l.s, i)
				}
			})
		}
	}
}

func listN(b *testing.B, s *Store, f Filter, cursor string, want int) {
	page, err := s.List(context.Background(), f, cursor, want)
	if err != nil || len(page.Entries) != want {
		b.Fatalf("%d entries, %v", len(page.Entries), err)
	}
}
