package deadletter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
)

func TestPurge(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mixed(t, f)
	purge := func(p deadletter.Params) ([]deadletter.PurgeResult, deadletter.Totals) {
		t.Helper()
		req, err := p.PurgeRequest()
		if err != nil {
			t.Fatal(err)
		}
		var res collect[deadletter.PurgeResult]
		tot, err := f.store.Purge(ctx, req, res.emit)
		if err != nil {
			t.Fatal(err)
		}
		return res.all(), tot
	}
	// A dry run by reason and age: the window entries older than 90 min.
	res, tot := purge(deadletter.Params{Reason: "window", OlderThan: "90m", DryRun: true})
	if tot.Done != 2 || res[0].ID != "w2" || res[0].Purged || !res[0].DryRun {
		t.Fatalf("dry run %+v %+v", res, tot)
	}
	if st, _ := f.store.Stats(ctx, deadletter.Filter{}); st.Total != 7 {
		t.Fatalf("a dry run removed entries: %d left", st.Total)
	}
	res, tot = purge(deadletter.Params{Reason: "window", OlderThan: "90m"})
	got := []string{}
	for _, r := range res {
		if r.Purged {
			got = append(got, r.ID)
		}
	}
	if tot.Done != 2 || !slices.Equal(got, []string{"w2", "w3"}) {
		t.Fatalf("purge by age: %+v", res)
	}
	// Narrowed by template, all ages.
	res, tot = purge(deadletter.Params{Reason: "retries_exhausted", Template: "order_update", Code: "131000", OlderThan: "0s"})
	if tot.Done != 1 || res[0].ID != "r1" {
		t.Fatalf("purge by code: %+v", res)
	}
	// By ids, one of them unknown.
	res, tot = purge(deadletter.Params{IDs: []string{"t1", "nope"}})
	if tot.Done != 1 || tot.Failed != 1 || !res[0].Purged || res[1].Purged || res[1].Error == "" {
		t.Fatalf("purge by ids: %+v", res)
	}
	page, _ := f.store.List(ctx, deadletter.Filter{}, "", 100)
	if left := ids(page.Entries); !slices.Equal(left, []string{"w1", "t2", "r2"}) {
		t.Errorf("left %v", left)
	}
	st, _ := f.store.Stats(ctx, deadletter.Filter{})
	if st.Total != 3 || st.ByReason["window"] != 1 || st.ByTemplate["order_update"] != 1 || st.Recipients != 3 {
		t.Errorf("counters after purges: %+v", st)
	}
	if _, err := f.store.Show(ctx, "w2"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("show a purged entry: %v", err)
	}
}

func TestExport(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mixed(t, f)
	x, err := f.store.Export(ctx, deadletter.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if x.Total != 7 || len(x.Groups) != 5 || x.Verdict == "" {
		t.Fatalf("export %+v", x)
	}
	g := x.Groups[0]
	if g.Reason != "window" || g.Code == nil || *g.Code != 131047 || g.Count != 3 || g.Sends != 3 || g.RecipientCount != 3 ||
		!g.FirstSeen.Equal(t0.Add(-50*time.Hour-time.Minute)) || !g.LastSeen.Equal(t0.Add(-time.Hour-time.Minute)) ||
		len(g.PhoneNumbers) != 2 || len(g.Templates) != 0 || len(g.Examples) != 3 || g.FBTraceIDs[0] != "fb-w1" {
		t.Errorf("window group %+v", g)
	}
	// Each group carries its next step: the window's is a template replay.
	if g.Advice.Key != "131047" || g.Advice.AsTemplate != "yes" || g.Advice.AsIs != "no" {
		t.Errorf("window group advice %+v", g.Advice)
	}
	ex := g.Examples[0]
	if ex.ID != "w1" || ex.Error == nil || ex.Error.FBTraceID != "fb-w1" || ex.Error.Details == "" || ex.Request != "POST /{version}/106540352242922/messages" || !bytes.Contains(ex.Body, []byte(`"to":"15550000001"`)) {
		t.Errorf("example %+v", ex)
	}
	// JSON round trip keeps the shape.
	b, _ := json.Marshal(x)
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["groups"] == nil || back["total"].(float64) != 7 {
		t.Errorf("json %s", b)
	}
	groups := back["groups"].([]any)
	keys := []string{}
	for k := range groups[0].(map[string]any) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range []string{"code", "count", "examples", "fbtrace_ids", "first_seen", "last_seen", "phone_numbers", "recipients", "templates", "reason", "advice"} {
		if !slices.Contains(keys, k) {
			t.Errorf("group JSON lacks %q: %v", k, keys)
		}
	}
	var text bytes.Buffer
	if err := x.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Failed messages: 7 in 5 groups", "error 131047: Re-engagement message (parked as window)", "fbtrace_ids:     fb-w1, fb-w2, fb-w3",
		"Request: POST /{version}/106540352242922/messages", `"fbtrace_id": "fb-w1"`, "no answer (timeout)", "Templates:       order_update (1)",
		"Next step:       Only a template message reaches the customer outside the window"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	// Filtered.
	x, _ = f.store.Export(ctx, deadletter.Filter{Template: "order_update"})
	if x.Total != 3 || len(x.Groups) != 3 || x.Filter["template"] != "order_update" {
		t.Errorf("filtered export %+v", x)
	}
}
