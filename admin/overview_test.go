package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waqhq/waq/admin"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/telemetry"
)

// TestOverview: GET /admin/overview answers two workers' counts summed
// (package fleet), with the console's sums; bad parameters are 400, no
// token 401, Redis down 503.
func TestOverview(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	h := admin.New(admin.Options{Token: token, Store: deadletter.New(rdb, deadletter.Options{}), Fleet: fleet.NewReader(rdb, "", nil),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	for i, id := range []string{"w-1", "w-2"} {
		reg := prometheus.NewRegistry()
		m := telemetry.NewMetrics(reg)
		m.Sends.WithLabelValues("sent", "pn").Add(float64(10 * (i + 1)))
		m.Sends.WithLabelValues("failed", "pn").Add(2)
		m.Retries.WithLabelValues("131000").Add(2)
		m.Sends.WithLabelValues("throttled", "pn").Add(1)
		m.Throttled.WithLabelValues("number").Add(1)
		m.Throttled.WithLabelValues("pace").Add(3)
		m.Parked.WithLabelValues("window").Add(1)
		m.InFlight.Set(1)
		cons := fleet.Consumer{Pending: 5, AckPending: 9, At: time.Now().Add(-time.Duration(i) * time.Second)}
		p := fleet.NewPublisher(rdb, reg, fleet.PublisherOptions{Worker: id, Holding: func() int { return 3 }, Consumer: func() fleet.Consumer { return cons }})
		if err := p.Publish(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	get := func(q, tok string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/admin/overview"+q, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return res.StatusCode, body
	}
	code, body := get("", token)
	tot, _ := body["total"].(map[string]any)
	if code != 200 || tot["sent"] != 30.0 || tot["failed"] != 4.0 || tot["retried"] != 4.0 || tot["rate_limited"] != 2.0 ||
		body["attempts"] != 34.0 || body["throttled_total"] != 8.0 || body["parked_total"] != 2.0 ||
		body["pending"] != 5.0 || body["ack_pending"] != 9.0 || body["holding"] != 6.0 || body["in_flight"] != 2.0 || body["waiting"] != 3.0 {
		t.Errorf("overview: %d %v", code, body)
	}
	if ws, _ := body["workers"].([]any); len(ws) != 2 {
		t.Errorf("workers %v", body["workers"])
	}
	if ms, _ := body["minutes"].([]any); len(ms) != 60 {
		t.Errorf("%d minutes, want 60", len(ms))
	}
	if code, body := get("?minutes=5", token); code != 200 || len(body["minutes"].([]any)) != 5 {
		t.Errorf("minutes=5: %d", code)
	}
	for _, q := range []string{"?minutes=0", "?minutes=121", "?minutes=x", "?minutes=5&minutes=6", "?minutes=-1", "?reason=window"} {
		if code, body := get(q, token); code != 400 || body["error"] == "" {
			t.Errorf("%s: %d %v", q, code, body)
		}
	}
	if code, _ := get("", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := get("", "wrong-token-wrong-token"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	r.Stop()
	if code, body := get("", token); code != 503 || body["error"] == "" {
		t.Errorf("Redis down: %d %v", code, body)
	}
}

// TestOverviewOff: a worker without a fleet reader says so (503).
func TestOverviewOff(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(admin.New(admin.Options{Token: token, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/admin/overview", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Errorf("no reader: %d", res.StatusCode)
	}
}
