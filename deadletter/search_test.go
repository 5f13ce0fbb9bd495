package deadletter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/telemetry"
)

func TestSearch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mixed(t, f)
	// An attempt's fbtrace_id that is not the last error's.
	e := entry(spec{id: "a1", reason: "retries_exhausted", code: 131000, to: "15550000009", at: f.clock.Now().Add(-7 * time.Hour)})
	e.Attempts = append([]ledger.Attempt{{At: e.ParkedAt.Add(-time.Hour), Outcome: "failed", FBTraceID: "fb-first-try"}}, e.Attempts...)
	if err := f.store.Park(ctx, e); err != nil {
		t.Fatal(err)
	}
	// A job sent, then failed by webhook and parked: its wamid is in the
	// sent records (the real ledger over the same Redis).
	l := ledger.New(f.rdb, ledger.Options{Prefix: "test"})
	if err := l.RecordSent(ctx, "w2", 0, "wamid.HBgLMTU1NTAwMDAwMDI", ledger.Attempt{At: t0, Outcome: "sent"}, nil); err != nil {
		t.Fatal(err)
	}
	h := telemetry.NewRecipientHasher([]byte("key"))
	opts := deadletter.SearchOptions{JobByWAMID: l.JobByWAMID, HashRecipient: h.Hash}

	tests := []struct {
		name  string
		q     deadletter.Query
		by    string
		want  []string
		jobID string
	}{
		{"id", deadletter.Query{ID: "t1"}, "id", []string{"t1"}, "t1"},
		{"id not parked", deadletter.Query{ID: "gone"}, "id", nil, "gone"},
		{"fbtrace of the last error", deadletter.Query{FBTraceID: "fb-t2"}, "fbtrace_id", []string{"t2"}, ""},
		{"fbtrace of an earlier attempt", deadletter.Query{FBTraceID: "fb-first-try"}, "fbtrace_id", []string{"a1"}, ""},
		{"wamid", deadletter.Query{WAMID: "wamid.HBgLMTU1NTAwMDAwMDI"}, "wamid", []string{"w2"}, "w2"},
		{"unknown wamid", deadletter.Query{WAMID: "wamid.nope"}, "wamid", nil, ""},
		{"recipient by hash", deadletter.Query{RecipientHash: h.Hash("15550000001")}, "recipient_hash", []string{"w1", "t1"}, ""},
		{"box: id", deadletter.Query{Text: "r1"}, "id", []string{"r1"}, "r1"},
		{"box: fbtrace", deadletter.Query{Text: " fb-w3 "}, "fbtrace_id", []string{"w3"}, ""},
		{"box: wamid", deadletter.Query{Text: "wamid.HBgLMTU1NTAwMDAwMDI"}, "wamid", []string{"w2"}, "w2"},
		{"box: hash", deadletter.Query{Text: h.Hash("15550000004")}, "recipient_hash", []string{"t2"}, ""},
		{"box: nothing", deadletter.Query{Text: "nothing-here"}, "id", nil, "nothing-here"},
	}
	for _, tt := range tests {
		res, err := f.store.Search(ctx, tt.q, opts, 0)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []string
		for _, e := range res.Entries {
			got = append(got, e.ID)
		}
		if res.By != tt.by || res.JobID != tt.jobID || !res.Complete || len(got) != len(tt.want) {
			t.Errorf("%s: by %s job %q entries %v complete %v; want by %s job %q entries %v", tt.name, res.By, res.JobID, got, res.Complete, tt.by, tt.jobID, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: entries %v, want %v", tt.name, got, tt.want)
			}
		}
	}

	// The number in clear is never a query: it is not a hash.
	for name, q := range map[string]deadletter.Query{
		"number as hash": {RecipientHash: "15550000001"},
		"two fields":     {ID: "t1", FBTraceID: "fb-t1"},
		"none":           {},
		"space in id":    {ID: "a b"},
		"upper hex":      {RecipientHash: "r_ABCDEF0123456789"},
		"long fbtrace":   {FBTraceID: string(make([]byte, 200))},
	} {
		_, err := f.store.Search(ctx, q, opts, 0)
		var pe *deadletter.ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%s: got %v, want a parameter error", name, err)
		}
	}
	// Without the hash key or the sent records, those searches are refused.
	for _, q := range []deadletter.Query{{RecipientHash: h.Hash("1")}, {WAMID: "wamid.x"}} {
		var pe *deadletter.ParamError
		if _, err := f.store.Search(ctx, q, deadletter.SearchOptions{}, 0); !errors.As(err, &pe) {
			t.Errorf("%+v without options: %v", q, err)
		}
	}
	// A bounded scan says it stopped before the oldest.
	res, err := f.store.Search(ctx, deadletter.Query{FBTraceID: "fb-w3"}, deadletter.SearchOptions{MaxScan: 3}, 0)
	if err != nil || res.Complete || res.Scanned != 3 || len(res.Entries) != 0 {
		t.Errorf("bounded scan: %+v, %v", res, err)
	}
}
