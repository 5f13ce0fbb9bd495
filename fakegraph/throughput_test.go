package fakegraph

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// throughputLevel reads the phone number GET's throughput field.
func (e *env) throughputLevel(t *testing.T, phone string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v27.0/"+phone+"?fields=throughput", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID         string `json:"id"`
		Throughput *struct {
			Level string `json:"level"`
		} `json:"throughput"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.ID != phone || out.Throughput == nil {
		t.Fatalf("GET %s: %d %v %+v", phone, resp.StatusCode, err, out)
	}
	return out.Throughput.Level
}

func TestThroughputLevelUpgrade(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{
		Limits:       Limits{Throughput: Throughput{Enabled: true, Strict: true}},
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone}, {PhoneNumberID: "200", WABAID: "9", ThroughputLevel: "HIGH", MPS: 1000}},
	}})
	ctx := context.Background()
	if l := e.throughputLevel(t, testPhone); l != "STANDARD" {
		t.Fatalf("default level %q", l)
	}
	if l := e.throughputLevel(t, "200"); l != "HIGH" {
		t.Fatalf("scenario's level %q", l)
	}
	// STANDARD: 80 in a second.
	if got := e.sendN(t, "a", 81); got != 80 {
		t.Fatalf("%d of 81 accepted at STANDARD", got)
	}
	// Meta upgrades the number: HIGH, 1,000 in a second, at once.
	if err := e.ctl.SetThroughput(ctx, testPhone, ThroughputUpdate{Level: "HIGH"}); err != nil {
		t.Fatal(err)
	}
	if l := e.throughputLevel(t, testPhone); l != "HIGH" {
		t.Fatalf("after the upgrade: %q", l)
	}
	if got := e.sendN(t, "b", 100); got != 100 {
		t.Fatalf("%d of 100 more accepted after the upgrade to 1,000 mps", got)
	}
	// A scenario replacement keeps it; a reset drops it.
	sc := e.sim.Scenario()
	if err := e.sim.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	if l := e.throughputLevel(t, testPhone); l != "HIGH" {
		t.Fatalf("after a scenario replacement: %q", l)
	}
	// Down again, with an explicit rate: the sends of this second count.
	if err := e.ctl.SetThroughput(ctx, testPhone, ThroughputUpdate{Level: "STANDARD", MPS: 5}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(1e9)
	if got := e.sendN(t, "c", 6); got != 5 {
		t.Fatalf("%d of 6 accepted at 5 mps", got)
	}
	e.sim.Reset()
	if l := e.throughputLevel(t, testPhone); l != "STANDARD" {
		t.Fatalf("after a reset: %q", l)
	}
}

func TestThroughputLevelEmptyRegistry(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	if err := e.sim.SetThroughput("777", ThroughputUpdate{Level: "HIGH"}); err != nil {
		t.Fatal(err)
	}
	if l := e.throughputLevel(t, "777"); l != "HIGH" {
		t.Fatalf("level %q", l)
	}
	if p := e.sim.snap.Load().phone("777"); p.MPS != 1000 {
		t.Fatalf("mps %d, want HIGH's 1000", p.MPS)
	}
}

func TestThroughputLevelBadUpdates(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone}}}})
	for _, c := range []struct{ path, body, want string }{
		{"/_fake/numbers/" + testPhone + "/throughput", `{"level":"TURBO"}`, `level \"TURBO\"`},
		{"/_fake/numbers/" + testPhone + "/throughput", `{"level":"high"}`, `level \"high\"`},
		{"/_fake/numbers/" + testPhone + "/throughput", `{}`, `level \"\"`},
		{"/_fake/numbers/" + testPhone + "/throughput", `{"level":"HIGH","mps":-1}`, "must not be negative"},
		{"/_fake/numbers/" + testPhone + "/throughput", `{"level":"HIGH","burst":3}`, "unknown field"},
		{"/_fake/numbers/" + testPhone + "/throughput", `not json`, "decode body"},
		{"/_fake/numbers/999/throughput", `{"level":"HIGH"}`, "not in the scenario's registry"},
		{"/_fake/numbers//throughput", `{"level":"HIGH"}`, "must not be empty"},
	} {
		resp, err := e.ts.Client().Post(e.ts.URL+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(out["error"], strings.ReplaceAll(c.want, `\"`, `"`)) {
			t.Errorf("%s %s: %d %q, want 400 with %q", c.path, c.body, resp.StatusCode, out["error"], c.want)
		}
	}
	if l := e.throughputLevel(t, testPhone); l != "STANDARD" {
		t.Errorf("a refused update changed the level to %q", l)
	}
}
