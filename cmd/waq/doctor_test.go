package main

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
)

func TestDoctor(t *testing.T) {
	f := fakegraph.New(fakegraph.Config{Tokens: []string{"tok"}, Scenario: &fakegraph.Scenario{
		PhoneNumbers: []fakegraph.PhoneNumber{{PhoneNumberID: "106540352242922", WABAID: "102290129340398"}},
		Templates:    []fakegraph.Template{{Name: "order_update", Language: "en_US"}},
	}})
	srv := httptest.NewServer(f)
	defer func() { srv.Close(); f.Close() }()
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	vars := map[string]string{"WAQ_GRAPH_URL": srv.URL, "WAQ_ACCESS_TOKEN": "tok", "WAQ_NATS_URL": n.URL, "WAQ_REDIS_URL": r.URL}

	// No stream yet (no worker ran): the jetstream check fails, exit 1.
	code, out, errOut := runCmd(t, vars, "", "doctor", "--json", "--phone-number-id", "106540352242922", "--waba-id", "102290129340398",
		"--template", "order_update", "--language", "en_US", "--to", "15551234567")
	if code != 1 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct{ Check, Status, Detail, Fix string }
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Check == "" || r.Detail == "" {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[r.Check] = r.Status
	}
	want := map[string]string{"graph": "ok", "token": "ok", "phone_number": "ok", "template": "ok", "recipient": "ok", "dead_letters": "ok", "jetstream": "fail", "redis": "ok", "holds": "ok"}
	for c, s := range want {
		if seen[c] != s {
			t.Errorf("%s: %q, want %q (all: %v)", c, seen[c], s, seen)
		}
	}
	if strings.Contains(out, "tok\"") {
		t.Error("the token is printed")
	}
	// Text: one line per check.
	code, out, _ = runCmd(t, vars, "", "doctor", "--to", "+1 555 1234")
	if code != 1 || !strings.Contains(out, "fail  recipient") {
		t.Errorf("text: %d %q", code, out)
	}
	// A business-scoped user ID: checked with --recipient, shown masked.
	code, out, _ = runCmd(t, vars, "", "doctor", "--recipient", "US.13491208655302741918")
	if !strings.Contains(out, "ok    recipient      US.••••••••••••••••1918 is a business-scoped user ID") || strings.Contains(out, "13491208655302741918") {
		t.Errorf("--recipient: %d %q", code, out)
	}
	code, out, _ = runCmd(t, vars, "", "doctor", "--recipient", "15551234567")
	if code != 1 || !strings.Contains(out, "fail  recipient") || !strings.Contains(out, "looks like a phone number") {
		t.Errorf("--recipient with a number: %d %q", code, out)
	}
	for _, args := range [][]string{{"doctor", "--template", "x"}, {"doctor", "--since", "-1h"}, {"doctor", "extra"},
		{"doctor", "--to", "15551234567", "--recipient", "US.13491208655302741918"}} {
		if code, _, _ := runCmd(t, vars, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// The hold's end is said with the workers' WAQ_TEMPLATE_HOLD_MAX: a bad
	// one is refused as the worker refuses it.
	for _, v := range []string{"soon", "-1h", "0s"} {
		bad := map[string]string{"WAQ_TEMPLATE_HOLD_MAX": v}
		for k, x := range vars {
			bad[k] = x
		}
		if code, _, errOut := runCmd(t, bad, "", "doctor"); code != 2 || !strings.Contains(errOut, "WAQ_TEMPLATE_HOLD_MAX") {
			t.Errorf("WAQ_TEMPLATE_HOLD_MAX=%s: exit %d %q, want 2", v, code, errOut)
		}
	}
}
