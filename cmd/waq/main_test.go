package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
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

// startWorkerCmd runs `waq worker` in process with vars until the test
// ends (its stderr to stderr, or nowhere when nil); the test fails if it
// does not stop.
func startWorkerCmd(t *testing.T, vars map[string]string, stderr io.Writer) {
	t.Helper()
	if stderr == nil {
		stderr = io.Discard
	}
	state := t.TempDir() + "/none.json"
	env := &Env{Stdout: io.Discard, Stderr: stderr, Stdin: strings.NewReader(""), Getenv: func(k string) string {
		if k == "WAQ_DEV_STATE" {
			return state
		}
		return vars[k]
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, env, []string{"worker"}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runCmd(t, nil, "", "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
	if code, stdout, _ := runCmd(t, nil, "", "help"); code != 0 || !strings.Contains(stdout, "worker") {
		t.Errorf("help: code %d, %q", code, stdout)
	}
}
