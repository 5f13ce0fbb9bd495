package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
)

const appSecret = "webhook-app-secret"

// startWithWebhooks starts a worker serving /webhook and points the
// simulator's status webhooks at it, each delivered three times.
func startWithWebhooks(t *testing.T, e *env, copies int) *running {
	t.Helper()
	cfg := e.config()
	cfg.AppSecret, cfg.WebhookVerifyToken = appSecret, "verify-token"
	r := e.start(t, cfg)
	sc := e.fake.Scenario()
	sc.Webhooks = fakegraph.Webhooks{URL: r.url + "/webhook", AppSecret: appSecret, Statuses: []string{"sent", "delivered"}}
	if copies > 1 {
		sc.Webhooks.DuplicateRate, sc.Webhooks.Duplicates = 1, copies-1
	}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestWebhookFailureParksOnce: a job Meta accepted and then failed by
// webhook with 131047 ends parked as "window", exactly once, although the
// webhook is delivered three times; its delivery statuses are recorded.
func TestWebhookFailureParksOnce(t *testing.T) {
	e := setup(t)
	_, err := e.fake.AddRules(
		fakegraph.Rule{Match: fakegraph.Match{JobID: "async-window"}, Respond: fakegraph.Response{Async: &fakegraph.AsyncFailure{Error: fakegraph.Code(131047), After: []string{"sent"}}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := startWithWebhooks(t, e, 3)
	e.publish(t, textJob("async-window", "15551234567"), textJob("fine", "15557654321"))

	entry := e.waitParked(t, 20*time.Second, "async-window")
	if entry.Reason != "window" || entry.LastError == nil || *entry.LastError.Code != 131047 || entry.Job == nil || entry.To != "15551234567" {
		t.Errorf("entry = %+v last error %+v", entry, entry.LastError)
	}
	if !strings.Contains(entry.Problem, "webhook") || len(entry.Attempts) == 0 {
		t.Errorf("entry problem %q, attempts %+v", entry.Problem, entry.Attempts)
	}
	// The other job's delivery is recorded on it.
	testenv.Eventually(t, 10*time.Second, func() error {
		st, err := e.ledger.Load(context.Background(), "fine")
		if err != nil {
			return err
		}
		if st.Status != "delivered" {
			return fmt.Errorf("status %q", st.Status)
		}
		return nil
	})
	// Every copy of every webhook was delivered and answered.
	testenv.Eventually(t, 10*time.Second, func() error {
		ws := e.fake.Stats(false).Webhooks
		if ws.Pending != 0 || ws.Delivered < 9 {
			return fmt.Errorf("webhooks: %+v", ws)
		}
		return nil
	})
	// Three copies of each of four statuses reached /webhook; JetStream
	// kept one of each.
	waitMetric(t, r.url, `waq_webhook_received_total{result="stored"} 12`)
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="parked",status="failed"} 1`)
	// Past JetStream's duplicate window (here: another timestamp, so another
	// de-duplication id), the ledger still acts on one failure once.
	js, _ := e.fake.Job("async-window")
	postStatus(t, r.url, js.WAMIDs[0], "failed", "1764079999", `[{"code":131047}]`)
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="duplicate",status="failed"} 1`)
	st, _ := e.ledger.Load(context.Background(), "async-window")
	if st.Sent() || st.Parked != "window" {
		t.Errorf("ledger after the webhook failure = %+v", st)
	}
	if js, _ := e.fake.Job("async-window"); js.Sends != 1 {
		t.Errorf("%d sends, want 1", js.Sends)
	}
	page, _ := e.dlq.List(context.Background(), dlqFilter(), "", 10)
	if len(page.Entries) != 1 {
		t.Errorf("%d entries, want 1", len(page.Entries))
	}
}

// TestWebhook131000SendsAgainOnce: a 131000 reported by webhook sends the
// job again once, however often the webhook comes.
func TestWebhook131000SendsAgainOnce(t *testing.T) {
	e := setup(t)
	_, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "async-flaky"}, Times: 1,
		Respond: fakegraph.Response{Async: &fakegraph.AsyncFailure{Error: fakegraph.Code(131000)}}})
	if err != nil {
		t.Fatal(err)
	}
	r := startWithWebhooks(t, e, 3)
	e.publish(t, textJob("async-flaky", "15551234567"))
	testenv.Eventually(t, 20*time.Second, func() error {
		js, _ := e.fake.Job("async-flaky")
		if js.Accepted < 2 {
			st, _ := e.ledger.Load(context.Background(), "async-flaky")
			return fmt.Errorf("accepted %d times; ledger %+v; webhooks %+v; metrics:\n%s", js.Accepted, st, e.fake.Stats(false).Webhooks, grep(scrape(t, r.url), "waq_webhook"))
		}
		st, err := e.ledger.Load(context.Background(), "async-flaky")
		if err != nil {
			return err
		}
		if !st.Sent() || st.SentGen != 1 || !st.SentAs(js.WAMIDs[1]) {
			return fmt.Errorf("ledger %+v, simulator %v", st, js.WAMIDs)
		}
		return nil
	})
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="resent",status="failed"} 1`)
	e.streamEmpty(t, 10*time.Second)
	if js, _ := e.fake.Job("async-flaky"); js.Accepted != 2 {
		t.Errorf("accepted %d times, want 2 (the send and one resend)", js.Accepted)
	}
	h, _ := e.ledger.History(context.Background(), "async-flaky")
	var failedByWebhook int
	for _, a := range h {
		if a.Error == "reported by webhook" {
			failedByWebhook++
		}
	}
	if failedByWebhook != 1 {
		t.Errorf("history %+v", h)
	}
	if _, err := e.dlq.Get(context.Background(), "async-flaky"); err == nil {
		t.Error("a resent job is parked")
	}
}

// TestWebhookUnmatched: a status for a wamid this system never sent is
// counted and nothing else.
func TestWebhookUnmatched(t *testing.T) {
	e := setup(t)
	r := startWithWebhooks(t, e, 1)
	body := postStatus(t, r.url, "wamid.unknown", "failed", "1764072000", `[{"code":131026}]`)
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="unmatched",status="failed"} 1`)
	if page, _ := e.dlq.List(context.Background(), dlqFilter(), "", 10); len(page.Entries) != 0 {
		t.Errorf("an unmatched status parked something: %+v", page.Entries[0])
	}
	// A bad signature is refused on the worker's listener too.
	req, _ := http.NewRequest(http.MethodPost, r.url+"/webhook", strings.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", fakegraph.Sign("wrong", []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("bad signature: %d", resp.StatusCode)
	}
}

