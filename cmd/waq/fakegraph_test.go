package main

import (
	"strings"
	"testing"
)

func TestFakegraphBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fakegraph", "--strict"}, "--strict needs --limits"},
		{[]string{"fakegraph", "--latency", "-1s"}, "must not be negative"},
		{[]string{"fakegraph", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, stderr := runCmd(t, nil, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
