package worker

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

// TestSettingsDefaults: Settings gives each setting's default as a user
// writes it, and `waq worker -h` (BindFlags) shows it with the kind of
// value the flag takes.
func TestSettingsDefaults(t *testing.T) {
	want := map[string]string{
		"WAQ_NATS_URL": "nats://127.0.0.1:4222", "WAQ_CONCURRENCY": "128", "WAQ_ACK_WAIT": "1m",
		"WAQ_DLQ_RETENTION": "720h", "WAQ_SHUTDOWN_TIMEOUT": "25s", "WAQ_PAUSE_PARK_AFTER": "1h",
		"WAQ_ACCESS_TOKEN": "", "WAQ_PPROF": "false", "WAQ_STREAM": "WAQ_SEND",
	}
	got := map[string]string{}
	for _, s := range Settings() {
		got[s.Env] = s.Default
	}
	if len(got) != len(SettingNames()) {
		t.Fatalf("Settings has %d entries, SettingNames %d", len(got), len(SettingNames()))
	}
	for env, w := range want {
		if g, ok := got[env]; !ok || g != w {
			t.Errorf("%s: default %q, want %q", env, g, w)
		}
	}

	var c Config
	fs := flag.NewFlagSet("waq worker", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	c.BindFlags(fs)
	fs.PrintDefaults()
	help := out.String()
	for _, line := range []string{
		"-concurrency number",
		"($WAQ_CONCURRENCY, a whole number; default 128)",
		"-ack-wait duration",
		"($WAQ_ACK_WAIT, a duration like 30s; default 1m)",
		"($WAQ_REDIS_URL; default redis://127.0.0.1:6379/0)",
	} {
		if !strings.Contains(help, line) {
			t.Errorf("waq worker -h lacks %q:\n%s", line, help)
		}
	}
	if strings.Contains(help, "($WAQ_ACCESS_TOKEN; default") {
		t.Errorf("a setting without a default shows one:\n%s", help)
	}
	// The flags stay unset, so FromEnv still reads the variables.
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.FromEnv(func(k string) string { return map[string]string{"WAQ_CONCURRENCY": "7"}[k] }); err != nil || c.Concurrency != 7 {
		t.Errorf("FromEnv after BindFlags: concurrency %d, %v; want 7", c.Concurrency, err)
	}
}
