package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

// syncBuffer is a buffer a command writes while the test reads.
type syncBuffer = testenv.Buffer

// TestDev runs `waq dev --no-tty` end to end with each kind of Redis: it
// starts everything, the demo's jobs get their outcomes (sent, parked as
// window and template), the state file exists while it runs and is gone
// after, and no redis-server child is left.
func TestDev(t *testing.T) {
	testenv.RedisServerPath(t)
	for _, mode := range []string{"redis-server", "in-process"} {
		t.Run(mode, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "waq-dev.json")
			// One run with the console on: the screen says where it is
			// and how to sign in.
			const adminToken = "dev-console-token-0123"
			console := mode == "in-process"
			var out, errb syncBuffer
			env := &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string {
				switch {
				case k == "WAQ_DEV_STATE":
					return state
				case k == "WAQ_ADMIN_TOKEN" && console:
					return adminToken
				}
				return ""
			}}
			done := make(chan int, 1)
			go func() {
				done <- run(context.Background(), env, []string{"dev", "--no-tty", "--any-port", "--duration", "7s", "--rate", "40", "--redis", mode})
			}()
			// While it runs, the state file names what it started.
			testenv.Eventually(t, 30*time.Second, func() error {
				m := readDevState(state)
				if m == nil {
					select {
					case code := <-done:
						done <- code
						return fmt.Errorf("waq dev ended (%d) before writing its state: %s", code, errb.String())
					default:
					}
					return testenv.ErrNotYet
				}
				for _, k := range []string{"nats_url", "redis_url", "graph_url", "http_addr"} {
					if !strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(m[k], "nats://"), "redis://"), "127.0.0.1") &&
						!strings.HasPrefix(m[k], "http://127.0.0.1") {
						return fmt.Errorf("%s = %q, want a loopback address", k, m[k])
					}
				}
				env2 := &Env{Getenv: func(k string) string {
					if k == "WAQ_DEV_STATE" {
						return state
					}
					return ""
				}}
				if got := devSetting(env2, "nats_url"); got != m["nats_url"] {
					return fmt.Errorf("devSetting(nats_url) = %q", got)
				}
				return nil
			})
			// The console is served (its sign-in page, 401 until signed in)
			// only with the token.
			if m := readDevState(state); m != nil {
				resp, err := http.Get("http://" + m["http_addr"] + "/admin/ui/")
				if err != nil {
					t.Fatal(err)
				}
				page, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := map[bool]int{true: 401, false: 404}[console]; resp.StatusCode != want || console && !strings.Contains(string(page), "Sign in") {
					t.Errorf("console on %v: GET /admin/ui/ = %d, want %d: %.300s", console, resp.StatusCode, want, page)
				}
			}
			// waq doctor beside it needs no flags and no variables: the
			// simulator, its token, the number and its WABA come from the
			// state file, as NATS and Redis do, and the embedded NATS
			// server's monitoring endpoint, where it reads the sync setting.
			if mode == "redis-server" {
				dc, dout, derr := runCmd(t, map[string]string{"WAQ_DEV_STATE": state}, "", "doctor")
				for _, c := range []string{"graph", "token", "phone_number", "jetstream", "jetstream_sync", "redis"} {
					if !regexp.MustCompile(`(?m)^ok\s+` + c + ` `).MatchString(dout) {
						t.Errorf("doctor with no flags beside waq dev: no ok %s (exit %d, stderr %s):\n%s", c, dc, derr, dout)
					}
				}
				if dc != 0 {
					t.Errorf("doctor with no flags beside waq dev: exit %d, stderr %s:\n%s", dc, derr, dout)
				}
				dc, dout, derr = runCmd(t, map[string]string{"WAQ_DEV_STATE": state}, "", "doctor", "--json", "--template", "hello_world", "--language", "en_US")
				seen := map[string]string{}
				for _, line := range strings.Split(strings.TrimSpace(dout), "\n") {
					var r struct{ Check, Status, Detail string }
					if json.Unmarshal([]byte(line), &r) == nil {
						seen[r.Check] = r.Status + ": " + r.Detail
					}
				}
				for _, c := range []string{"graph", "token", "phone_number", "template", "redis"} {
					if !strings.HasPrefix(seen[c], "ok") {
						t.Errorf("doctor beside waq dev: %s = %q (exit %d, stderr %s, all %v)", c, seen[c], dc, derr, seen)
					}
				}
			}
			var code int
			select {
			case code = <-done:
			case <-time.After(90 * time.Second):
				t.Fatal("waq dev did not stop after its --duration")
			}
			stdout := out.String()
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errb.String(), stdout)
			}
			wantRedis := "redis-server 7"
			if mode == "in-process" {
				wantRedis = "in-process Redis-compatible server"
			}
			for _, want := range []string{
				wantRedis,
				"dlq list --reason window",
				"dlq stats",
				"dlq replay --reason window --as-template hello_world --language en_US",
				"/readyz",
				"doctor --template hello_world --language en_US",
				map[bool]string{false: "Console       off: start with WAQ_ADMIN_TOKEN set (16+ characters) to serve it at http://127.0.0.1:",
					true: "Console       http://127.0.0.1:"}[console],
				map[bool]string{false: "/admin/ui/ (sign in with the token)", true: "/admin/ui/ (sign in with $WAQ_ADMIN_TOKEN)"}[console],
				"final: ",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
			final := stdout[strings.LastIndex(stdout, "final: "):]
			for _, k := range []string{"published", "sent", "dlq_window", "dlq_template"} {
				if n := intField(final, k); n <= 0 {
					t.Errorf("final %s = %d, want some:\n%s", k, n, final)
				}
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("state file still there after the end: %v", err)
			}
			if m := regexp.MustCompile(`child process (\d+)`).FindStringSubmatch(stdout); m != nil {
				pid, _ := strconv.Atoi(m[1])
				if processAlive(pid) {
					t.Errorf("redis-server %d still runs", pid)
				}
			} else if mode == "redis-server" {
				t.Errorf("no redis-server pid printed:\n%s", stdout)
			}
		})
	}
}

func intField(line, key string) int {
	m := regexp.MustCompile(`\b` + key + `=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestDevStaleState: a state file whose process is gone is ignored, by the
// commands and by a new waq dev.
func TestDevStaleState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "waq-dev.json")
	env := &Env{Getenv: func(k string) string {
		if k == "WAQ_DEV_STATE" {
			return state
		}
		return ""
	}}
	// A pid that cannot be alive: beyond pid_max.
	os.WriteFile(state, []byte(`{"pid":"99999999","nats_url":"nats://127.0.0.1:1"}`), 0o600)
	if got := devSetting(env, "nats_url"); got != "" {
		t.Errorf("stale file: devSetting = %q, want empty", got)
	}
	os.WriteFile(state, []byte(fmt.Sprintf(`{"pid":"%d","nats_url":"nats://127.0.0.1:2"}`, os.Getpid())), 0o600)
	if got := devSetting(env, "nats_url"); got != "nats://127.0.0.1:2" {
		t.Errorf("live file: devSetting = %q", got)
	}
	code, _, stderr := runCmd(t, map[string]string{"WAQ_DEV_STATE": state}, "", "dev", "--no-tty", "--any-port", "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "another waq dev") {
		t.Errorf("second waq dev: code %d, %q", code, stderr)
	}
}
