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
