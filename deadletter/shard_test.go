package deadletter

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

// parkIn writes e into base as the store of that base's time did: the
// legacy base is where every entry went before the shards.
func parkIn(t *testing.T, s *Store, base string, e *Entry) {
	t.Helper()
	data, err := e.encode()
	if err != nil {
		t.Fatal(err)
	}
	err = parkScript.Run(context.Background(), s.rdb, entryKeys(base, e.ID), base, e.ID, data, e.ParkedAt.UnixMilli(),
		e.Reason, e.codeKey(), e.PhoneNumberID, e.Template, e.Addressee()).Err()
	if err != nil {
		t.Fatal(err)
	}
}

// listAll pages through every entry f selects, limit a page.
func listAll(t *testing.T, s *Store, f Filter, limit int) []*Entry {
	t.Helper()
	var out []*Entry
	cursor := ""
	for range 10_000 {
		page, err := s.List(context.Background(), f, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Entries...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
	t.Fatal("more than 10,000 pages")
	return nil
}

func entryIDs(es []*Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func statsLine(st *Stats) string {
	return fmt.Sprintf("total %d recipients %d reasons %v codes %v numbers %v templates %v oldest %v newest %v (%s)",
		st.Total, st.Recipients, st.ByReason, st.ByCode, st.ByPhoneNumber, st.ByTemplate, st.Oldest, st.Newest, st.Verdict)
}

// TestLegacyBase: entries parked under {dlq} before the shards are listed
// in order with those parked since, shown, resolved, counted (a recipient
// with entries on both sides once, also once those before have expired),
// moved to their shard when parked again, removed and swept.
func TestLegacyBase(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(now)
	s := New(testenv.StartRedis(t).Client(t), Options{Prefix: "t", Retention: 24 * time.Hour, Now: clock.Now})
	at := func(e *Entry, ago time.Duration) *Entry { e.ParkedAt = now.Add(-ago); return e }
	l1, l2, l3 := at(benchEntry(20, now, 0), 3*time.Hour), at(benchEntry(21, now, 0), 2*time.Hour), at(benchEntry(40, now, 0), 150*time.Minute)
	for _, e := range []*Entry{l1, l2, l3} {
		parkIn(t, s, s.legacy, e)
	}
	m, n := at(benchEntry(30, now, 0), 75*time.Minute), at(benchEntry(31, now, 0), time.Hour)
	m.To = l1.To // one recipient, parked before and after
	for _, e := range []*Entry{m, n} {
		if err := s.Park(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if s.baseOf(m) == s.legacy {
		t.Fatal("a new entry went to the legacy base")
	}
	list := func(want ...*Entry) {
		t.Helper()
		got := entryIDs(listAll(t, s, Filter{}, 2))
		if !slices.Equal(got, entryIDs(want)) {
			t.Fatalf("list %v, want %v", got, entryIDs(want))
		}
	}
	counted := func(total, recipients int64) {
		t.Helper()
		for _, f := range []Filter{{}, {Reason: "window"}, {Since: s.retention - time.Second}} { // counters, and a scan
			st, err := s.Stats(ctx, f)
			if err != nil || st.Total != total || st.Recipients != recipients {
				t.Fatalf("stats %+v: %s, %v; want %d entries of %d recipients", f, statsLine(st), err, total, recipients)
			}
		}
	}
	list(n, m, l2, l3, l1)
	counted(5, 4)
	if got, err := s.Show(ctx, l1.ID); err != nil || got.ID != l1.ID {
		t.Fatalf("show legacy: %+v, %v", got, err)
	}
	if id, err := s.ResolveID(ctx, l2.ID[:30]); err != nil || id != l2.ID {
		t.Fatalf("resolve legacy: %q, %v", id, err)
	}
	if ok, err := s.Parked(ctx, l1.ID, 0); err != nil || !ok {
		t.Fatalf("parked legacy: %v, %v", ok, err)
	}

	// Parked again (a replay failed the same way): it moves to its shard.
	again := at(benchEntry(40, now, 1), 10*time.Minute)
	if err := s.Park(ctx, again); err != nil {
		t.Fatal(err)
	}
	if k := s.rdb.Exists(ctx, entryKey(s.legacy, l3.ID)).Val(); k != 0 {
		t.Fatal("the legacy entry stayed beside its replacement")
	}
	if ok, err := s.Parked(ctx, l3.ID, 1); err != nil || !ok {
		t.Fatalf("parked again: %v, %v", ok, err)
	}
	list(again, n, m, l2, l1)
	counted(5, 4)
	if rm, err := s.Remove(ctx, l2.ID, 0); err != nil || rm != RemovedOK {
		t.Fatalf("remove legacy: %v, %v", rm, err)
	}
	list(again, n, m, l1)
	counted(4, 3)

	// l1 expires: its recipient is still m's.
	clock.Add(22*time.Hour + 40*time.Minute)
	list(again, n, m)
	counted(3, 3)
	if k, err := s.Sweep(ctx); err != nil || k != 1 {
		t.Fatalf("sweep: %d, %v", k, err)
	}
	counted(3, 3)
}
