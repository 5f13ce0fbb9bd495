package deadletter_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/queue"
)

// baseOf is the shard key prefix entry id is stored under.
func baseOf(t *testing.T, rdb *redis.Client, id string) string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "test:{dlq:*}:v:"+id).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("entry %s: keys %v %v", id, keys, err)
	}
	return strings.TrimSuffix(keys[0], ":v:"+id)
}

// TestIndexesParkedBefore: an entry is indexed by its reason, phone
// number and template only (no "all" index, no code index: the bytes of a
// parked job); entries parked before, which are in an ":i:all" and an
// ":i:code=" index too, are listed, filtered, counted, replayed, purged and
// swept as the others, and their removal leaves nothing of them.
func TestIndexesParkedBefore(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.park(t, spec{id: "o1", reason: "window", code: 131047, to: "15550000001"},
		spec{id: "o2", reason: "template", code: 132001, tpl: "order_update", to: "15550000002"},
		spec{id: "o3", reason: "window", code: 131047, to: "15550000003"},
		spec{id: "n1", reason: "window", code: 131047, to: "15550000004"},
		spec{id: "n2", reason: "retries_exhausted", code: 131047, to: "15550000005"})
	if keys, _ := f.rdb.Keys(ctx, "test:*:i:all").Result(); len(keys) != 0 {
		t.Errorf("an all index was written: %v", keys)
	}
	if keys, _ := f.rdb.Keys(ctx, "test:*:i:code=*").Result(); len(keys) != 0 {
		t.Errorf("a code index was written: %v", keys)
	}
	// What the store wrote before for o1, o2 and o3, besides what it writes now.
	for _, old := range []struct{ id, code string }{{"o1", "131047"}, {"o2", "132001"}, {"o3", "131047"}} {
		b := baseOf(t, f.rdb, old.id)
		score := float64(f.clock.Now().UnixMilli())
		f.rdb.ZAdd(ctx, b+":i:all", redis.Z{Score: score, Member: old.id})
		f.rdb.ZAdd(ctx, b+":i:code="+old.code, redis.Z{Score: score, Member: old.id})
	}

	listed := func(fl deadletter.Filter) []string {
		t.Helper()
		p, err := f.store.List(ctx, fl, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		got := ids(p.Entries)
		sort.Strings(got)
		return got
	}
	code := 131047
	if got := listed(deadletter.Filter{}); !slices.Equal(got, []string{"n1", "n2", "o1", "o2", "o3"}) {
		t.Errorf("list: %v", got)
	}
	if got := listed(deadletter.Filter{Code: &code}); !slices.Equal(got, []string{"n1", "n2", "o1", "o3"}) {
		t.Errorf("list --code 131047: %v", got)
	}
	if got := listed(deadletter.Filter{Code: &code, Reason: "window"}); !slices.Equal(got, []string{"n1", "o1", "o3"}) {
		t.Errorf("list --code 131047 --reason window: %v", got)
	}
	st, err := f.store.Stats(ctx, deadletter.Filter{})
	if err != nil || st.Total != 5 || st.ByCode["131047"] != 4 || st.ByReason["window"] != 3 || st.Recipients != 5 || st.Oldest == nil {
		t.Errorf("stats: %+v %v", st, err)
	}
	st, err = f.store.Stats(ctx, deadletter.Filter{Code: &code})
	if err != nil || st.Total != 4 || st.ByReason["window"] != 3 || st.ByReason["retries_exhausted"] != 1 || st.Recipients != 4 {
		t.Errorf("stats --code: %+v %v", st, err)
	}
	if got, err := f.store.ResolveID(ctx, "o"); err == nil || got != "" {
		t.Errorf("prefix o: %q %v, want ambiguous", got, err)
	}
	if got, err := f.store.ResolveID(ctx, "n2"); err != nil || got != "n2" {
		t.Errorf("id n2: %q %v", got, err)
	}

	// Replayed and purged, an entry parked before leaves nothing in the
	// indexes it had.
	n := testenvNATS(t)
	var res collect[deadletter.ReplayResult]
	if tot, err := f.store.Replay(ctx, queue.NewProducer(n.js, queue.ProducerOptions{}), deadletter.ReplayRequest{IDs: []string{"o1"}}, res.emit); err != nil || tot.Done != 1 {
		t.Fatalf("replay: %+v %v %+v", tot, err, res.all())
	}
	req, err := deadletter.Params{IDs: []string{"o2"}}.PurgeRequest()
	if err != nil {
		t.Fatal(err)
	}
	var pres collect[deadletter.PurgeResult]
	if tot, err := f.store.Purge(ctx, req, pres.emit); err != nil || tot.Done != 1 {
		t.Fatalf("purge: %+v %v", tot, err)
	}
	for _, id := range []string{"o1", "o2"} {
		keys, _ := f.rdb.Keys(ctx, "test:*:i:*").Result()
		for _, k := range keys {
			if s, err := f.rdb.ZScore(ctx, k, id).Result(); err == nil {
				t.Errorf("%s still in %s (score %v)", id, k, s)
			}
		}
	}
	// Expired, every entry is swept, and the store is empty: no index nor
	// counter left of entries parked before or after.
	f.clock.Add(73 * time.Hour)
	if n, err := f.store.Sweep(ctx); err != nil || n != 3 {
		t.Errorf("sweep: %d %v, want 3", n, err)
	}
	ledgerKeys, _ := f.rdb.Keys(ctx, "test:j:*").Result()
	if n := f.rdb.DBSize(ctx).Val(); n != int64(len(ledgerKeys)) {
		keys, _ := f.rdb.Keys(ctx, "test:{dlq*").Result()
		t.Errorf("after the sweep: %v", keys)
	}
}

// TestStatsCodeEnds: a code has no index of its own; its stats are still
// counted (not scanned), with the oldest and newest of its own entries
// among its reason's, and without its expired entries not swept yet.
func TestStatsCodeEnds(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	now := f.clock.Now()
	f.park(t, spec{id: "a-expired", reason: "retries_exhausted", code: 131000, to: "15550000010", at: now.Add(-80 * time.Hour)},
		spec{id: "a1", reason: "retries_exhausted", code: 131000, to: "15550000011", at: now.Add(-3 * time.Hour)},
		spec{id: "b1", reason: "retries_exhausted", code: 131016, to: "15550000012", at: now.Add(-2 * time.Hour)},
		spec{id: "a2", reason: "retries_exhausted", code: 131000, to: "15550000013", at: now.Add(-1 * time.Hour)},
		spec{id: "b2", reason: "retries_exhausted", code: 131016, to: "15550000014", at: now.Add(-30 * time.Minute)})
	for _, c := range []struct {
		code           int
		oldest, newest time.Duration
	}{{131000, 3 * time.Hour, time.Hour}, {131016, 2 * time.Hour, 30 * time.Minute}} {
		st, err := f.store.Stats(ctx, deadletter.Filter{Code: &c.code})
		if err != nil || st.Total != 2 || st.Recipients != 2 || st.Oldest == nil || st.Newest == nil ||
			!st.Oldest.Equal(now.Add(-c.oldest)) || !st.Newest.Equal(now.Add(-c.newest)) {
			t.Errorf("stats --code %d: %+v %v; want 2 entries from %s to %s", c.code, st, err, now.Add(-c.oldest), now.Add(-c.newest))
		}
	}
	none := 131026
	if st, err := f.store.Stats(ctx, deadletter.Filter{Code: &none}); err != nil || st.Total != 0 || st.Oldest != nil {
		t.Errorf("stats of a code without entries: %+v %v", st, err)
	}
}
