package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waqhq/waq/internal/testenv"
)

// TestWorkerRefusesToStart: every setting that is missing or malformed stops
// the worker at start with one line naming it.
func TestWorkerRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	badPolicy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(badPolicy, []byte("rules:\n  - codes: [131000]\n    action: retyr\n"), 0o600)
	badAPIPolicy := filepath.Join(dir, "api-policy.yaml")
	os.WriteFile(badAPIPolicy, []byte("defaults:\n  api: marketing\n"), 0o600)
	badNumbers := filepath.Join(dir, "numbers.yaml")
	os.WriteFile(badNumbers, []byte("phone_numbers:\n  - phone_number_id: \"1\"\n    waba_id: \"2\"\n    colour: blue\n"), 0o600)
	n := testenv.StartNATS(t)
	base := map[string]string{"WAQ_ACCESS_TOKEN": "t", "WAQ_NATS_URL": n.URL, "WAQ_REDIS_URL": "redis://127.0.0.1:1/0", "WAQ_HTTP_ADDR": "127.0.0.1:0"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		vars map[string]string
		args []string
		want string
	}{
		{with("WAQ_ACCESS_TOKEN", ""), nil, "WAQ_ACCESS_TOKEN: not set"},
		{with("WAQ_CONCURRENCY", "lots"), nil, `WAQ_CONCURRENCY: "lots" is not a whole number`},
		{with("WAQ_CONCURRENCY", "-3"), nil, "WAQ_CONCURRENCY: -3: want 1 to 65536"},
		{with("WAQ_DLQ_RETENTION", "30 days"), nil, "WAQ_DLQ_RETENTION"},
		{with("WAQ_NATS_URL", "localhost:4222"), nil, "WAQ_NATS_URL"},
		{with("WAQ_REDIS_URL", "mysql://x"), nil, "WAQ_REDIS_URL"},
		{with("WAQ_GRAPH_URL", "graph.facebook.com"), nil, "WAQ_GRAPH_URL"},
		{with("WAQ_GRAPH_VERSION", "25"), nil, "WAQ_GRAPH_VERSION"},
		{with("WAQ_STREAM_REPLICAS", "4"), nil, ""},
		{with("WAQ_STREAM_REPLICAS", "7"), nil, "WAQ_STREAM_REPLICAS: 7"},
		{with("WAQ_STREAM", "has space"), nil, "WAQ_STREAM"},
		{with("WAQ_BODIES_STREAM", "WAQ_SEND"), nil, "WAQ_BODIES_STREAM"},
		{with("WAQ_BODIES_STREAM", "a.b"), nil, "WAQ_BODIES_STREAM"},
		{with("WAQ_LEDGER_BUCKETS", "-3"), nil, "WAQ_LEDGER_BUCKETS: -3"},
		{with("WAQ_LEDGER_BUCKETS", "many"), nil, "WAQ_LEDGER_BUCKETS"},
		{with("WAQ_LEDGER_BUCKETS", "99999999999"), nil, "WAQ_LEDGER_BUCKETS"},
		{with("WAQ_LOG_FORMAT", "xml"), nil, "WAQ_LOG_FORMAT"},
		{with("WAQ_LOW_QUALITY_MARKETING", "maybe"), nil, `WAQ_LOW_QUALITY_MARKETING: "maybe": want hold, slow or send`},
		{with("WAQ_HOLD_RECHECK", "25h"), nil, "WAQ_HOLD_RECHECK: 25h0m0s is longer than WAQ_TEMPLATE_HOLD_MAX"},
		{with("WAQ_TEMPLATE_RETRY", "1ms"), nil, "WAQ_TEMPLATE_RETRY: 1ms is too short"},
		{with("WAQ_TEMPLATE_HOLD_MAX", "soon"), nil, "WAQ_TEMPLATE_HOLD_MAX"},
		{with("WAQ_HTTP_ADDR", "8080"), nil, "WAQ_HTTP_ADDR"},
		{with("WAQ_POLICY_FILE", filepath.Join(dir, "nope.yaml")), nil, "WAQ_POLICY_FILE"},
		{with("WAQ_POLICY_FILE", badPolicy), nil, "policy.yaml:3"},
		{with("WAQ_POLICY_FILE", badAPIPolicy), nil, `api-policy.yaml:2: defaults.api: "marketing" is not one of messages, marketing_messages`},
		{with("WAQ_PHONE_NUMBERS_FILE", badNumbers), nil, "numbers.yaml:4"},
		{with("WAQ_APP_SECRET", "s"), nil, "WAQ_WEBHOOK_VERIFY_TOKEN"},
		{with("WAQ_ADMIN_TOKEN", "short"), nil, "WAQ_ADMIN_TOKEN"},
		{with("WAQ_ACK_WAIT", "5s"), nil, "WAQ_ACK_WAIT"},
		{base, []string{"--concurrency", "x"}, `WAQ_CONCURRENCY: "x"`},
		{base, nil, "WAQ_REDIS_URL: redis at redis://127.0.0.1:1/0 does not answer"},
		{with("WAQ_NATS_URL", "nats://127.0.0.1:1"), nil, "WAQ_NATS_URL: nats nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		if tt.want == "" {
			continue // a valid value: covered by the worker's own tests
		}
		code, _, stderr := runCmd(t, tt.vars, "", append([]string{"worker"}, tt.args...)...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v %v: code %d, stderr %q; want %q", tt.vars, tt.args, code, stderr, tt.want)
		}
		if tt.args == nil && len(lines) != 1 {
			t.Errorf("%q: %d lines, want one: %q", tt.want, len(lines), stderr)
		}
		if strings.Contains(stderr, "panic") {
			t.Errorf("panic: %s", stderr)
		}
	}
}
