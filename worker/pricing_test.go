package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
)

// TestMessageStatusAndPricing: a send answered held_for_quality_assessment
// is recorded so on the job and counted; the pricing of its status
// webhooks (each delivered three times) is recorded and counted once per
// message; system messages are counted by type, not treated as errors.
func TestMessageStatusAndPricing(t *testing.T) {
	e := setup(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "held"}, Respond: fakegraph.Response{MessageStatus: fakegraph.StatusHeld}}); err != nil {
		t.Fatal(err)
	}
	r := startWithWebhooks(t, e, 3)
	e.publish(t, templateJob("held", "15551234567", "promo"), textJob("plain", "15557654321"))
	e.waitSent(t, 20*time.Second, "held", "plain")
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range []string{"held", "plain"} {
			st, err := e.ledger.Load(context.Background(), id)
			if err != nil {
				return err
			}
			if st.Pricing == nil || st.Status != "delivered" {
				return fmt.Errorf("%s: status %q, pricing %v", id, st.Status, st.Pricing)
			}
		}
		return nil
	})
	held, _ := e.ledger.Load(context.Background(), "held")
	plain, _ := e.ledger.Load(context.Background(), "plain")
	if held.MessageStatus != "held_for_quality_assessment" || plain.MessageStatus != "accepted" {
		t.Errorf("message status: held %q, plain %q", held.MessageStatus, plain.MessageStatus)
	}
	if held.Pricing.PricingModel != "PMP" || held.Pricing.Category == "" || held.Pricing.Type == "" {
		t.Errorf("pricing %+v", *held.Pricing)
	}
	waitMetric(t, r.url, `waq_message_status_total{status="held_for_quality_assessment"} 1`)
	waitMetric(t, r.url, `waq_message_status_total{status="accepted"} 1`)
	// Two messages, two statuses each, three copies of each: two counted.
	testenv.Eventually(t, 15*time.Second, func() error {
		n := sumMetric(scrape(t, r.url), "waq_pricing_messages_total{")
		if n != 2 {
			return fmt.Errorf("waq_pricing_messages_total sums to %v, want 2", n)
		}
		return nil
	})

	for _, system := range []string{
		`{"body":"User A changed","user_id":"US.99999999999999999999","type":"user_changed_user_id"}`,
		`{"body":"User A changed from 1 to 2","wa_id":"16505551234","type":"user_changed_number"}`,
		`{"type":"user_went_to_the_moon"}`, `"not an object"`, `null`,
	} {
		body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"` + pn +
			`"},"messages":[{"from":"16505551234","id":"wamid.sys","timestamp":"1739321024","type":"system","system":` + system + `}]},"field":"messages"}]}]}`
		req, _ := http.NewRequest(http.MethodPost, r.url+"/webhook", strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", fakegraph.Sign(appSecret, []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("system message %s: %d", system, resp.StatusCode)
		}
	}
	waitMetric(t, r.url, `waq_webhook_system_messages_total{type="user_changed_user_id"} 1`)
	waitMetric(t, r.url, `waq_webhook_system_messages_total{type="user_changed_number"} 1`)
	waitMetric(t, r.url, `waq_webhook_system_messages_total{type="other"} 3`)
	if m := scrape(t, r.url); strings.Contains(m, `result="unparsed"`) {
		t.Errorf("a system message was taken as an unreadable body:\n%s", grep(m, "waq_webhook_received_total"))
	}
	if strings.Contains(e.logs.String(), "US.99999999999999999999") {
		t.Error("a business-scoped user ID appears in the logs")
	}
}

// sumMetric adds the values of the lines that start with prefix.
func sumMetric(text, prefix string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			sum += v
		}
	}
	return sum
}

