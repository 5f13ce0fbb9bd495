package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCmd runs a command line in process with the given environment.
func runCmd(t *testing.T, vars map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin), Getenv: func(k string) string {
		if k == "WAQ_DEV_STATE" {
			if v, ok := vars[k]; ok {
				return v
			}
			return t.TempDir() + "/none.json"
		}
		return vars[k]
	}}
	code = run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runCmd(t, nil, "", "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCmd(t, nil, "", "help"); code != 0 || !strings.Contains(stderr, "worker") {
		t.Errorf("help: code %d, %q", code, stderr)
	}
}
