package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/graph"
)

// parse parses a policy file that must be good.
func parse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// The example of SPEC §3, as testdata/spec.yaml holds it.
func TestSpecExample(t *testing.T) {
	t.Parallel()
	p, err := Load("testdata/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.FileRules() != 4 || p.Name() != "testdata/spec.yaml" {
		t.Errorf("FileRules, Name = %d, %q", p.FileRules(), p.Name())
	}
	// A later rule for the same code wins: 131000 is the last rule's.
	r := p.Lookup(code(131000))
	if r.Source != "testdata/spec.yaml:13" || r.MaxAttempts != 5 {
		t.Fatalf("131000: %+v, want the rule at line 13 with max_attempts 5", r)
	}
	p = p.WithRand(func() float64 { return 0.5 })
	// jitter 0: exactly 1s, 2s, 4s, 8s, then parked at the 5th send.
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if d := p.Decide(code(131000), n+1); d.Action != Retry || d.Delay != want {
			t.Errorf("131000 attempt %d: %v, want retry in %v", n+1, d, want)
		}
	}
	if d := p.Decide(code(131000), 5); d.Action != Park || d.Reason != ReasonRetriesExhausted || d.MaxAttempts != 5 {
		t.Errorf("131000 attempt 5: %+v, want park after 5", d)
	}
	// Codes the file names in its first rule come from it, with the
	// file's defaults.
	if r := p.Lookup(code(131016)); r.Source != "testdata/spec.yaml:5" || r.Reason != ReasonRetriesExhausted {
		t.Errorf("131016: %+v", r)
	}
	if r := p.Lookup(code(131047)); r.Source != "testdata/spec.yaml:7" || r.Reason != ReasonWindow {
		t.Errorf("131047: %+v", r)
	}
	// Codes the file does not name keep their default row: 132018 is a
	// template code of Appendix A the example leaves out (132015 and
	// 132016, which the example parks, hold their template by default).
	for _, tc := range appendixA {
		if tc.f.HasCode && tc.f.Code == 132018 || !tc.f.HasCode || tc.action == Pause && tc.scope != ScopeTemplate || tc.action == Throttle {
			r := p.Lookup(tc.f)
			if r.Source != SourceDefault || r.Action != tc.action || r.Reason != tc.reason || r.Scope != tc.scope {
				t.Errorf("%s: %+v, want its default row", tc.name, r)
			}
		}
	}
}

