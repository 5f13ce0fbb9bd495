package fakegraph

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{{Name: "initial", Match: Match{To: "15550000001"}, Respond: Response{Error: Code(131026)}}}}})
	ctx := context.Background()

	names, err := e.ctl.AddRules(ctx,
		Rule{Name: "three", Match: Match{To: testTo}, Times: 3, Respond: Response{Error: Code(131000)}},
		Rule{Match: Match{JobID: "html"}, Respond: Response{Kind: KindHTML}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[0] != "three" || !strings.HasPrefix(names[1], "rule-") {
		t.Errorf("added %v", names)
	}
	for range 4 {
		_, _ = e.send(t, "job-x", text(testTo))
	}
	st, err := e.ctl.Stats(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 4 || st.Accepted != 1 || st.ByCode[131000] != 3 || len(st.Rules) != 3 || st.Rules[1].Remaining != 0 || st.Rules[1].Matched != 3 {
		t.Errorf("stats %+v", st)
	}
	sends, err := e.ctl.Sends(ctx, 2)
	if err != nil || len(sends) != 2 || sends[1].Outcome != "accepted" || sends[0].Rule != "three" {
		t.Errorf("sends %+v, %v", sends, err)
	}
	js, err := e.ctl.Job(ctx, "job-x")
	if err != nil || js.Sends != 4 || js.Accepted != 1 {
		t.Errorf("job %+v, %v", js, err)
	}
	js, err = e.ctl.Job(ctx, "never")
	if err != nil || js.Sends != 0 {
		t.Errorf("unseen job %+v, %v", js, err)
	}
	sc, err := e.ctl.Scenario(ctx)
	if err != nil || len(sc.Rules) != 3 || sc.Rules[0].Name != "initial" {
		t.Errorf("scenario %+v, %v", sc, err)
	}

	// Replace the scenario: the old rules are gone.
	if err := e.ctl.SetScenario(ctx, &Scenario{Rules: []Rule{{Respond: Response{Error: Code(131047)}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.send(t, "y", text("15550000001"))
	apiError(t, err, 131047)
	if err := e.ctl.ClearRules(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(t, "z", text("15550000001")); err != nil {
		t.Fatalf("after clearing the rules: %v", err)
	}

	// Reset restores the initial scenario and zeroes the counters.
	if err := e.ctl.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = e.ctl.Stats(ctx, false)
	if st.Requests != 0 || len(st.Rules) != 1 || st.Rules[0].Name != "initial" || len(st.ByPhoneNumber) != 0 {
		t.Errorf("after reset %+v", st)
	}
	_, err = e.send(t, "w", text("15550000001"))
	apiError(t, err, 131026)

	// Errors are one clear line, as a 400.
	err = e.ctl.SetScenario(ctx, &Scenario{Random: []RandomFailure{{Rate: 2, Respond: Response{Error: Code(1)}}}})
	if err == nil || !strings.Contains(err.Error(), "http 400") || !strings.Contains(err.Error(), "rate 2") {
		t.Errorf("bad scenario: %v", err)
	}
	_, err = e.ctl.AddRules(ctx, Rule{Respond: Response{Kind: "teapot"}})
	if err == nil || !strings.Contains(err.Error(), `kind "teapot"`) {
		t.Errorf("bad rule: %v", err)
	}
	if err := e.ctl.SetToken(ctx, TokenUpdate{}); err == nil {
		t.Error("an empty token was taken")
	}
	if err := e.ctl.Inbound(ctx, testPhone, "not a number", ""); err == nil {
		t.Error("a bad inbound sender was taken")
	}
}

func TestControlRawRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Rules in YAML.
	if code, body := do(http.MethodPost, "/_fake/rules", "rules:\n  - match: {to: \"15551234567\"}\n    times: 1\n    respond: {error: 131000}\n"); code != 200 {
		t.Errorf("yaml rules: %d %s", code, body)
	}
	// Only rules may be posted to /_fake/rules.
	if code, body := do(http.MethodPost, "/_fake/rules", `{"latency":{"base":"1s"}}`); code != 400 || !strings.Contains(body, "only rules") {
		t.Errorf("latency posted as rules: %d %s", code, body)
	}
	// A bad scenario names the line.
	if code, body := do(http.MethodPut, "/_fake/scenario", "latency:\n  base: soon\n"); code != 400 || !strings.Contains(body, "scenario:2:") {
		t.Errorf("bad scenario: %d %s", code, body)
	}
	if code, _ := do(http.MethodGet, "/_fake/nothing", ""); code != 404 {
		t.Errorf("unknown endpoint: %d", code)
	}
	if code, body := do(http.MethodPost, "/_fake/tokens", `{"token":"t","bogus":1}`); code != 400 || !strings.Contains(body, "bogus") {
		t.Errorf("unknown field: %d %s", code, body)
	}
	if code, body := do(http.MethodGet, "/_fake/codes", ""); code != 200 || !strings.Contains(body, `"code":131000`) {
		t.Errorf("codes: %d", code)
	}
	if code, body := do(http.MethodGet, "/_fake/stats?jobs=all", ""); code != 200 || !strings.Contains(body, `"accepted_per_job":{}`) {
		t.Errorf("stats with jobs: %d %s", code, body)
	}
}
