package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

func TestJobShow(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	code := 131000
	if _, err := l.RecordAttempt(ctx, "j1", 0, ledger.Attempt{At: time.Now(), Outcome: "failed", Action: "retry", Code: &code, FBTraceID: "FB1"}, ledger.CountAttempt); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordSent(ctx, "j1", 0, "wamid.X", ledger.Attempt{At: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordStatus(ctx, "j1", "delivered", time.Now()); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"WAQ_REDIS_URL": r.URL}
	c, out, errOut := runCmd(t, vars, "", "job", "show", "j1", "--json")
	if c != 0 {
		t.Fatalf("%d %s", c, errOut)
	}
	var v jobView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Outcome != "sent" || v.WAMID != "wamid.X" || v.Status != "delivered" || len(v.Attempts) != 2 {
		t.Errorf("%s %+v %v", out, v, err)
	}
	c, out, _ = runCmd(t, vars, "", "job", "show", "j1")
	if c != 0 || !strings.Contains(out, "outcome    sent") || !strings.Contains(out, "FB1") {
		t.Errorf("text: %q", out)
	}
	if v.MessageStatus != "" || v.Pricing != nil || strings.Contains(out, "message_status") || strings.Contains(out, "pricing") {
		t.Errorf("no message_status nor pricing recorded, yet shown: %s", out)
	}

	// A send Meta held for quality assessment, then priced by a status
	// webhook: both in --json and in text.
	if err := l.RecordSentMany(ctx, []ledger.SentRecord{{ID: "j2", WAMID: "wamid.H", Attempt: ledger.Attempt{At: time.Now()}, MessageStatus: "held_for_quality_assessment"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordStatusWith(ctx, "j2", "sent", time.Now(), &ledger.Pricing{Billable: true, PricingModel: "PMP", Category: "marketing", Type: "regular"}); err != nil {
		t.Fatal(err)
	}
	c, out, errOut = runCmd(t, vars, "", "job", "show", "j2", "--json")
	v = jobView{}
	if c != 0 || json.Unmarshal([]byte(out), &v) != nil || v.MessageStatus != "held_for_quality_assessment" || v.Pricing == nil ||
		*v.Pricing != (ledger.Pricing{Billable: true, PricingModel: "PMP", Category: "marketing", Type: "regular"}) ||
		!strings.Contains(out, `"message_status":"held_for_quality_assessment"`) || !strings.Contains(out, `"pricing_model":"PMP"`) {
		t.Errorf("held and priced, --json: %d %s %s", c, out, errOut)
	}
	c, out, _ = runCmd(t, vars, "", "job", "show", "j2")
	if c != 0 || !strings.Contains(out, "message    held_for_quality_assessment\n") || !strings.Contains(out, "pricing    PMP marketing regular, billable\n") {
		t.Errorf("held and priced, text: %q", out)
	}
	// The BSUIDs a status webhook gave for the recipient: masked, text and
	// JSON; absent before.
	if strings.Contains(out, "user id") || strings.Contains(out, "parent id") {
		t.Errorf("no recipient IDs recorded, yet shown: %q", out)
	}
	if _, err := l.RecordRecipientIDs(ctx, "j2", ledger.RecipientIDs{UserID: "US.13491208655302741918", ParentUserID: "US.ENT.11815799212886844830"}); err != nil {
		t.Fatal(err)
	}
	c, out, _ = runCmd(t, vars, "", "job", "show", "j2")
	if c != 0 || !strings.Contains(out, "user id    US.••••••••••••••••1918\n") || !strings.Contains(out, "parent id  US.ENT.••••••••••••••••4830\n") {
		t.Errorf("recipient IDs, text: %q", out)
	}
	c, jout, _ := runCmd(t, vars, "", "job", "show", "j2", "--json")
	v = jobView{}
	if c != 0 || json.Unmarshal([]byte(jout), &v) != nil || v.RecipientUserID != "US.••••••••••••••••1918" || v.RecipientParentUserID != "US.ENT.••••••••••••••••4830" {
		t.Errorf("recipient IDs, --json: %d %s", c, jout)
	}
	for _, clear := range []string{"13491208655302741918", "11815799212886844830"} {
		if strings.Contains(out+jout, clear) {
			t.Errorf("%s in clear: %s %s", clear, out, jout)
		}
	}
	// Not found: exit status 1 and the error on stderr, text and JSON alike.
	for _, args := range [][]string{{"job", "show", "nope"}, {"job", "show", "nope", "--json"}} {
		if c, out, errOut := runCmd(t, vars, "", args...); c != 1 || out != "" || !strings.Contains(errOut, "no record") {
			t.Errorf("%v: %d stdout %q stderr %q", args, c, out, errOut)
		}
	}

	// A job sent on its first try (the fresh path keeps no history) lists
	// that send as its one attempt.
	// (The index keeps whole seconds, and trace ids as the 16 bytes they are.)
	at := time.Now().UTC().Truncate(time.Second)
	const t1 = "4bf92f3577b34da6a3ce929d0e0e4736"
	if err := l.RecordSentMany(ctx, []ledger.SentRecord{{ID: "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90", WAMID: "wamid.F", Attempt: ledger.Attempt{At: at, TraceID: t1, SpanID: "00f067aa0ba902b7"}, Fresh: true}}); err != nil {
		t.Fatal(err)
	}
	// ... found by its whole id (the compact index keeps a digest of it, so
	// a start of it finds only jobs that failed before).
	c, out, errOut = runCmd(t, vars, "", "job", "show", "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90", "--json")
	v = jobView{}
	if c != 0 || json.Unmarshal([]byte(out), &v) != nil || v.ID != "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90" || len(v.Attempts) != 1 ||
		v.Attempts[0].Outcome != "sent" || !v.Attempts[0].At.Equal(at) || v.Attempts[0].TraceID != t1 {
		t.Errorf("first-try send: %d %s %s", c, out, errOut)
	}
	if c, out, _ = runCmd(t, vars, "", "job", "show", "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90"); c != 0 || !strings.Contains(out, "attempts:") || !strings.Contains(out, "sent") {
		t.Errorf("first-try send, text: %q", out)
	}
	// An ambiguous start among jobs with attempts: exit status 1, naming
	// the candidates.
	for _, id := range []string{"018f6b1e-0000", "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90"} {
		if _, err := l.RecordAttempt(ctx, id, 0, ledger.Attempt{At: at, Outcome: "failed"}, ledger.CountAttempt); err != nil {
			t.Fatal(err)
		}
	}
	if c, out, errOut := runCmd(t, vars, "", "job", "show", "018f6b1e"); c != 1 || out != "" ||
		!strings.Contains(errOut, "018f6b1e-0000") || !strings.Contains(errOut, "018f6b1e-8f3a-7c4e-9d2a-3b5c6d7e8f90") {
		t.Errorf("ambiguous: %d %q %q", c, out, errOut)
	}
	if c, _, _ := runCmd(t, vars, "", "job", "show"); c != 2 {
		t.Errorf("no id: %d", c)
	}
	if c, _, _ := runCmd(t, vars, "", "job", "list"); c != 2 {
		t.Errorf("bad subcommand: %d", c)
	}
}

// TestJobShowParked: a parked job's attempts are shown from its
// dead-letter entry (MarkParked drops the ledger's history), and from the
// history of a job parked before that.
func TestJobShowParked(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	l := ledger.New(rdb, ledger.Options{})
	store := deadletter.New(rdb, deadletter.Options{})
	ctx := context.Background()
	code := 131026
	a := ledger.Attempt{At: time.Now().UTC(), Outcome: "failed", Action: "park", Code: &code, FBTraceID: "FBPARK"}
	if _, err := l.RecordAttempt(ctx, "p1", 0, a, ledger.CountNone); err != nil {
		t.Fatal(err)
	}
	h, _ := l.History(ctx, "p1")
	if err := store.Park(ctx, &deadletter.Entry{ID: "p1", Reason: "undeliverable", To: "15550001111", Attempts: h}); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkParked(ctx, "p1", 0, "undeliverable"); err != nil {
		t.Fatal(err)
	}
	if h, _ := l.History(ctx, "p1"); len(h) != 0 {
		t.Errorf("history kept after parking: %+v", h)
	}
	vars := map[string]string{"WAQ_REDIS_URL": r.URL}
	c, out, errOut := runCmd(t, vars, "", "job", "show", "p1", "--json")
	var v jobView
	if c != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Outcome != "parked" || len(v.Attempts) != 1 || v.Attempts[0].FBTraceID != "FBPARK" {
		t.Errorf("parked: %d %s %s", c, out, errOut)
	}
	if c, out, _ := runCmd(t, vars, "", "job", "show", "p1"); c != 0 || !strings.Contains(out, "FBPARK") {
		t.Errorf("parked, text: %q", out)
	}
}