func TestOverlay(t *testing.T) {
	t.Parallel()
	p := parse(t, `
defaults:
  max_attempts: 4
  backoff: {initial: 2s, max: 1m}
rules:
  - codes: [130472]
    action: retry            # the experiment may end: try a little
    max_attempts: 3
    reason: undeliverable
  - codes: ["131000-131099"]
    action: park
    reason: invalid
  - codes: [131047]
    action: retry
  - http_status: [503, "520-529"]
    action: throttle
  - transport: true
    action: retry
    backoff: {initial: 5s}
  - codes: [424242]
    action: pause
  - codes: [131056]
    action: throttle
    scope: number
    max_attempts: 20
`)
	for _, tc := range []struct {
		name   string
		f      graph.Failure
		action Action
		reason string
		scope  Scope
		source string
	}{
		{"retry with a reason of its own", code(130472), Retry, ReasonUndeliverable, ScopeJob, "p.yaml:6"},
		// A range laid later wins over single codes named earlier.
		{"range over 131047 (the later single rule wins back)", code(131047), Retry, ReasonRetriesExhausted, ScopeJob, "p.yaml:13"},
		{"range over 131000", code(131000), Park, ReasonInvalid, ScopeJob, "p.yaml:10"},
		{"range over 131056 (a later rule)", code(131056), Throttle, ReasonRetriesExhausted, ScopeNumber, "p.yaml:22"},
		{"outside the range keeps its default", code(131100), Retry, ReasonUnknown, ScopeJob, SourceDefault},
		{"http single", graph.Failure{HTTPStatus: 503}, Throttle, ReasonRetriesExhausted, ScopeNumber, "p.yaml:15"},
		{"http range", graph.Failure{HTTPStatus: 524}, Throttle, ReasonRetriesExhausted, ScopeNumber, "p.yaml:15"},
		{"other 5xx keep the default", graph.Failure{HTTPStatus: 500}, Retry, ReasonRetriesExhausted, ScopeJob, SourceDefault},
		// For an HTML 503 page both match; the later rule wins.
		{"transport after http", graph.Failure{Transport: true, HTTPStatus: 503}, Retry, ReasonRetriesExhausted, ScopeJob, "p.yaml:17"},
		{"pause defaults to number", code(424242), Pause, ReasonAccount, ScopeNumber, "p.yaml:20"},
	} {
		r := p.Lookup(tc.f)
		if r.Action != tc.action || r.Reason != tc.reason || r.Scope != tc.scope || r.Source != tc.source {
			t.Errorf("%s: %+v, want %s/%s/%q from %s", tc.name, r, tc.action, tc.reason, tc.scope, tc.source)
		}
	}

	// defaults.max_attempts applies to default rows the file leaves alone.
	if d := p.Decide(code(2), 4); d.Action != Park || d.MaxAttempts != 4 {
		t.Errorf("2 at 4: %+v, want park after the file's 4", d)
	}
	if d := p.Decide(code(130472), 3); d.Action != Park || d.Reason != ReasonUndeliverable {
		t.Errorf("130472 at 3: %+v, want park undeliverable", d)
	}
	// The file's backoff: initial 2s, max 1m, the rest from the built-in.
	n, b := p.Defaults()
	if n != 4 || b != (Backoff{Initial: 2 * time.Second, Multiplier: 2, Max: time.Minute, Jitter: 0.2}) {
		t.Errorf("Defaults() = %d, %+v", n, b)
	}
	// A rule's partial backoff takes the rest from the file's defaults.
	if b := p.BackoffOf(p.Lookup(graph.Failure{Transport: true})); b != (Backoff{Initial: 5 * time.Second, Multiplier: 2, Max: time.Minute, Jitter: 0.2}) {
		t.Errorf("transport backoff %+v", b)
	}
	// 131000's default row keeps Meta's 30 s floor under a file whose
	// defaults are shorter, as long as the file does not name 131000.
	q := parse(t, "defaults:\n  backoff: {initial: 1s, max: 10s}\n")
	for range 1000 {
		if d := q.Decide(code(131000), 1); d.Delay < 30*time.Second {
			t.Fatalf("131000 first delay %v under a short default backoff", d.Delay)
		}
	}
	if d := q.Decide(code(2), 1); d.Delay > 1200*time.Millisecond {
		t.Errorf("code 2 first delay %v, want the file's 1s", d.Delay)
	}
	// A throttle rule's max_attempts replaces max_sends.
	if d := p.Decide(code(131056), 19); d.Action != Throttle {
		t.Errorf("131056 at 19: %v", d)
	}
	if d := p.Decide(code(131056), 20); d.Action != Park || d.MaxAttempts != 20 {
		t.Errorf("131056 at 20: %+v", d)
	}
}

func TestFileFeatures(t *testing.T) {
	t.Parallel()
	// Anchors and aliases, quoted codes, flow and block style, a later
	// duplicate in the same list.
	p := parse(t, `
defaults:
  max_attempts: 3
  max_sends: 10
  backoff: &slow {initial: 1m, multiplier: 1.5, max: 2h, jitter: 0}
rules:
  - codes:
      - "131000"
      - 0x1F            # YAML hex, 31
    action: retry
    backoff: *slow
  - {codes: [0], action: pause, scope: app, reason: unknown}
`)
	if r := p.Lookup(code(131000)); r.Backoff == nil || r.Backoff.Initial != time.Minute || r.Backoff.Max != 2*time.Hour {
		t.Errorf("alias backoff: %+v", r.Backoff)
	}
	if r := p.Lookup(code(31)); r.Source != "p.yaml:7" {
		t.Errorf("hex code: %+v", r)
	}
	if d := p.Decide(code(0), 10); d.Action != Park || d.Reason != ReasonUnknown {
		t.Errorf("pause with its own reason: %+v", d)
	}
	if d := p.Decide(code(0), 9); d.Action != Pause || d.Scope != ScopeApp {
		t.Errorf("code 0 at 9: %+v", d)
	}
	// A file of rules only, and one of defaults only.
	parse(t, "rules: []\n")
	parse(t, "defaults: {max_attempts: 1}\n")
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var fe *FileError
	if _, err := Load(big); !errors.As(err, &fe) || !strings.Contains(fe.Problem, "larger than") {
		t.Errorf("big file: %v", err)
	}
}