// postStatus posts one signed status to the worker's /webhook and returns
// the body.
func postStatus(t *testing.T, url, wamid, status, ts, errs string) string {
	t.Helper()
	return postStatusJSON(t, url, `{"id":"`+wamid+`","status":"`+status+`","timestamp":"`+ts+`","errors":`+errs+`}`)
}

// postStatusJSON posts one signed webhook whose statuses array holds the
// status object given as JSON, and returns the body.
func postStatusJSON(t *testing.T, url, status string) string {
	t.Helper()
	body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"metadata":{"phone_number_id":"` + pn +
		`"},"statuses":[` + status + `]},"field":"messages"}]}]}`
	req, _ := http.NewRequest(http.MethodPost, url+"/webhook", strings.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", fakegraph.Sign(appSecret, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("post status: %d", resp.StatusCode)
	}
	return body
}

func waitMetric(t *testing.T, url, line string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() error {
		m := scrape(t, url)
		if !strings.Contains(m, line) {
			// The series' name: before its labels, or its value.
			name := strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]
			return errors.New("no " + line + " in:\n" + grep(m, name))
		}
		return nil
	})
}

func dlqFilter() deadletter.Filter { return deadletter.Filter{} }

// TestWebhookOrderAndContradiction: statuses out of order keep the latest
// state, and a failed after delivered is recorded, not acted on.
func TestWebhookOrderAndContradiction(t *testing.T) {
	e := setup(t)
	r := startWithWebhooks(t, e, 1)
	sc := e.fake.Scenario()
	sc.Webhooks.URL = "" // this test posts the statuses itself
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	e.publish(t, textJob("ordered", "15551234567"))
	e.waitSent(t, 20*time.Second, "ordered")
	fj, _ := e.fake.Job("ordered")
	wamid := fj.WAMIDs[0]
	postStatus(t, r.url, wamid, "delivered", "1764072002", `[]`)
	testenv.Eventually(t, 10*time.Second, func() error {
		if st, _ := e.ledger.Load(context.Background(), "ordered"); st.Status != "delivered" {
			return errors.New("delivered not recorded yet")
		}
		return nil
	})
	// "sent" arrives after "delivered": recorded as a duplicate, the job
	// stays delivered.
	postStatus(t, r.url, wamid, "sent", "1764072001", `[]`)
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="duplicate",status="sent"} 1`)
	postStatus(t, r.url, wamid, "failed", "1764072003", `[{"code":131026,"title":"Message undeliverable"}]`)
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="after_delivered",status="failed"} 1`)
	st, _ := e.ledger.Load(context.Background(), "ordered")
	if !st.Sent() || st.Status != "failed" {
		t.Errorf("ledger = %+v; want sent, with the failed status recorded", st)
	}
	if _, err := e.dlq.Get(context.Background(), "ordered"); err == nil {
		t.Error("a delivered job was parked by a later failed status")
	}
}
