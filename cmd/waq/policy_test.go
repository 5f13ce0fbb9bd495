package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyRun runs one waq command line in process and returns its exit
// status and output.
func policyRun(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), Getenv: func(k string) string { return env[k] }}
	code = run(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

// policyFile writes a policy file into a fresh directory and returns its
// path.
func policyFile(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The example of SPEC §3.
const policySpecExample = `defaults:
  max_attempts: 8
  backoff: {initial: 30s, multiplier: 2, max: 15m, jitter: 0.2}
rules:
  - codes: [131000, 1, 2, 131016, 133004]
    action: retry
  - codes: [131047]
    action: park
    reason: window
  - codes: [132000, 132001, 132005, 132007, 132012, 132015, 132016]
    action: park
    reason: template
  - codes: [131000]            # a later rule for the same code wins
    action: retry
    max_attempts: 5
    backoff: {initial: 1s, multiplier: 2, max: 10s, jitter: 0}
`

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	good := policyFile(t, policySpecExample)
	code, out, errOut := policyRun(t, nil, "policy", "check", good)
	if code != 0 || out != good+": ok (4 rules over the default table)\n" || errOut != "" {
		t.Errorf("check good: %d %q %q", code, out, errOut)
	}

	// defaults.api: check --json says it, show prints it, a bad one is a
	// failure with its line.
	mm := policyFile(t, "defaults:\n  api: marketing_messages\n")
	code, out, errOut = policyRun(t, nil, "policy", "check", "--json", mm)
	if code != 0 || out != `{"file":"`+mm+`","ok":true,"api":"marketing_messages"}`+"\n" || errOut != "" {
		t.Errorf("check --json api: %d %q %q", code, out, errOut)
	}
	code, out, _ = policyRun(t, nil, "policy", "show", "--policy", mm)
	if code != 0 || !strings.Contains(out, "jitter 0.2, api marketing_messages (template jobs whose job and number name none)\n") {
		t.Errorf("show api: %d %q", code, out)
	}
	badAPI := policyFile(t, "defaults:\n  max_attempts: 3\n  api: [marketing_messages]\n")
	code, _, errOut = policyRun(t, nil, "policy", "check", badAPI)
	if want := badAPI + ":3: defaults.api: a list is not one of messages, marketing_messages\n"; code != 1 || errOut != want {
		t.Errorf("check bad api: %d %q, want %q", code, errOut, want)
	}

	bad := policyFile(t, "rules:\n  - codes: [1]\n    action: retry\n  - codes: [2]\n    action: retyr\n")
	code, out, errOut = policyRun(t, nil, "policy", "check", bad)
	want := bad + `:5: rules[1].action: "retyr" is not one of retry, throttle, park, pause` + "\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("check bad: %d %q\n got %q\nwant %q", code, out, errOut, want)
	}

	code, _, errOut = policyRun(t, nil, "policy", "check", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "no such file") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("check missing: %d %q", code, errOut)
	}

	for _, args := range [][]string{
		{"policy", "check"},
		{"policy", "check", good, good},
		{"policy", "check", "--nope", good},
		{"policy"},
		{"policy", "frobnicate"},
	} {
		if code, _, errOut := policyRun(t, nil, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d %q, want usage (2)", args, code, errOut)
		}
	}
	if code, _, _ := policyRun(t, nil, "policy", "check", "-h"); code != 0 {
		t.Errorf("check -h: exit %d", code)
	}
}