// Each bad file is refused with one line naming the line and the problem.
func TestBadFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		line      int
		want      string // the error from "p.yaml:LINE: " on, or a part of it
	}{
		{"empty", "", 1, "the file is empty"},
		{"blank", "\n\n  \n", 1, "the file is empty"},
		{"comments only", "# nothing yet\n", 1, "the file is empty"},
		{"a list", "- codes: [1]\n  action: retry\n", 1, "the file is a list, not a mapping with defaults and rules"},
		{"a scalar", "\nretry\n", 2, `the file is "retry", not a mapping`},
		{"null document", "~\n", 1, "the file is empty, not a mapping"},
		{"two documents", "rules: []\n---\nrules: []\n", 2, "a second YAML document"},
		{"unknown top key", "defaults: {}\nrule:\n  - codes: [1]\n", 2, `unknown key "rule" (expected defaults, rules)`},
		{"duplicate top key", "rules: []\ndefaults: {}\nrules: []\n", 3, "rules: duplicate key (first at line 1)"},
		{"tab indentation", "rules:\n\t- codes: [1]\n", 2, "not valid YAML: found character that cannot start any token"},
		{"unclosed list", "rules:\n  - codes: [1, 2\n    action: retry\n", 2, "not valid YAML: did not find expected ',' or ']'"},
		{"bad indentation", "defaults:\n  max_attempts: 3\n max_sends: 4\n", 3, "not valid YAML: did not find expected key"},
		{"unknown alias", "rules:\n  - codes: [*common]\n    action: retry\n", 2, "unknown anchor 'common'"},
		{"control character", "rules: []\n# \x07\n", 2, "control character U+0007"},
		{"not UTF-8", "rules: []\n# \xff\n", 2, "is not UTF-8 text"},
		{"rules not a list", "rules:\n  codes: [1]\n", 2, "rules: is a mapping, expected a list of rules"},
		{"rules empty", "rules:\n", 1, "rules: is empty, expected a list of rules"},
		{"rule not a mapping", "rules:\n  - 131000\n", 2, "rules[0]: is 131000, expected a mapping of codes"},
		{"misspelt action", "rules:\n  - codes: [1]\n    action: retry\n  - codes: [2]\n    action: retyr\n", 5, `rules[1].action: "retyr" is not one of retry, throttle, park, pause`},
		{"no action", "rules:\n  - codes: [1]\n    reason: window\n", 2, "rules[0]: has no action (one of retry, throttle, park, pause)"},
		{"unknown rule key", "rules:\n  - code: [1]\n    action: retry\n", 2, `rules[0]: unknown key "code" (expected codes, http_status, transport`},
		{"duplicate rule key", "rules:\n  - codes: [1]\n    action: retry\n    action: park\n", 4, "rules[0].action: duplicate key (first at line 3)"},
		{"merge key", "x: &x {action: retry}\n", 1, `unknown key "x"`},
		{"merge key in a rule", "rules:\n  - codes: [1]\n    <<: {action: retry}\n", 3, "rules[0]: merge keys (<<) are not supported"},
		{"matches nothing", "rules:\n  - action: retry\n", 2, "rules[0]: matches nothing; give codes, http_status or transport: true"},
		{"transport false", "rules:\n  - action: retry\n    transport: false\n", 3, "rules[0].transport: false matches nothing"},
		{"transport not a bool", "rules:\n  - action: retry\n    transport: yes\n", 3, `rules[0].transport: "yes" is not true or false`},
		{"codes empty", "rules:\n  - codes: []\n    action: retry\n", 2, "rules[0].codes: is an empty list"},
		{"codes a number", "rules:\n  - codes: 131000\n    action: retry\n", 2, "rules[0].codes: is 131000, expected a list such as"},
		{"negative code", "rules:\n  - codes: [131000, -1]\n    action: retry\n", 2, "rules[0].codes[1]: -1 is negative"},
		{"code too large", "rules:\n  - codes: [99999999999]\n    action: retry\n", 2, "rules[0].codes[0]: 99999999999 is not between 0 and 2147483647"},
		{"code not a number", "rules:\n  - codes: [abc]\n    action: retry\n", 2, `rules[0].codes[0]: "abc" is not a number or a range`},
		{"code a float", "rules:\n  - codes: [1.5]\n    action: retry\n", 2, `rules[0].codes[0]: 1.5 is not a number or a range`},
		{"backwards range", "rules:\n  - codes: [\"299-200\"]\n    action: retry\n", 2, `rules[0].codes[0]: range "299-200" runs backwards`},
		{"range with a negative end", "rules:\n  - codes: [\"-5-10\"]\n    action: retry\n", 2, `rules[0].codes[0]: "-5-10" is negative`},
		{"http status out of range", "rules:\n  - http_status: [503, 700]\n    action: retry\n", 2, "rules[0].http_status[1]: 700 is not between 100 and 599"},
		{"http range out of range", "rules:\n  - http_status: [\"500-600\"]\n    action: retry\n", 2, "rules[0].http_status[0]: 600 is not between 100 and 599"},
		{"park without reason", "rules:\n  - codes: [131047]\n    action: park\n", 2, "rules[0]: park needs a reason (one of window, template, retries_exhausted"},
		{"bad reason", "rules:\n  - codes: [131047]\n    action: park\n    reason: windw\n", 4, `rules[0].reason: "windw" is not one of window, template`},
		{"max_attempts on park", "rules:\n  - codes: [131047]\n    action: park\n    reason: window\n    max_attempts: 3\n", 5, "rules[0].max_attempts: does not apply to park"},
		{"backoff on park", "rules:\n  - codes: [131047]\n    action: park\n    reason: window\n    backoff: {initial: 1s}\n", 5, "rules[0].backoff: does not apply to park"},
		{"scope on retry", "rules:\n  - codes: [1]\n    action: retry\n    scope: number\n", 4, "rules[0].scope: only throttle and pause take a scope"},
		{"wrong scope for throttle", "rules:\n  - codes: [4]\n    action: throttle\n    scope: token\n", 4, `rules[0].scope: "token" is not one of number, recipient, waba, app (for throttle)`},
		{"wrong scope for pause", "rules:\n  - codes: [190]\n    action: pause\n    scope: recipient\n", 4, `rules[0].scope: "recipient" is not one of number, waba, app, token, template (for pause)`},
		{"empty scope", "rules:\n  - codes: [190]\n    action: pause\n    scope: \"\"\n", 4, `rules[0].scope: "" is not one of number`},
		{"max_attempts zero", "rules:\n  - codes: [1]\n    action: retry\n    max_attempts: 0\n", 4, "rules[0].max_attempts: 0 is not between 1 and 10000"},
		{"max_attempts text", "defaults:\n  max_attempts: many\n", 2, `defaults.max_attempts: "many" is not a whole number`},
		{"max_attempts over max_sends", "defaults:\n  max_sends: 10\nrules:\n  - codes: [1]\n    action: retry\n    max_attempts: 11\n", 6, "rules[0].max_attempts: 11 is more than max_sends 10"},
		{"defaults over max_sends", "defaults:\n  max_attempts: 20\n  max_sends: 10\n", 2, "defaults.max_attempts: 20 is more than max_sends 10"},
		{"duration without unit", "defaults:\n  backoff:\n    initial: 30\n", 3, "defaults.backoff.initial: 30 has no unit; write a duration such as 30s"},
		{"bad duration", "defaults:\n  backoff: {initial: 30x}\n", 2, `defaults.backoff.initial: "30x" is not a duration such as 30s or 15m`},
		{"negative duration", "defaults:\n  backoff: {max: -5s}\n", 2, `defaults.backoff.max: "-5s" is not more than zero`},
		{"zero duration", "defaults:\n  backoff: {initial: 0s}\n", 2, `defaults.backoff.initial: "0s" is not more than zero`},
		{"huge duration", "defaults:\n  backoff: {max: 48h}\n", 2, `defaults.backoff.max: "48h" is more than 24h`},
		{"initial over max", "defaults:\n  backoff:\n    initial: 20m\n    max: 15m\n", 3, "defaults.backoff: initial 20m is more than max 15m"},
		{"initial over the default max", "rules:\n  - codes: [1]\n    action: retry\n    backoff: {initial: 1h}\n", 4, "rules[0].backoff: initial 1h is more than max 15m"},
		{"multiplier below 1", "defaults:\n  backoff: {multiplier: 0.5}\n", 2, "defaults.backoff.multiplier: 0.5 is not between 1 and 100"},
		{"multiplier NaN", "defaults:\n  backoff: {multiplier: .nan}\n", 2, "defaults.backoff.multiplier: .nan is not a number"},
		{"jitter over 1", "defaults:\n  backoff: {jitter: 1.5}\n", 2, "defaults.backoff.jitter: 1.5 is not between 0 and 1"},
		{"jitter negative", "defaults:\n  backoff: {jitter: -0.1}\n", 2, "defaults.backoff.jitter: -0.1 is not between 0 and 1"},
		{"unknown backoff key", "defaults:\n  backoff: {initial: 1s, factor: 2}\n", 2, `defaults.backoff: unknown key "factor" (expected initial, multiplier, max, jitter)`},
		{"unknown api", "defaults:\n  max_attempts: 3\n  api: marketing\n", 3, `defaults.api: "marketing" is not one of messages, marketing_messages`},
		{"api with the wrong case", "defaults:\n  api: Marketing_Messages\n", 2, `defaults.api: "Marketing_Messages" is not one of messages, marketing_messages`},
		{"api empty", "defaults:\n  api:\n", 2, "defaults.api: empty is not one of messages, marketing_messages"},
		{"api a number", "defaults:\n  api: 1\n", 2, "defaults.api: 1 is not one of messages, marketing_messages"},
		{"api a bool", "defaults:\n  api: true\n", 2, "defaults.api: true is not one of messages, marketing_messages"},
		{"api a list", "defaults:\n  api:\n    - marketing_messages\n", 3, "defaults.api: a list is not one of messages, marketing_messages"},
		{"api a mapping", "defaults:\n  api: {marketing: marketing_messages}\n", 2, "defaults.api: a mapping is not one of messages, marketing_messages"},
		{"api tagged", "defaults:\n  api: !!binary bWVzc2FnZXM=\n", 2, `defaults.api: "bWVzc2FnZXM=" (tagged "!!binary") is not one of`},
		{"api twice", "defaults:\n  api: messages\n  api: marketing_messages\n", 3, "defaults.api: duplicate key (first at line 2)"},
		{"api at the top", "api: marketing_messages\n", 1, `unknown key "api" (expected defaults, rules)`},
		{"api in a rule", "rules:\n  - codes: [1]\n    action: retry\n    api: messages\n", 4, `rules[0]: unknown key "api"`},
		{"defaults not a mapping", "defaults: 8\n", 1, "defaults: is 8, expected a mapping of max_attempts, max_sends, backoff"},
		{"long value cut short", "rules:\n  - codes: [1]\n    action: " + strings.Repeat("z", 500) + "\n", 3, `rules[0].action: "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz..." is not one of`},
		{"newline in a value", "rules:\n  - codes: [1]\n    action: \"re\\ntry\"\n", 3, `rules[0].action: "re\ntry" is not one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse("p.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse accepted it: %d rules", p.FileRules())
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v, want *FileError", err, err)
			}
			if fe.File != "p.yaml" || fe.Line != tc.line {
				t.Errorf("error at %s:%d, want p.yaml:%d (%v)", fe.File, fe.Line, tc.line, err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			prefix := "p.yaml:" + strconv.Itoa(tc.line) + ": "
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg[len(prefix):], tc.want) {
				t.Errorf("error\n  %s\nwant %s...%s...", msg, prefix, tc.want)
			}
		})
	}
}

// TestDefaultAPI: defaults.api is read as written and the built-in table
// has none (template jobs then go to /messages, numbers.Endpoint).
func TestDefaultAPI(t *testing.T) {
	t.Parallel()
	if got := Default().API(); got != "" {
		t.Errorf("built-in API() = %q, want empty", got)
	}
	var nilPolicy *Policy
	if got := nilPolicy.API(); got != "" {
		t.Errorf("nil policy API() = %q, want empty", got)
	}
	for _, api := range []string{"messages", "marketing_messages", "'marketing_messages'", "\"marketing_messages\""} {
		p := parse(t, "defaults:\n  api: "+api+"\n")
		if want := strings.Trim(api, "'\""); p.API() != want {
			t.Errorf("api: %s: API() = %q, want %q", api, p.API(), want)
		}
	}
	if p := parse(t, "defaults:\n  max_attempts: 3\n"); p.API() != "" {
		t.Errorf("no defaults.api: API() = %q", p.API())
	}
	// A copy for tests keeps it.
	if p := parse(t, "defaults: {api: marketing_messages}\n").WithRand(func() float64 { return 0 }); p.API() != "marketing_messages" {
		t.Errorf("WithRand lost the api: %q", p.API())
	}
}

func TestFileErrorFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    FileError
		want string
	}{
		{FileError{File: "policy.yaml", Line: 12, Field: "rules[2].action", Problem: `"retyr" is not one of retry, throttle, park, pause`},
			`policy.yaml:12: rules[2].action: "retyr" is not one of retry, throttle, park, pause`},
		{FileError{File: "policy.yaml", Line: 1, Problem: "the file is empty"}, "policy.yaml:1: the file is empty"},
		{FileError{File: "policy.yaml", Problem: "is larger than 1048576 bytes"}, "policy.yaml: is larger than 1048576 bytes"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
