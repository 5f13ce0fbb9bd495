package deadletter

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

// spreadEntry is entry i of the cluster test: benchEntry's reasons, codes,
// numbers and templates, one of 53 recipients (so that recipients have
// several entries, in one shard), parked in groups of seven that share a
// millisecond (so that a page boundary falls between entries of one score
// in different shards).
func spreadEntry(i int, now time.Time) *Entry {
	e := benchEntry(i, now, 0)
	to := strconv.Itoa(15550000000 + i%53)
	e.Job = []byte(strings.Replace(string(e.Job), `"to":"`+e.To+`"`, `"to":"`+to+`"`, 1))
	e.To = to
	e.ParkedAt = now.Add(-time.Duration(i/7) * time.Second)
	return e
}

// TestClusterSpread: on a Redis Cluster of three masters the store's
// entries spread over every master, and the store answers as one: every
// page in order without a duplicate or a gap, the same filters, stats,
// exports, lookups, replay, purge and sweep as a store on one redis-server
// that was given the same entries.
func TestClusterSpread(t *testing.T) {
	const n = 400
	ctx := context.Background()
	rc := testenv.StartRedisCluster(t, 3)
	cc := rc.Client(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(now)
	opts := Options{Prefix: "waq", Retention: 24 * time.Hour, Now: clock.Now}
	cs := New(cc, opts)
	one := New(testenv.StartRedis(t).Client(t), opts)

	// Each shard's tag is in its own sixteenth of the slots.
	for i, b := range cs.shards {
		slot, err := cc.ClusterKeySlot(ctx, b).Result()
		if err != nil {
			t.Fatal(err)
		}
		if lo := int64(i) * 1024; slot < lo+256 || slot >= lo+768 {
			t.Errorf("shard %d (%s) is in slot %d, want in [%d, %d)", i, b, slot, lo+256, lo+768)
		}
	}

	for i := range n {
		for _, s := range []*Store{cs, one} {
			if err := s.Park(ctx, spreadEntry(i, now)); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Every master holds a share of the entries.
	shares := make([]int, len(rc.Nodes))
	for i, node := range rc.Nodes {
		c := node.Client(t)
		var cursor uint64
		for round := 0; round < 10_000; round++ {
			keys, next, err := c.Scan(ctx, cursor, "waq:{dlq:*}:v:*", 1000).Result()
			if err != nil {
				t.Fatal(err)
			}
			shares[i] += len(keys)
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	t.Logf("entries per master: %v of %d", shares, n)
	total := 0
	for i, k := range shares {
		total += k
		if k < n/5 {
			t.Errorf("master %s holds %d of %d entries, want at least a fifth", rc.Nodes[i].Addr, k, n)
		}
	}
	if total != n {
		t.Errorf("%d entries on the masters, want %d", total, n)
	}

	// Every page in order, the same as on one server.
	all := listAll(t, cs, Filter{}, 37)
	if len(all) != n {
		t.Fatalf("listed %d entries, want %d", len(all), n)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if seen[e.ID] {
			t.Fatalf("%s listed twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 {
			p := all[i-1]
			if p.ParkedAt.Before(e.ParkedAt) || p.ParkedAt.Equal(e.ParkedAt) && p.ID < e.ID {
				t.Fatalf("%s (%s) listed before %s (%s)", p.ID, p.ParkedAt, e.ID, e.ParkedAt)
			}
		}
	}
	code := 131000
	filters := []Filter{
		{}, {Reason: "window"}, {Code: &code}, {PhoneNumberID: pn(3)}, {Template: "template_7"},
		{Reason: "retries_exhausted", PhoneNumberID: pn(4)}, {Reason: "window", Code: &code},
		{Recipient: "15550000007"}, {Since: 30 * time.Second}, {Reason: "template", Since: 40 * time.Second},
	}
	for _, f := range filters {
		got, want := listAll(t, cs, f, 11), listAll(t, one, f, 11)
		if !slices.Equal(entryIDs(got), entryIDs(want)) {
			t.Errorf("list %+v: cluster %v, one server %v", f, entryIDs(got), entryIDs(want))
		}
		sameStats(t, "", cs, one, f)
		gx, err := cs.Export(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		wx, err := one.Export(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		// Groups of one size come in no set order.
		for _, x := range []*Export{gx, wx} {
			x.GeneratedAt = time.Time{}
			slices.SortFunc(x.Groups, func(a, b *ExportGroup) int { return strings.Compare(a.title(), b.title()) })
		}
		if !reflect.DeepEqual(gx, wx) {
			t.Errorf("export %+v: cluster %d in %d groups, one server %d in %d", f, gx.Total, len(gx.Groups), wx.Total, len(wx.Groups))
		}
	}
	st, err := cs.Stats(ctx, Filter{})
	if err != nil || st.Total != n || st.Recipients != 53 {
		t.Fatalf("stats: %+v, %v", st, err)
	}
	counts, err := cs.CountByReason(ctx)
	if err != nil || !reflect.DeepEqual(counts, st.ByReason) {
		t.Errorf("count by reason %v, stats %v (%v)", counts, st.ByReason, err)
	}

	// Lookups by id and by prefix.
	e := spreadEntry(123, now)
	got, err := cs.Show(ctx, e.ID)
	if err != nil || got.ID != e.ID || got.To != e.To {
		t.Fatalf("show: %+v, %v", got, err)
	}
	if id, err := cs.ResolveID(ctx, e.ID[:20]); err != nil || id != e.ID {
		t.Errorf("resolve %s: %q, %v", e.ID[:20], id, err)
	}
	if ok, err := cs.Parked(ctx, e.ID, 0); err != nil || !ok {
		t.Errorf("parked: %v, %v", ok, err)
	}

	// Replay: the four replay_me entries, wherever they are.
	nt := testenv.StartNATS(t)
	_, js := nt.Connect(t)
	stream, err := queue.EnsureStream(ctx, js, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pub := queue.NewProducer(js, queue.ProducerOptions{})
	for _, s := range []*Store{cs, one} {
		tot, err := s.Replay(ctx, pub, ReplayRequest{Filter: Filter{Template: "replay_me"}}, func(ReplayResult) error { return nil })
		if err != nil || tot.Done != 4 || tot.Failed != 0 {
			t.Fatalf("replay: %+v, %v", tot, err)
		}
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 4 {
		t.Fatalf("stream after two replays of the same entries: %+v, %v", info, err)
	}
	// Removal by id, and by a filter.
	ids := []string{spreadEntry(0, now).ID, spreadEntry(201, now).ID, spreadEntry(399, now).ID, "nobody"}
	for _, s := range []*Store{cs, one} {
		tot, err := s.Purge(ctx, PurgeRequest{IDs: ids}, func(PurgeResult) error { return nil })
		if err != nil || tot.Done != 3 || tot.Failed != 1 {
			t.Fatalf("purge ids: %+v, %v", tot, err)
		}
		tot, err = s.Purge(ctx, PurgeRequest{Filter: Filter{Reason: "invalid"}, OlderThan: 20 * time.Second}, func(PurgeResult) error { return nil })
		if err != nil || tot.Done == 0 {
			t.Fatalf("purge filter: %+v, %v", tot, err)
		}
	}
	if rm, err := cs.Remove(ctx, e.ID, 1); err != nil || rm != RemovedNewer {
		t.Errorf("remove another generation: %v, %v", rm, err)
	}
	for _, s := range []*Store{cs, one} {
		if rm, err := s.Remove(ctx, e.ID, 0); err != nil || rm != RemovedOK {
			t.Errorf("remove: %v, %v", rm, err)
		}
	}
	sameStats(t, "after replay and purge: ", cs, one, Filter{})
	if got := listAll(t, cs, Filter{}, 50); !slices.Equal(entryIDs(got), entryIDs(listAll(t, one, Filter{}, 50))) {
		t.Error("after replay and purge the lists differ")
	}

	// The oldest entries expire: hidden, then swept, in every shard.
	clock.Add(24*time.Hour - 30*time.Second)
	sameStats(t, "expired, not swept: ", cs, one, Filter{})
	sameStats(t, "expired, not swept: ", cs, one, Filter{Reason: "window"})
	gotSwept, err := cs.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantSwept, err := one.Sweep(ctx)
	if err != nil || gotSwept != wantSwept || gotSwept == 0 {
		t.Errorf("swept %d on the cluster, %d on one server (%v)", gotSwept, wantSwept, err)
	}
	sameStats(t, "swept: ", cs, one, Filter{})
}

// sameStats fails the test when the stats of f differ between two stores.
func sameStats(t *testing.T, when string, got, want *Store, f Filter) {
	t.Helper()
	g, err := got.Stats(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Stats(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%sstats %+v:\n got %s\nwant %s", when, f, statsLine(g), statsLine(w))
	}
}
