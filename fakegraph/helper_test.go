package fakegraph

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/testenv"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testPhone = "106540352242922"
	testTo    = "15551234567"
)

// newClock is the injectable clock of the tests, at a fixed start.
func newClock() *testenv.Clock {
	return testenv.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
}

// env is what a test needs: the simulator, its listener, a Graph API client
// pointed at it and a control client.
type env struct {
	sim   *Server
	ts    *httptest.Server
	graph *graph.Client
	ctl   *Control
	clock *testenv.Clock
}

// setup starts a simulator on a loopback port, closed with the test.
func setup(t testing.TB, cfg Config) *env {
	t.Helper()
	e := &env{clock: newClock()}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	e.sim = New(cfg)
	e.ts = httptest.NewServer(e.sim)
	t.Cleanup(func() {
		e.sim.Close()
		e.ts.Close()
	})
	gc, err := graph.New(graph.Options{BaseURL: e.ts.URL, Timeout: 5 * time.Second, MaxBody: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e.graph = gc
	e.ctl = &Control{BaseURL: e.ts.URL, HTTPClient: e.ts.Client()}
	return e
}

// text is a free-form message to to.
func text(to string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"messaging_product": "whatsapp", "to": to, "type": "text",
		"text": map[string]string{"body": "hello"}})
	return b
}

// tmpl is a template message with n body parameters.
func tmpl(to, name, lang string, n int) json.RawMessage {
	params := make([]map[string]string, n)
	for i := range params {
		params[i] = map[string]string{"type": "text", "text": "v"}
	}
	comps := []map[string]any{}
	if n > 0 {
		comps = append(comps, map[string]any{"type": "body", "parameters": params})
	}
	b, _ := json.Marshal(map[string]any{"messaging_product": "whatsapp", "to": to, "type": "template",
		"template": map[string]any{"name": name, "language": map[string]string{"code": lang}, "components": comps}})
	return b
}

func (e *env) send(t testing.TB, jobID string, msg json.RawMessage) (*graph.SendResult, error) {
	t.Helper()
	return e.graph.Send(context.Background(), graph.SendRequest{PhoneNumberID: testPhone, Token: "tok", Message: msg, JobID: jobID})
}

func (e *env) sendFrom(t testing.TB, phone, jobID string, msg json.RawMessage) (*graph.SendResult, error) {
	t.Helper()
	return e.graph.Send(context.Background(), graph.SendRequest{PhoneNumberID: phone, Token: "tok", Message: msg, JobID: jobID})
}

// apiError asserts that err is a *graph.APIError with code.
func apiError(t testing.TB, err error, code int) *graph.APIError {
	t.Helper()
	ae, ok := err.(*graph.APIError)
	if !ok {
		t.Fatalf("want an *graph.APIError with code %d, got %T: %v", code, err, err)
	}
	if ae.Code != code {
		t.Fatalf("want code %d, got %d: %v", code, ae.Code, ae)
	}
	return ae
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// raw posts body to the messages endpoint and returns the answer.
func (e *env) raw(t testing.TB, token string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v27.0/"+testPhone+"/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}
