package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFakegraphBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fakegraph", "--strict"}, "--strict needs --limits"},
		{[]string{"fakegraph", "--fast", "--limits"}, "leave out --limits"},
		{[]string{"fakegraph", "--fast", "--webhook-url", "http://127.0.0.1:1/"}, "leave out --limits and --webhook-url"},
		{[]string{"fakegraph", "--latency", "-1s"}, "must not be negative"},
		{[]string{"fakegraph", "extra"}, `unexpected argument "extra"`},
	} {
		code, _, stderr := runCmd(t, nil, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// waq fakegraph --fast serves the lean mode: a scenario rule that fails
// every send does not apply.
func TestFakegraphFast(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(sc, []byte("rules:\n  - respond: {error: 131000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	env := &Env{Stdout: pw, Stderr: io.Discard, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env, []string{"fakegraph", "--fast", "--addr", "127.0.0.1:0", "--scenario", sc})
		pw.Close()
	}()
	defer func() {
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit code %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("waq fakegraph did not stop")
		}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "fakegraph listening on "))
	req, _ := http.NewRequest(http.MethodPost, url+"/v27.0/106540352242922/messages",
		strings.NewReader(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`))
	req.Header.Set("Authorization", "Bearer t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"message_status":"accepted"`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}
