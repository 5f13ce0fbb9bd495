package conn

import "testing"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:hunter2@127.0.0.1:6379/0":                             "redis://:xxxxx@127.0.0.1:6379/0",
		"redis://alice:hunter2@h:6379":                                  "redis://alice:xxxxx@h:6379",
		"redis-sentinel://:p@s1,s2/0?master=m&sentinel_password=s3cret": "redis-sentinel://:xxxxx@s1,s2/0?master=m&sentinel_password=xxxxx",
		"redis-cluster://u:p@a:1,b:2":                                   "redis-cluster://u:xxxxx@a:1,b:2",
		"nats://s3cr3t-token@127.0.0.1:4222,nats://127.0.0.1:4223":      "nats://xxxxx@127.0.0.1:4222,nats://127.0.0.1:4223",
		"nats://127.0.0.1:4222":                                         "nats://127.0.0.1:4222",
		"not a url":                                                     "(a URL that does not parse)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
