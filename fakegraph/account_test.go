package fakegraph

import (
	"context"
	"encoding/json"
	"testing"
)

// accountHook is an account webhook as Meta documents it (the fields waq
// reads), decoded independently of waq's parser.
type accountHook struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Time    int64  `json:"time"`
		Changes []struct {
			Field string          `json:"field"`
			Value json.RawMessage `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

func TestAccountWebhooks(t *testing.T) {
	t.Parallel()
	var got [][]byte
	rc := newReceiver(t, 0)
	e := setup(t, Config{Scenario: &Scenario{Webhooks: hooksScenario(rc.ts.URL),
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, WABAID: "555", DisplayPhoneNumber: "+1 555-010-0001"}},
		Templates:    []Template{{Name: "promo", Language: "en_US", Category: "MARKETING", WABAID: "555"}}}})
	ctx := context.Background()

	// Paused over the control API: the webhook says so, and a send fails
	// with 132015 as at Meta.
	if err := e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{Status: "PAUSED", Title: "FIRST_PAUSE", Description: "paused for 3 hours"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.send(t, "p1", tmpl(testTo, "promo", "en_US", 0))
	apiError(t, err, 132015)
	if err := e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{Quality: "RED"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{Status: "APPROVED"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(t, "p2", tmpl(testTo, "promo", "en_US", 0)); err != nil {
		t.Errorf("approved again: %v", err)
	}
	if err := e.ctl.UpdateNumber(ctx, testPhone, NumberUpdate{Event: "FLAGGED", CurrentLimit: "TIER_10K"}); err != nil {
		t.Fatal(err)
	}
	if p := e.sim.snap.Load().phones[testPhone]; p.QualityRating != "RED" {
		t.Errorf("quality rating after FLAGGED: %s", p.QualityRating)
	}
	if err := e.ctl.UpdateAccount(ctx, "555", AccountUpdate{Event: "ACCOUNT_RESTRICTION",
		Restrictions: []Restriction{{Type: "RESTRICTED_BIZ_INITIATED_MESSAGING", Expiration: "2026-12-12T07:09:27+0000"}}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.send(t, "p3", tmpl(testTo, "promo", "en_US", 0))
	apiError(t, err, 131031)
	if err := e.ctl.UpdateAccount(ctx, "555", AccountUpdate{Event: "ACCOUNT_RESTRICTION"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(t, "p4", tmpl(testTo, "promo", "en_US", 0)); err != nil {
		t.Errorf("restriction lifted: %v", err)
	}

	eventually(t, "six account webhooks", func() bool {
		n := 0
		for _, h := range rc.got() {
			if h.Entry[0].Changes[0].Field != "messages" {
				n++
			}
		}
		return n == 6
	})
	rc.check(t)
	rc.mu.Lock()
	got = append(got, rc.raw...)
	rc.mu.Unlock()
	values := map[string][]map[string]any{}
	for _, b := range got {
		var h accountHook
		if err := json.Unmarshal(b, &h); err != nil || h.Object != "whatsapp_business_account" || len(h.Entry) != 1 || h.Entry[0].ID != "555" {
			t.Fatalf("hook %s: %v", b, err)
		}
		c := h.Entry[0].Changes[0]
		if c.Field == "messages" {
			continue
		}
		if h.Entry[0].Time == 0 {
			t.Errorf("no entry time: %s", b)
		}
		var v map[string]any
		_ = json.Unmarshal(c.Value, &v)
		values[c.Field] = append(values[c.Field], v)
	}
	// Deliveries run in parallel: put the status changes in their order.
	st := values["message_template_status_update"]
	if len(st) == 2 && st[0]["event"] == "APPROVED" {
		st[0], st[1] = st[1], st[0]
	}
	if a := values["account_update"]; len(a) == 2 && len(a[0]["restriction_info"].([]any)) == 0 {
		a[0], a[1] = a[1], a[0]
	}
	if len(st) != 2 || st[0]["event"] != "PAUSED" || st[0]["message_template_name"] != "promo" || st[0]["message_template_language"] != "en_US" ||
		st[0]["message_template_category"] != "MARKETING" || st[0]["reason"] != "NONE" || st[1]["event"] != "APPROVED" {
		t.Errorf("status webhooks %v", st)
	}
	if oi, _ := st[0]["other_info"].(map[string]any); oi["title"] != "FIRST_PAUSE" {
		t.Errorf("other_info %v", st[0]["other_info"])
	}
	if id, _ := st[0]["message_template_id"].(float64); id <= 0 {
		t.Errorf("message_template_id %v is not a number", st[0]["message_template_id"])
	}
	if q := values["message_template_quality_update"]; len(q) != 1 || q[0]["new_quality_score"] != "RED" || q[0]["previous_quality_score"] != "GREEN" {
		t.Errorf("quality webhooks %v", q)
	}
	if n := values["phone_number_quality_update"]; len(n) != 1 || n[0]["display_phone_number"] != "15550100001" || n[0]["event"] != "FLAGGED" || n[0]["current_limit"] != "TIER_10K" {
		t.Errorf("number webhooks %v", n)
	}
	if a := values["account_update"]; len(a) != 2 || a[0]["event"] != "ACCOUNT_RESTRICTION" || len(a[0]["restriction_info"].([]any)) != 1 || len(a[1]["restriction_info"].([]any)) != 0 {
		t.Errorf("account webhooks %v", a)
	}
}

func TestAccountUpdatesBad(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, WABAID: "555"}},
		Templates: []Template{{Name: "promo", Language: "en_US"}}}})
	ctx := context.Background()
	for name, err := range map[string]error{
		"both":             e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{Status: "PAUSED", Quality: "RED"}),
		"neither":          e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{}),
		"unknown status":   e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{Status: "SLEEPING"}),
		"unknown quality":  e.ctl.UpdateTemplate(ctx, "promo", "en_US", TemplateUpdate{Quality: "PURPLE"}),
		"no such template": e.ctl.UpdateTemplate(ctx, "nope", "en_US", TemplateUpdate{Status: "PAUSED"}),
		"no such language": e.ctl.UpdateTemplate(ctx, "promo", "fr", TemplateUpdate{Status: "PAUSED"}),
		"no such number":   e.ctl.UpdateNumber(ctx, "999", NumberUpdate{Event: "FLAGGED"}),
		"number event":     e.ctl.UpdateNumber(ctx, testPhone, NumberUpdate{Event: "SAD"}),
		"account event":    e.ctl.UpdateAccount(ctx, "555", AccountUpdate{Event: "NOPE"}),
		"waba not digits":  e.ctl.UpdateAccount(ctx, "abc", AccountUpdate{Event: "ACCOUNT_RESTRICTION"}),
		"ban without":      e.ctl.UpdateAccount(ctx, "555", AccountUpdate{Event: "DISABLED_UPDATE"}),
		"ban state":        e.ctl.UpdateAccount(ctx, "555", AccountUpdate{Event: "DISABLED_UPDATE", BanState: "MAYBE"}),
		"restriction type": e.ctl.UpdateAccount(ctx, "555", AccountUpdate{Event: "ACCOUNT_RESTRICTION", Restrictions: []Restriction{{}}}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Unknown fields in a control body are refused.
	if err := e.ctl.do(ctx, "POST", "/_fake/templates/promo/en_US", map[string]string{"status": "PAUSED", "colour": "red"}, nil); err == nil {
		t.Error("unknown field accepted")
	}
}
