package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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
	if c, out, _ := runCmd(t, vars, "", "job", "show", "nope"); c != 1 || !strings.Contains(out, "no record") {
		t.Errorf("unknown: %d %q", c, out)
	}
	if c, _, _ := runCmd(t, vars, "", "job", "show"); c != 2 {
		t.Errorf("no id: %d", c)
	}
	if c, _, _ := runCmd(t, vars, "", "job", "list"); c != 2 {
		t.Errorf("bad subcommand: %d", c)
	}
}
