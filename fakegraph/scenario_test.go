package fakegraph

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleScenario(t *testing.T) {
	t.Parallel()
	sc, err := LoadScenario("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Rules) != 6 || sc.Rules[0].Times != 3 || *sc.Rules[0].Respond.Error != 131000 ||
		sc.Rules[1].Respond.Kind != KindHTML || sc.Latency.Base.D() != 20*time.Millisecond ||
		sc.Limits.Pair.Every.D() != 6*time.Second || !sc.Limits.Throughput.Strict || !sc.Window.Enforce || len(sc.Templates) != 3 ||
		sc.Tokens[1].ExpiresAt == nil || sc.Rules[5].Respond.Async == nil || *sc.Rules[5].Respond.Async.Error != 131026 ||
		sc.Rules[3].Respond.MessageStatus != StatusHeld || sc.Rules[3].Match.API != APIMarketingMessages ||
		len(sc.PhoneNumbers[1].AllowedRecipients) != 2 {
		t.Errorf("decoded %+v", sc)
	}
	// It survives a JSON round trip, as the control API carries it.
	roundTrip(t, sc)
}

// roundTrip checks that sc decodes from its JSON to the same scenario.
func roundTrip(t *testing.T, sc *Scenario) {
	t.Helper()
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeScenario(strings.NewReader(string(b)), "")
	if err != nil {
		t.Fatalf("json round trip: %v\n%s", err, b)
	}
	if b2, _ := json.Marshal(back); string(b) != string(b2) {
		t.Errorf("round trip changed the scenario:\n%s\n%s", b, b2)
	}
}

func TestEmptyScenario(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "  \n", "{}", "# nothing\n"} {
		sc, err := DecodeScenario(strings.NewReader(in), "x.yaml")
		if err != nil || sc == nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestBadScenarios(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"unknown key", "latency: {base: 1s}\nrulez: []\n", 2, `unknown field "rulez"`},
		{"unknown nested key", "rules:\n  - match: {to: \"1\"}\n    respond: {eror: 131000}\n", 3, `unknown field "eror"`},
		{"bad duration", "latency:\n  base: fast\n", 2, `duration "fast"`},
		{"negative duration", "limits:\n  pair: {enabled: true, every: -6s}\n", 2, "must not be negative"},
		{"bad kind", "rules:\n  - respond:\n      kind: teapot\n", 3, `kind "teapot"`},
		{"error kind without code", "rules:\n  - respond: {kind: error}\n", 2, "needs an error code"},
		{"code with another kind", "rules:\n  - respond: {kind: html, error: 131000}\n", 2, "error code given with kind html"},
		{"rate above 1", "random:\n  - rate: 1.5\n    respond: {error: 131000}\n", 2, "rate 1.5"},
		{"negative times", "rules:\n  - times: -1\n    respond: {error: 1}\n", 2, "times must not be negative"},
		{"syntax", "rules:\n  - respond: {error: 131000\n", -1, "did not find expected"},
		{"wrong type", "rules:\n  - times: many\n    respond: {error: 1}\n", 2, "cannot unmarshal"},
		{"template without language", "templates:\n  - name: x\n", 2, "needs a language"},
		{"bad template status", "templates:\n  - name: x\n    language: en\n    status: GOOD\n", 4, "status GOOD"},
		{"duplicate number", "phone_numbers:\n  - phone_number_id: \"1\"\n  - phone_number_id: \"1\"\n", 3, "listed twice"},
		{"bad quality", "phone_numbers:\n  - phone_number_id: \"1\"\n    quality_rating: BLUE\n", 3, "quality_rating BLUE"},
		{"bad webhook status", "webhooks:\n  statuses: [sent, seen]\n", 2, "status seen"},
		{"bad webhook url", "webhooks:\n  url: ftp://x\n", 2, "http(s) URL"},
		{"async on error", "rules:\n  - respond: {error: 1, async: {error: 131026}}\n", 2, "async failures need an accepted send"},
		{"two documents", "latency: {base: 1s}\n---\nrules: []\n", 2, "more than one YAML document"},
		{"huge size", "rules:\n  - respond: {kind: huge, size: 999999999999}\n", 2, "size"},
		{"bad status", "rules:\n  - respond: {kind: html, status: 42}\n", 2, "status 42"},
		{"strict with a burst", "limits:\n  throughput:\n    enabled: true\n    strict: true\n    burst: 5\n", 5, "strict has no burst"},
		{"bad throughput level", "phone_numbers:\n  - phone_number_id: \"1\"\n    throughput_level: TURBO\n", 3, "throughput_level TURBO"},
		{"strict not a bool", "limits:\n  throughput: {strict: sometimes}\n", 2, "cannot unmarshal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeScenario(strings.NewReader(c.in), "s.yaml")
			var se *ScenarioError
			if !errors.As(err, &se) {
				t.Fatalf("want a *ScenarioError, got %T: %v", err, err)
			}
			if se.File != "s.yaml" || (c.line > 0 && se.Line != c.line) || se.Line <= 0 {
				t.Errorf("%v: want line %d", err, c.line)
			}
			if !strings.Contains(se.Msg, c.msg) {
				t.Errorf("%v: want %q in it", err, c.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "scenario s.yaml:") {
				t.Errorf("error %q does not start with the file and line", err)
			}
		})
	}
}

func TestLoadScenarioMissingFile(t *testing.T) {
	t.Parallel()
	_, err := LoadScenario(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestScenarioAsJSON(t *testing.T) {
	t.Parallel()
	in := `{"latency":{"base":"5ms"},"rules":[{"match":{"to":"15551234567"},"times":2,"respond":{"error":0}}],
	        "tokens":[{"token":"t","expires_at":"2026-12-01T00:00:00Z"}]}`
	sc, err := DecodeScenario(strings.NewReader(in), "")
	if err != nil {
		t.Fatal(err)
	}
	if *sc.Rules[0].Respond.Error != 0 || sc.Rules[0].Respond.kind() != KindError || sc.Latency.Base.D() != 5*time.Millisecond {
		t.Errorf("decoded %+v", sc)
	}
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !sc.Tokens[0].ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v", sc.Tokens[0].ExpiresAt)
	}
	_, err = DecodeScenario(strings.NewReader(`{"rules":[{"respond":{"kind":"nope"}}]}`), "")
	if err == nil || !strings.HasPrefix(err.Error(), "scenario:1: rules[0].respond.kind:") {
		t.Errorf("got %v", err)
	}
}

func FuzzDecodeScenario(f *testing.F) {
	if b, err := os.ReadFile("testdata/example.yaml"); err == nil {
		f.Add(string(b))
	}
	f.Add("rules:\n  - match: {to: \"1\"}\n    times: 3\n    respond: {error: 131000}\n")
	f.Add(`{"latency":{"base":"5ms","jitter":"1ms"},"random":[{"rate":0.5,"respond":{"kind":"html"}}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := DecodeScenario(strings.NewReader(in), "f.yaml")
		if err != nil {
			var se *ScenarioError
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// What decodes validates, and survives the control API's JSON.
		if err := sc.validate(); err != nil {
			t.Fatalf("decoded but invalid: %v", err)
		}
		b, err := json.Marshal(sc)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, err := DecodeScenario(strings.NewReader(string(b)), ""); err != nil {
			t.Fatalf("json round trip: %v\n%s", err, b)
		}
		// And a server takes it.
		s := New(Config{Scenario: sc})
		s.Close()
	})
}