func TestPolicyExplain(t *testing.T) {
	t.Parallel()
	spec := policyFile(t, policySpecExample)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // lines (or parts of lines) of stdout
	}{
		{"131000 default", nil, []string{"131000"}, []string{
			"131000: retry", "reason:       retries_exhausted", "max_attempts: 8 (the policy's max_attempts",
			"backoff:      initial 30s, multiplier 2, max 15m, jitter 0.2 (the rule's own)", "delays:       30s-36s, 48s-1m12s",
			"scope:        job", "source:       default table"}},
		{"131000 from --policy", nil, []string{"131000", "--policy", spec}, []string{
			"max_attempts: 5 (the rule's own", "initial 1s, multiplier 2, max 10s, jitter 0", "delays:       1s, 2s, 4s, 8s", "source:       " + spec + ":13"}},
		{"flags first", nil, []string{"--policy", spec, "131047"}, []string{"131047: park", "reason:       window", "source:       " + spec + ":7"}},
		{"WAQ_POLICY_FILE", map[string]string{"WAQ_POLICY_FILE": spec}, []string{"131016"}, []string{"131016: retry", "source:       " + spec + ":5"}},
		{"--policy beats the environment", map[string]string{"WAQ_POLICY_FILE": "/nonexistent"}, []string{"131047", "--policy", spec}, []string{"source:       " + spec + ":7"}},
		{"code 0 is a real code", nil, []string{"0"}, []string{"0: pause", "scope:        token", "reason:       account", "max_attempts: 50 (the policy's max_sends"}},
		{"a range", nil, []string{"250"}, []string{"250: pause", "matches:      0, 3, 10, 190, 131005, 200-299"}},
		{"throttle", nil, []string{"131056"}, []string{"131056: throttle", "scope:        recipient", "fallback:"}},
		{"http status", nil, []string{"http:503"}, []string{"http:503: retry", "matches:      http 500-599"}},
		{"transport", nil, []string{"transport"}, []string{"transport: retry", "matches:      transport"}},
		{"unknown code", nil, []string{"999999"}, []string{"999999: retry", "reason:       unknown", "matches:      any other code", "source:       default table"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := policyRun(t, tc.env, append([]string{"policy", "explain"}, tc.args...)...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	for _, args := range [][]string{
		{"policy", "explain"},
		{"policy", "explain", "abc"},
		{"policy", "explain", "-5"},
		{"policy", "explain", "http:99"},
		{"policy", "explain", "http:abc"},
		{"policy", "explain", "1", "2"},
	} {
		if code, _, errOut := policyRun(t, nil, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d %q, want usage (2)", args, code, errOut)
		}
	}
	// A bad policy file is a failure (1), with its one line.
	bad := policyFile(t, "rules:\n  - codes: [1]\n")
	code, _, errOut := policyRun(t, nil, "policy", "explain", "1", "--policy", bad)
	if code != 1 || !strings.Contains(errOut, bad+":2: rules[0]: has no action") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("bad file: exit %d %q", code, errOut)
	}
}

func TestPolicyExplainJSON(t *testing.T) {
	t.Parallel()
	spec := policyFile(t, policySpecExample)
	code, out, errOut := policyRun(t, nil, "policy", "explain", "--json", "131000", "--policy", spec)
	if code != 0 || errOut != "" || strings.Count(out, "\n") != 1 {
		t.Fatalf("exit %d %q %q", code, out, errOut)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"query": "131000", "matches": "131000", "action": "retry", "reason": "retries_exhausted",
		"max_attempts": 5.0, "source": spec + ":13",
		"backoff": map[string]any{"initial": "1s", "multiplier": 2.0, "max": "10s", "jitter": 0.0},
		"delays":  []any{"1s", "2s", "4s", "8s"},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
	}

	_, out, _ = policyRun(t, nil, "policy", "explain", "131047", "--json")
	var park map[string]any
	if err := json.Unmarshal([]byte(out), &park); err != nil {
		t.Fatal(err)
	}
	if park["action"] != "park" || park["reason"] != "window" || park["source"] != "default" || park["backoff"] != nil || park["max_attempts"] != nil {
		t.Errorf("131047: %v", park)
	}
	_, out, _ = policyRun(t, nil, "policy", "explain", "130429", "--json")
	if !strings.Contains(out, `"scope":"number"`) {
		t.Errorf("130429: %s", out)
	}
}

func TestPolicyShow(t *testing.T) {
	t.Parallel()
	spec := policyFile(t, policySpecExample)
	code, out, errOut := policyRun(t, map[string]string{"WAQ_POLICY_FILE": spec}, "policy", "show")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d %q", code, errOut)
	}
	for _, w := range []string{
		"policy: " + spec + " (4 rules over the default table; a later rule wins)",
		"defaults: max_attempts 8, max_sends 50, backoff initial 30s, multiplier 2, max 15m, jitter 0.2",
		"SOURCE", spec + ":13", "131047", "2494100", "200-299", "http 500-599", "any other code",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("show lacks %q:\n%s", w, out)
		}
	}

	code, out, _ = policyRun(t, nil, "policy", "show", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 15 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil || r["action"] == nil || r["source"] != "default" {
			t.Errorf("line %q: %v", l, err)
		}
	}
	if code, _, _ := policyRun(t, nil, "policy", "show", "extra"); code != 2 {
		t.Errorf("show extra: exit %d, want 2", code)
	}
}