// TestFailedStatusPricing: a failed status's pricing (billable false, as
// Meta sends it) is recorded on the job and counted once per message, like
// a delivered one's: not again when the failed webhook comes twice, not
// when an earlier status of the message already gave pricing (the first is
// kept). A pricing of another shape is dropped and the failure is still
// acted on.
func TestFailedStatusPricing(t *testing.T) {
	e := setup(t)
	cfg := e.config()
	cfg.AppSecret, cfg.WebhookVerifyToken = appSecret, "verify-token"
	r := e.start(t, cfg) // the simulator sends no webhooks: the test posts them
	ids := []string{"failed-priced", "sent-then-failed", "failed-bad-pricing", "failed-bad-pricing-2", "failed-no-pricing"}
	for i, id := range ids {
		e.publish(t, textJob(id, fmt.Sprintf("155512345%02d", i)))
	}
	e.waitSent(t, 20*time.Second, ids...)
	wamid := map[string]string{}
	for _, id := range ids {
		st, err := e.ledger.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		js, ok := e.fake.Job(id)
		if !ok || len(js.WAMIDs) != 1 || !st.SentAs(js.WAMIDs[0]) {
			t.Fatalf("%s: simulator %+v, ledger %+v", id, js, st)
		}
		wamid[id] = js.WAMIDs[0]
	}
	status := func(id, status, pricing string) string {
		s := `{"id":"` + wamid[id] + `","status":"` + status + `","timestamp":"1764072000","recipient_id":"15551234567"`
		if status == "failed" {
			s += `,"errors":[{"code":131026,"title":"Message undeliverable"}]`
		}
		if pricing != "" {
			s += `,"pricing":` + pricing
		}
		return s + "}"
	}
	const (
		free    = `{"billable":false,"pricing_model":"PMP","category":"marketing","type":"regular"}`
		charged = `{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}`
	)
	// Twice: the same webhook again (JetStream's de-duplication drops it),
	// and a second failed status of the message with another timestamp,
	// which reaches the worker and is a duplicate there.
	postStatusJSON(t, r.url, status("failed-priced", "failed", free))
	postStatusJSON(t, r.url, status("failed-priced", "failed", free))
	e.waitParked(t, 20*time.Second, "failed-priced")
	postStatusJSON(t, r.url, strings.Replace(status("failed-priced", "failed", free), "1764072000", "1764072001", 1))
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="duplicate",status="failed"} 1`)
	// The sent status's pricing first, then the failed one's.
	postStatusJSON(t, r.url, status("sent-then-failed", "sent", charged))
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="matched",status="sent"} 1`)
	postStatusJSON(t, r.url, status("sent-then-failed", "failed", free))
	// Not an object of the pricing's shape.
	postStatusJSON(t, r.url, status("failed-bad-pricing", "failed", `"free"`))
	postStatusJSON(t, r.url, status("failed-bad-pricing-2", "failed", `{"billable":"no","category":7}`))
	postStatusJSON(t, r.url, status("failed-no-pricing", "failed", ""))

	for _, id := range ids {
		e.waitParked(t, 20*time.Second, id)
	}
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="parked",status="failed"} 5`)
	want := map[string]*struct {
		billable bool
		category string
	}{
		"failed-priced":    {false, "marketing"},
		"sent-then-failed": {true, "utility"},
	}
	for _, id := range ids {
		st, err := e.ledger.Load(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		w := want[id]
		switch {
		case w == nil && st.Pricing != nil:
			t.Errorf("%s: pricing %+v, want none", id, *st.Pricing)
		case w != nil && st.Pricing == nil:
			t.Errorf("%s: no pricing recorded", id)
		case w != nil && (st.Pricing.Billable != w.billable || st.Pricing.Category != w.category || st.Pricing.PricingModel != "PMP" || st.Pricing.Type != "regular"):
			t.Errorf("%s: pricing %+v, want billable %v category %s PMP regular", id, *st.Pricing, w.billable, w.category)
		}
	}
	m := scrape(t, r.url)
	for _, line := range []string{
		`waq_pricing_messages_total{billable="false",category="marketing",pricing_model="PMP",type="regular"} 1`,
		`waq_pricing_messages_total{billable="true",category="utility",pricing_model="PMP",type="regular"} 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("no %s in:\n%s", line, grep(m, "waq_pricing_messages_total"))
		}
	}
	if n := sumMetric(m, "waq_pricing_messages_total{"); n != 2 {
		t.Errorf("waq_pricing_messages_total sums to %v, want 2 (two messages with pricing):\n%s", n, grep(m, "waq_pricing_messages_total"))
	}
}
