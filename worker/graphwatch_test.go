package worker_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
)

// readyzBody is what the Graph API's state shows in /readyz.
type readyzBody struct {
	Ready    bool   `json:"ready"`
	Status   string `json:"status"`
	Degraded []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"degraded"`
}

func readyzOf(t *testing.T, url string) (int, readyzBody) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readyzBody
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r
}

// TestGraphAPIFailingIsReported: a Graph API that hangs, or answers every
// send with an error page, turns /readyz to "degraded" (still 200: the
// worker takes webhooks and retries) with the reason, logs it once at WARN
// with the error and never the token, and sets
// waq_dependency_up{dependency="graph_api"} to 0; the first answer after
// it puts all three back. Meta's errors about the messages (the API works)
// do not.
func TestGraphAPIFailingIsReported(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind fakegraph.Kind
		want string // in the reason
	}{
		{"hang", fakegraph.KindHang, "timeout"},
		{"html 502", fakegraph.KindHTML, "502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			if _, err := e.fake.AddRules(fakegraph.Rule{Respond: fakegraph.Response{Kind: tc.kind}}); err != nil {
				t.Fatal(err)
			}
			r := e.start(t, e.config())
			if code, rz := readyzOf(t, r.url); code != 200 || rz.Status != "ready" || len(rz.Degraded) != 0 {
				t.Fatalf("before any send: %d %+v", code, rz)
			}
			for i := 0; i < 8; i++ {
				e.publish(t, textJob(fmt.Sprintf("down-%d", i), fmt.Sprintf("1555123%04d", i)))
			}
			var rz readyzBody
			testenv.Eventually(t, 30*time.Second, func() error {
				var code int
				code, rz = readyzOf(t, r.url)
				if code != 200 || rz.Status != "degraded" || !rz.Ready {
					return fmt.Errorf("readyz %d %+v", code, rz)
				}
				return nil
			})
			if len(rz.Degraded) != 1 || rz.Degraded[0].Name != "graph_api" || !strings.Contains(rz.Degraded[0].Error, tc.want) ||
				!strings.Contains(rz.Degraded[0].Error, "sends in a row") {
				t.Fatalf("degraded %+v, want graph_api with %q", rz.Degraded, tc.want)
			}
			if m := grep(scrape(t, r.url), `waq_dependency_up{dependency="graph_api"}`); !strings.HasSuffix(m, " 0") {
				t.Errorf("gauge while failing: %q", m)
			}
			warn := logLinesWith(e.logs.String(), "the Graph API fails every send")
			if len(warn) != 1 || warn[0]["level"] != "WARN" || !strings.Contains(fmt.Sprint(warn[0]["error"]), tc.want) {
				t.Fatalf("want one WARN line with the error, got %v", warn)
			}
			if strings.Contains(e.logs.String(), token) {
				t.Fatal("the access token is in the log")
			}

			e.fake.ClearRules()
			e.publish(t, textJob("up-again", "15559870000"))
			e.waitSent(t, 30*time.Second, "up-again")
			testenv.Eventually(t, 10*time.Second, func() error {
				if code, rz := readyzOf(t, r.url); code != 200 || rz.Status != "ready" || len(rz.Degraded) != 0 {
					return fmt.Errorf("readyz after recovery %d %+v", code, rz)
				}
				return nil
			})
			if m := grep(scrape(t, r.url), `waq_dependency_up{dependency="graph_api"}`); !strings.HasSuffix(m, " 1") {
				t.Errorf("gauge after recovery: %q", m)
			}
			if len(logLinesWith(e.logs.String(), "the Graph API answers again")) != 1 {
				t.Error("no line saying the Graph API answers again")
			}
		})
	}
}

// TestMetaErrorsAreNotAnOutage: sends that Meta refuses for reasons of the
// message (a closed window, 131047) show the API working.
func TestMetaErrorsAreNotAnOutage(t *testing.T) {
	e := setup(t)
	c := 131047
	if _, err := e.fake.AddRules(fakegraph.Rule{Respond: fakegraph.Response{Kind: fakegraph.KindError, Error: &c}}); err != nil {
		t.Fatal(err)
	}
	r := e.start(t, e.config())
	for i := 0; i < 8; i++ {
		e.publish(t, textJob(fmt.Sprintf("w-%d", i), fmt.Sprintf("1555123%04d", i)))
	}
	for i := 0; i < 8; i++ {
		e.waitParked(t, 20*time.Second, fmt.Sprintf("w-%d", i))
	}
	if code, rz := readyzOf(t, r.url); code != 200 || rz.Status != "ready" || len(rz.Degraded) != 0 {
		t.Fatalf("readyz after Meta's errors: %d %+v", code, rz)
	}
	if len(logLinesWith(e.logs.String(), "the Graph API fails every send")) != 0 {
		t.Fatal("Meta's errors about messages logged as an outage")
	}
}

// logLinesWith returns the JSON log lines whose msg starts with msg.
func logLinesWith(logs, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		if s, ok := m["msg"].(string); ok && strings.HasPrefix(s, msg) {
			out = append(out, m)
		}
	}
	return out
}
