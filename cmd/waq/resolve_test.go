package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestResolveOrder: flag, then WAQ_*, then a running `waq dev`, then the
// default; a state file that is missing, does not parse or belongs to a
// process that is gone counts as no `waq dev`.
func TestResolveOrder(t *testing.T) {
	live := fmt.Sprintf(`{"pid":"%d","nats_url":"nats://dev:1","redis_url":"redis://dev:2/0","stream":"DEV_STREAM","graph_url":"http://dev:3"}`, os.Getpid())
	cases := []struct {
		name  string
		s     setting
		flag  string
		env   string // the setting's WAQ_* variable
		state string // the dev state file; "" for none
		want  string
	}{
		{"flag wins", natsSetting, "nats://flag:1", "nats://env:1", live, "nats://flag:1"},
		{"env before dev", natsSetting, "", "nats://env:1", live, "nats://env:1"},
		{"dev before default", natsSetting, "", "", live, "nats://dev:1"},
		{"default", natsSetting, "", "", "", "nats://127.0.0.1:4222"},
		{"redis from dev", redisSetting, "", "", live, "redis://dev:2/0"},
		{"redis default", redisSetting, "", "", "", "redis://127.0.0.1:6379/0"},
		{"stream from dev", streamSetting, "", "", live, "DEV_STREAM"},
		{"stream env", streamSetting, "", "MINE", live, "MINE"},
		{"stream default", streamSetting, "", "", "", "WAQ_SEND"},
		{"graph from dev", graphSetting, "", "", live, "http://dev:3"},
		{"key prefix: no dev key", keyPrefixSetting, "", "", live, "waq"},
		{"key prefix env", keyPrefixSetting, "", "tenant1", live, "tenant1"},
		// Bad values: each falls through to the next source.
		{"empty flag is no flag", redisSetting, "", "redis://env:9/0", "", "redis://env:9/0"},
		{"state of a dead process", natsSetting, "", "", `{"pid":"99999999","nats_url":"nats://stale:1"}`, "nats://127.0.0.1:4222"},
		{"state without pid", natsSetting, "", "", `{"nats_url":"nats://nopid:1"}`, "nats://127.0.0.1:4222"},
		{"state with pid 0", natsSetting, "", "", `{"pid":"0","nats_url":"nats://zero:1"}`, "nats://127.0.0.1:4222"},
		{"state with negative pid", natsSetting, "", "", `{"pid":"-1","nats_url":"nats://neg:1"}`, "nats://127.0.0.1:4222"},
		{"state with pid not a number", natsSetting, "", "", `{"pid":"me","nats_url":"nats://nan:1"}`, "nats://127.0.0.1:4222"},
		{"state not JSON", natsSetting, "", "", `nats_url=nats://x:1`, "nats://127.0.0.1:4222"},
		{"state with non-string values", natsSetting, "", "", fmt.Sprintf(`{"pid":%d,"nats_url":"nats://num:1"}`, os.Getpid()), "nats://127.0.0.1:4222"},
		{"state with the key empty", natsSetting, "", "", fmt.Sprintf(`{"pid":"%d","nats_url":""}`, os.Getpid()), "nats://127.0.0.1:4222"},
		{"state without the key", redisSetting, "", "", fmt.Sprintf(`{"pid":"%d"}`, os.Getpid()), "redis://127.0.0.1:6379/0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "waq-dev.json")
			if tc.state != "" {
				if err := os.WriteFile(state, []byte(tc.state), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			vars := map[string]string{"WAQ_DEV_STATE": state, tc.s.env: tc.env}
			env := &Env{Getenv: func(k string) string { return vars[k] }}
			if got := resolve(env, tc.s, tc.flag); got != tc.want {
				t.Errorf("resolve(%s, flag %q) = %q, want %q", tc.s.env, tc.flag, got, tc.want)
			}
		})
	}
}
