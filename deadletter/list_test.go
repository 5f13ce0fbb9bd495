package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
)

// mixed parks a small store with every dimension varied.
func mixed(t *testing.T, f *fixture) {
	t.Helper()
	at := f.clock.Now()
	f.park(t,
		spec{id: "w1", reason: "window", code: 131047, to: "15550000001", at: at.Add(-1 * time.Hour)},
		spec{id: "w2", reason: "window", code: 131047, to: "15550000002", at: at.Add(-2 * time.Hour)},
		spec{id: "w3", reason: "window", code: 131047, to: "15550000003", pn: "200000000000001", at: at.Add(-50 * time.Hour)},
		spec{id: "t1", reason: "template", code: 132001, tpl: "order_update", to: "15550000001", at: at.Add(-3 * time.Hour)},
		spec{id: "t2", reason: "template", code: 132015, tpl: "promo", to: "15550000004", at: at.Add(-4 * time.Hour)},
		spec{id: "r1", reason: "retries_exhausted", code: 131000, tpl: "order_update", to: "15550000005", at: at.Add(-5 * time.Hour)},
		spec{id: "r2", reason: "retries_exhausted", code: 0, tpl: "order_update", to: "15550000006", at: at.Add(-6 * time.Hour)},
	)
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	mixed(t, f)
	ctx := context.Background()
	tests := []struct {
		name string
		p    deadletter.Params
		want []string
	}{
		{"all, newest first", deadletter.Params{}, []string{"w1", "w2", "t1", "t2", "r1", "r2", "w3"}},
		{"to", deadletter.Params{To: "15550000001"}, []string{"w1", "t1"}},
		{"to and reason", deadletter.Params{To: "15550000001", Reason: "template"}, []string{"t1"}},
		{"recipient nobody has", deadletter.Params{Recipient: "US.1"}, nil},
		{"reason", deadletter.Params{Reason: "window"}, []string{"w1", "w2", "w3"}},
		{"code", deadletter.Params{Code: "131000"}, []string{"r1"}},
		{"phone number", deadletter.Params{PhoneNumberID: "200000000000001"}, []string{"w3"}},
		{"template", deadletter.Params{Template: "order_update"}, []string{"t1", "r1", "r2"}},
		{"since", deadletter.Params{Since: "150m"}, []string{"w1", "w2"}},
		{"since in days", deadletter.Params{Since: "1d", Reason: "window"}, []string{"w1", "w2"}},
		{"reason and template", deadletter.Params{Reason: "retries_exhausted", Template: "order_update"}, []string{"r1", "r2"}},
		{"reason and code that never meet", deadletter.Params{Reason: "window", Code: "131000"}, nil},
		{"every filter", deadletter.Params{Reason: "template", Code: "132001", PhoneNumberID: "106540352242922", Template: "order_update", Since: "10h"}, []string{"t1"}},
		{"unknown template", deadletter.Params{Template: "nope"}, nil},
		{"limit", deadletter.Params{Limit: "2"}, []string{"w1", "w2"}},
	}
	for _, tt := range tests {
		flt, cursor, limit, err := tt.p.ListArgs()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		page, err := f.store.List(ctx, flt, cursor, limit)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := ids(page.Entries); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	// The list line has every field the SPEC names.
	page, _ := f.store.List(ctx, deadletter.Filter{Reason: "template"}, "", 1)
	s := page.Entries[0].Summary()
	if s.ID != "t1" || s.Reason != "template" || s.Code == nil || *s.Code != 132001 || s.FBTraceID != "fb-t1" || s.TraceID == "" ||
		s.PhoneNumberID != "106540352242922" || s.To != "15550000001" || s.Template != "order_update" || s.Attempts != 1 || !s.ParkedAt.Equal(t0.Add(-3*time.Hour)) {
		t.Errorf("summary = %+v", s)
	}
}

// TestListRecipient: an entry of a job addressed by BSUID lists it as
// recipient (no to), is found by the recipient filter, and stats count it
// as a recipient.
func TestListRecipient(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	at := f.clock.Now()
	f.park(t,
		spec{id: "b1", reason: "invalid", code: 131062, tpl: "otp", bsuid: "US.13491208655302741918", at: at.Add(-1 * time.Hour)},
		spec{id: "b2", reason: "window", code: 131047, bsuid: "US.ENT.11815799212886844830", at: at.Add(-2 * time.Hour)},
		spec{id: "n1", reason: "window", code: 131047, to: "15550000001", at: at.Add(-3 * time.Hour)},
	)
	for _, tc := range []struct {
		p    deadletter.Params
		want []string
	}{
		{deadletter.Params{Recipient: "US.13491208655302741918"}, []string{"b1"}},
		{deadletter.Params{Recipient: "US.ENT.11815799212886844830", Reason: "window"}, []string{"b2"}},
		{deadletter.Params{To: "15550000001"}, []string{"n1"}},
	} {
		p, want := tc.p, tc.want
		flt, cursor, limit, err := p.ListArgs()
		if err != nil {
			t.Fatal(err)
		}
		page, err := f.store.List(ctx, flt, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(page.Entries); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", p, got, want)
		}
		if p.Recipient == "US.13491208655302741918" {
			if s := page.Entries[0].Summary(); s.To != "" || s.Recipient != "US.13491208655302741918" {
				t.Errorf("bsuid summary = %+v", s)
			}
		}
	}
	st, err := f.store.Stats(ctx, deadletter.Filter{})
	if err != nil || st.Recipients != 3 {
		t.Errorf("stats = %+v, %v; want 3 recipients", st, err)
	}
}

// TestListCursor pages through entries that share one millisecond, more of
// them than one batch of the store reads, and through a removal between
// pages: every entry comes exactly once.
func TestListCursor(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const n = 1300
	at := f.clock.Now().Add(-time.Minute)
	var want []string
	for i := 0; i < n; i++ {
		sp := spec{id: fmt.Sprintf("job-%04d", i), reason: "window", code: 131047, at: at}
		if i%3 == 0 {
			sp.at = at.Add(-time.Duration(i) * time.Millisecond)
		}
		f.park(t, sp)
		want = append(want, sp.id)
	}
	seen := map[string]int{}
	cursor := ""
	for round := 0; round < 100; round++ {
		page, err := f.store.List(ctx, deadletter.Filter{Reason: "window"}, cursor, 97)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			seen[e.ID]++
		}
		if round == 3 {
			// Remove the entry the cursor points at: paging goes on after
			// its position.
			last := page.Entries[len(page.Entries)-1].ID
			if _, err := f.store.Remove(ctx, last, -1); err != nil {
				t.Fatal(err)
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != n {
		t.Fatalf("saw %d distinct entries, want %d", len(seen), n)
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Fatalf("%s seen %d times", id, seen[id])
		}
	}
	if _, err := f.store.List(ctx, deadletter.Filter{}, "garbage", 10); err == nil {
		t.Error("a bad cursor was accepted")
	}
}

// TestExpiry: entries past the retention are never listed, counted,
// shown, exported or replayed, whether or not the sweep has run.
func TestExpiry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mixed(t, f)
	before, err := f.store.Stats(ctx, deadletter.Filter{})
	if err != nil || before.Total != 7 || before.Recipients != 6 {
		t.Fatalf("stats before = %+v, %v", before, err)
	}
	// 23 hours later, w3 (parked 50h before t0) is 73h old: past the 72h.
	f.clock.Add(23 * time.Hour)
	check := func(stage string) {
		t.Helper()
		page, err := f.store.List(ctx, deadletter.Filter{}, "", 100)
		if err != nil || slices.Contains(ids(page.Entries), "w3") || len(page.Entries) != 6 {
			t.Errorf("%s: list = %v, %v", stage, ids(page.Entries), err)
		}
		for _, flt := range []deadletter.Filter{{}, {Reason: "window"}, {PhoneNumberID: "200000000000001"}, {Reason: "window", Code: ptr(131047)}} {
			st, err := f.store.Stats(ctx, flt)
			if err != nil {
				t.Fatal(err)
			}
			wantTotal := map[string]int64{"": 6, "window": 2, "200000000000001": 0}[flt.Reason+flt.PhoneNumberID]
			if st.Total != wantTotal || st.ByPhoneNumber["200000000000001"] != 0 {
				t.Errorf("%s: stats %+v = %+v", stage, flt, st)
			}
			if flt.Reason == "" && flt.PhoneNumberID == "" && st.Recipients != 5 {
				t.Errorf("%s: %d recipients, want 5 (15550000003 only had w3)", stage, st.Recipients)
			}
		}
		if _, err := f.store.Show(ctx, "w3"); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("%s: show w3: %v", stage, err)
		}
		x, err := f.store.Export(ctx, deadletter.Filter{Reason: "window"})
		if err != nil || x.Total != 2 {
			t.Errorf("%s: export total %d, %v", stage, x.Total, err)
		}
		var res collect[deadletter.ReplayResult]
		if _, err := f.store.Replay(ctx, failingPublisher{}, deadletter.ReplayRequest{IDs: []string{"w3"}, DryRun: true}, res.emit); err != nil {
			t.Fatal(err)
		}
		if r := res.all(); len(r) != 1 || r[0].Replayed || !strings.Contains(r[0].Error, "no dead-letter entry") {
			t.Errorf("%s: replay w3 = %+v", stage, r)
		}
	}
	check("before the sweep")
	n, err := f.store.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v", n, err)
	}
	check("after the sweep")
}

