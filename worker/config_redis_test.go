package worker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/waqhq/waq/worker"
)

// TestConfigRedis checks the Redis URL forms and WAQ_REDIS_WAIT_REPLICAS at
// start: each problem is one error naming the setting, never a password.
func TestConfigRedis(t *testing.T) {
	for _, tt := range []struct {
		url  string
		wait string
		want string // "" means valid
	}{
		{"redis://127.0.0.1:6379/0", "", ""},
		{"redis-sentinel://s1:26379,s2:26379,s3:26379/0?master=mymaster", "1", ""},
		{"redis-cluster://n1:7000,n2:7001,n3:7002", "", ""},
		{"redis-cluster://n1:7000,n2:7001,n3:7002", "1", "WAQ_REDIS_WAIT_REPLICAS: not supported with redis-cluster://"},
		{"redis://127.0.0.1:6379/0", "-1", "WAQ_REDIS_WAIT_REPLICAS: -1: want 0 to 16"},
		{"redis://127.0.0.1:6379/0", "two", `WAQ_REDIS_WAIT_REPLICAS: "two" is not a whole number`},
		{"redis-sentinel://:hunter2@s1:26379,s2", "", "WAQ_REDIS_URL: \"redis-sentinel://:xxxxx@s1:26379,s2\": redis-sentinel:// needs ?master=NAME"},
		{"redis-sentinel://s1?master=m&sentinel_password=hunter2&x=1", "", `unknown parameter "x"`},
		{"redis-cluster://u:hunter2@n1:7000,n2:7001/2", "", "a Redis Cluster has database 0 only"},
		{"mysql://x", "", "WAQ_REDIS_URL"},
	} {
		err := configError(worker.Config{AccessToken: "t"}, map[string]string{"WAQ_REDIS_URL": tt.url, "WAQ_REDIS_WAIT_REPLICAS": tt.wait})
		checkConfigError(t, fmt.Sprintf("%s (wait %q)", tt.url, tt.wait), err, tt.want)
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows a password: %v", err)
		}
	}
}

// configError reads vars into cfg as the worker does at start (FromEnv,
// then ApplyDefaults and Validate) and returns the first error.
func configError(cfg worker.Config, vars map[string]string) error {
	err := cfg.FromEnv(func(k string) string { return vars[k] })
	if err == nil {
		cfg.ApplyDefaults()
		err = cfg.Validate()
	}
	return err
}

// checkConfigError fails the test when err is not what want says: "" means
// valid, anything else a substring of the error.
func checkConfigError(t *testing.T, label string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v", label, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v, want %q", label, err, want)
	}
}

func TestSettingNames(t *testing.T) {
	names := worker.SettingNames()
	for _, want := range []string{"WAQ_NATS_URL", "WAQ_REDIS_URL", "WAQ_REDIS_WAIT_REPLICAS", "WAQ_SHUTDOWN_TIMEOUT", "WAQ_PHONE_NUMBERS_FILE"} {
		if !slices.Contains(names, want) {
			t.Errorf("SettingNames lacks %s: %v", want, names)
		}
	}
}
