package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

// TestOpsAuditAndLimit runs `waq worker` with the admin token and reads
// its stderr: every line is JSON (the worker's log), and the admin API's
// and the console's audit lines carry the admin identity (how, from where,
// which console session). Wrong tokens of both draw on one budget per
// address, and /metrics counts them.
func TestOpsAuditAndLimit(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	const tok = "ops-audit-admin-token-0123456789"
	port := testenv.FreePort(t)
	vars := map[string]string{"WAQ_ACCESS_TOKEN": "t", "WAQ_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(port), "WAQ_ADMIN_TOKEN": tok,
		"WAQ_GRAPH_URL": "http://127.0.0.1:1"}
	for k, v := range f.vars {
		vars[k] = v
	}
	stderr := &testenv.Buffer{}
	env := &Env{Stdout: io.Discard, Stderr: stderr, Stdin: strings.NewReader(""), Getenv: func(k string) string {
		if k == "WAQ_DEV_STATE" {
			return t.TempDir() + "/none.json"
		}
		return vars[k]
	}}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, env, []string{"worker"}) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, path, bearer, body string, form url.Values) (int, string) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("User-Agent", "ops-audit-test/1")
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		req, _ := http.NewRequest("GET", base+"/admin/dlq/stats", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("stats: %d", res.StatusCode)
		}
		return nil
	})
	if code, body := call("POST", "/admin/dlq/purge", tok, `{"ids":["w1"],"dry_run":true}`, nil); code != 200 {
		t.Fatalf("admin purge dry run: %d %s", code, body)
	}
	if code, _ := call("POST", "/admin/ui/login", "", "", url.Values{"token": {tok}}); code != http.StatusSeeOther {
		t.Fatalf("console sign-in: %d", code)
	}
	// Three wrong bearer tokens and two wrong sign-ins spend the budget of
	// five; the next attempt, the right sign-in, is refused.
	for i := range 3 {
		if code, _ := call("GET", "/admin/dlq", "wrong-"+strconv.Itoa(i), "", nil); code != http.StatusUnauthorized {
			t.Fatalf("wrong bearer token %d: %d", i, code)
		}
	}
	for i := range 2 {
		if code, _ := call("POST", "/admin/ui/login", "", "", url.Values{"token": {"wrong-" + strconv.Itoa(i)}}); code != http.StatusUnauthorized {
			t.Fatalf("wrong sign-in %d: %d", i, code)
		}
	}
	if code, _ := call("POST", "/admin/ui/login", "", "", url.Values{"token": {tok}}); code != http.StatusTooManyRequests {
		t.Errorf("a sign-in after five wrong tokens from the address: %d, want 429", code)
	}
	if code, _ := call("GET", "/admin/dlq", tok, "", nil); code != http.StatusTooManyRequests {
		t.Errorf("the admin API after five wrong tokens from the address: %d, want 429", code)
	}
	_, metrics := call("GET", "/metrics", "", "", nil)
	for _, line := range []string{
		`waq_auth_failures_total{result="wrong_token",surface="admin_api"} 3`,
		`waq_auth_failures_total{result="wrong_token",surface="console"} 2`,
		`waq_auth_failures_total{result="limited",surface="console"} 1`,
		`waq_auth_failures_total{result="limited",surface="admin_api"} 1`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	// The log: JSON lines only, the audit lines with the admin identity.
	type line struct {
		Msg   string `json:"msg"`
		Admin *struct {
			Via       string `json:"via"`
			Remote    string `json:"remote"`
			Session   string `json:"session"`
			UserAgent string `json:"user_agent"`
		} `json:"admin"`
		DryRun *bool `json:"dry_run"`
	}
	found := map[string]line{}
	testenv.Eventually(t, 5*time.Second, func() error {
		logs := stderr.String()
		if strings.Contains(logs, tok) {
			return fmt.Errorf("the admin token is in the log")
		}
		for _, raw := range strings.Split(strings.TrimSpace(logs), "\n") {
			var l line
			if err := json.Unmarshal([]byte(raw), &l); err != nil {
				return fmt.Errorf("a log line is not JSON: %q", raw)
			}
			if l.Admin != nil {
				found[l.Msg] = l
			}
		}
		if len(found) < 3 {
			return fmt.Errorf("audit lines %v", found)
		}
		return nil
	})
	if l, ok := found["admin: dead-letter purge"]; !ok || l.Admin.Via != "api" || !strings.HasPrefix(l.Admin.Remote, "127.0.0.1:") ||
		l.Admin.UserAgent != "ops-audit-test/1" || l.DryRun == nil || !*l.DryRun {
		t.Errorf("the admin API's purge audit line: %+v", l)
	}
	if l, ok := found["console: signed in"]; !ok || l.Admin.Via != "console" || len(l.Admin.Session) != 12 || !strings.HasPrefix(l.Admin.Remote, "127.0.0.1:") {
		t.Errorf("the console's sign-in audit line: %+v", l)
	}
	if l, ok := found["console: sign-in refused: wrong token"]; !ok || l.Admin.Via != "console" || l.Admin.Session != "" {
		t.Errorf("the console's refused sign-in line: %+v", l)
	}
}