func TestParams(t *testing.T) {
	t.Parallel()
	bad := []struct {
		p    deadletter.Params
		op   string
		want string
	}{
		{deadletter.Params{Reason: "windwo"}, "list", "reason"},
		{deadletter.Params{Code: "abc"}, "list", "code"},
		{deadletter.Params{PhoneNumberID: "+1555"}, "list", "phone_number_id"},
		{deadletter.Params{Since: "yesterday"}, "list", "since"},
		{deadletter.Params{Since: "-5m"}, "list", "since"},
		{deadletter.Params{Limit: "-1"}, "list", "limit"},
		{deadletter.Params{Limit: "ten"}, "list", "limit"},
		{deadletter.Params{Limit: "100000"}, "list", "limit"},
		{deadletter.Params{Cursor: "nope"}, "list", "cursor"},
		{deadletter.Params{To: "+1 555 0000001"}, "list", "to"},
		{deadletter.Params{To: "US.13491208655302741918"}, "list", "to"},
		{deadletter.Params{Recipient: "15550000001"}, "list", "recipient"},
		{deadletter.Params{Recipient: "us.1"}, "list", "recipient"},
		{deadletter.Params{To: "15550000001", Recipient: "US.1"}, "list", "recipient"},
		{deadletter.Params{}, "replay", "reason"},
		{deadletter.Params{Code: "131047"}, "replay", "reason"},
		{deadletter.Params{Reason: "window", AsTemplate: "x"}, "replay", "language"},
		{deadletter.Params{Reason: "window", Language: "en_US"}, "replay", "as_template"},
		{deadletter.Params{IDs: []string{"a"}, Reason: "window"}, "replay", "ids"},
		{deadletter.Params{IDs: []string{"has space"}}, "replay", "ids"},
		{deadletter.Params{}, "purge", "reason"},
		{deadletter.Params{Reason: "window"}, "purge", "older_than"},
		{deadletter.Params{Reason: "window", OlderThan: "soon"}, "purge", "older_than"},
		{deadletter.Params{IDs: []string{"a"}, OlderThan: "1h"}, "purge", "ids"},
	}
	for _, tt := range bad {
		var err error
		switch tt.op {
		case "list":
			_, _, _, err = tt.p.ListArgs()
		case "replay":
			_, err = tt.p.ReplayRequest()
		case "purge":
			_, err = tt.p.PurgeRequest()
		}
		var pe *deadletter.ParamError
		if !errors.As(err, &pe) || pe.Name != tt.want {
			t.Errorf("%s %+v: %v, want a ParamError on %s", tt.op, tt.p, err, tt.want)
		}
	}
	r, err := deadletter.Params{Reason: "window", Code: "131047", AsTemplate: "hello", Language: "en_US", DryRun: true}.ReplayRequest()
	if err != nil || r.Filter.Reason != "window" || *r.Filter.Code != 131047 || r.AsTemplate != "hello" || !r.DryRun {
		t.Errorf("replay request = %+v, %v", r, err)
	}
	p, err := deadletter.Params{Reason: "window", OlderThan: "7d"}.PurgeRequest()
	if err != nil || p.OlderThan != 7*24*time.Hour {
		t.Errorf("purge request = %+v, %v", p, err)
	}
}
