package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
)

// TestOpsShareWorkerConnections: the admin API and the console use the
// worker's own Redis client and NATS connection (a replay through the admin
// API opens no second one), and nothing they used stays open once the
// worker has stopped.
func TestOpsShareWorkerConnections(t *testing.T) {
	t.Parallel()
	// Entries to replay, parked the way the worker parks.
	f := dlqSetup(t)
	n := f.nats
	rdb := f.redis.Client(t)
	ctx := context.Background()
	redisClients := func() int {
		list, err := rdb.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Split(strings.TrimSpace(list), "\n"))
	}
	// The test's own connections, open before and after the worker.
	natsBefore, redisBefore := n.Server.NumClients(), redisClients()

	const tok = "ops-share-admin-token-0123456789"
	port := testenv.FreePort(t)
	vars := map[string]string{"WAQ_ACCESS_TOKEN": "t", "WAQ_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(port), "WAQ_ADMIN_TOKEN": tok,
		"WAQ_LOG_LEVEL": "error", "WAQ_GRAPH_URL": "http://127.0.0.1:1"}
	for k, v := range f.vars {
		vars[k] = v
	}
	env := &Env{Stdout: io.Discard, Stderr: io.Discard, Stdin: strings.NewReader(""), Getenv: func(k string) string {
		if k == "WAQ_DEV_STATE" {
			return t.TempDir() + "/none.json"
		}
		return vars[k]
	}}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- run(wctx, env, []string{"worker"}) }()
	stopped := false
	defer func() {
		stop()
		if stopped {
			return
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	call := func(method, path, body string) (int, string, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), nil
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		code, body, err := call("GET", "/admin/dlq?reason=window", "")
		if err != nil || code != 200 {
			return fmt.Errorf("admin list: %d %q %v", code, body, err)
		}
		return nil
	})
	if code, body, err := call("POST", "/admin/dlq/replay", `{"ids":["w1"]}`); err != nil || code != 200 || !strings.Contains(body, `"w1"`) {
		t.Fatalf("admin replay: %d %q %v", code, body, err)
	}
	if code, _, err := call("GET", "/admin/ui/", ""); err != nil || code >= 500 || code == 404 {
		t.Fatalf("console: %d %v", code, err)
	}
	// The worker's one NATS connection beside the test's; another would be
	// the admin API's or the console's producer.
	if got := n.Server.NumClients() - natsBefore; got != 1 {
		t.Errorf("NATS connections of the worker with the admin API after a replay: %d, want 1", got)
	}

	stop()
	stopped = true
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("worker exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := n.Server.NumClients() - natsBefore; got != 0 {
			return fmt.Errorf("%d NATS connections left open after the worker stopped", got)
		}
		if got := redisClients() - redisBefore; got != 0 {
			return fmt.Errorf("%d Redis connections left open after the worker stopped", got)
		}
		return nil
	})
}
