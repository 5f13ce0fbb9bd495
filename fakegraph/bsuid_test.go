package fakegraph

import (
	"strings"
	"testing"
)

const testBSUID = "US.13491208655302741918"

func TestBSUIDRecipient(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Templates: []Template{
		{Name: "otp", Language: "en_US", Category: "AUTHENTICATION"}, {Name: "promo", Language: "en_US", Category: "MARKETING"}}}})
	for _, edge := range []string{"messages", APIMarketingMessages} {
		body := `{"messaging_product":"whatsapp","recipient_type":"individual","recipient":"` + testBSUID +
			`","type":"template","template":{"name":"promo","language":{"code":"en_US"}}}`
		status, out := e.post(t, edge, body)
		if status != 200 {
			t.Fatalf("%s: %d %v", edge, status, out)
		}
		a := decodeAnswer(t, out)
		if c := a.Contacts[0]; c.Input != testBSUID || c.UserID == nil || *c.UserID != testBSUID || c.WaID != nil {
			t.Errorf("%s: contacts %+v, want input and user_id, no wa_id", edge, c)
		}
	}
	// A parent BSUID.
	if status, out := e.post(t, "messages", `{"messaging_product":"whatsapp","recipient":"US.ENT.11815799212886844830","text":{"body":"hi"}}`); status != 200 {
		t.Errorf("parent BSUID: %d %v", status, out)
	}
	// With both, "to" wins: the answer follows the phone number.
	_, out := e.post(t, "messages", `{"messaging_product":"whatsapp","to":"15551234567","recipient":"`+testBSUID+`","text":{"body":"hi"}}`)
	if c := decodeAnswer(t, out).Contacts[0]; c.Input != testTo || c.WaID == nil || c.UserID != nil {
		t.Errorf("to and recipient: %+v", c)
	}
	sends := e.sim.Sends(0)
	if sends[0].To != testBSUID || sends[len(sends)-1].To != testTo {
		t.Errorf("sends log recipients %q, %q", sends[0].To, sends[len(sends)-1].To)
	}
	// An authentication template cannot go to a BSUID (131062), but can to
	// the phone number.
	otp := `{"messaging_product":"whatsapp","recipient":"` + testBSUID + `","type":"template","template":{"name":"otp","language":{"code":"en_US"}}}`
	status, out := e.post(t, "messages", otp)
	eo := graphErr(t, status, out, 400, 131062, "(#131062) Business-scoped User ID recipients are not supported for this message")
	if d, _ := eo["error_data"].(map[string]any); d == nil || !strings.Contains(d["details"].(string), "authentication template") {
		t.Errorf("131062 details: %v", eo)
	}
	if status, out := e.post(t, "messages", strings.Replace(otp, `"recipient":"`+testBSUID+`"`, `"to":"15551234567"`, 1)); status != 200 {
		t.Errorf("otp to a phone number: %d %v", status, out)
	}
}

func TestBSUIDBadRecipients(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	for _, r := range []string{"13491208655302741918", "us.134912", "US.", "US.abc-def", "USA.1", "U1.1", "US.ENT.", "US." + strings.Repeat("1", 129), "US.12 3"} {
		status, out := e.post(t, "messages", `{"messaging_product":"whatsapp","recipient":"`+r+`","text":{"body":"hi"}}`)
		t.Run(r, func(t *testing.T) {
			graphErr(t, status, out, 400, 100, "Param recipient must be a business-scoped user ID")
		})
	}
	status, out := e.post(t, "messages", `{"messaging_product":"whatsapp","recipient":"","text":{"body":"hi"}}`)
	graphErr(t, status, out, 400, 100, "to is required")
	if !isBSUID("US." + strings.Repeat("a", 128)) {
		t.Error("128 characters after the country refused")
	}
}

// The scenario triggers 131062 and 131030 by rule, and 131030 by a test
// number's allowed list.
func TestBSUIDScenarioErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, AllowedRecipients: []string{"+1 555 123 4567", testBSUID, "US.7"}}},
		Rules: []Rule{
			{Match: Match{To: "US.7"}, Times: 1, Respond: Response{Error: Code(131062)}},
			{Match: Match{To: "+1 (555) 123-4567"}, Times: 1, Respond: Response{Error: Code(131030)}},
		},
	}})
	msg := func(field, to string) string {
		return `{"messaging_product":"whatsapp","` + field + `":"` + to + `","text":{"body":"hi"}}`
	}
	status, out := e.post(t, "messages", msg("recipient", "US.7"))
	graphErr(t, status, out, 400, 131062, "Business-scoped User ID")
	status, out = e.post(t, "messages", msg("to", testTo))
	eo := graphErr(t, status, out, 400, 131030, "(#131030) Recipient phone number not in allowed list")
	if eo["error_subcode"] != float64(2655007) {
		t.Errorf("131030 subcode: %v", eo)
	}
	// The rules are spent: the allowed list decides.
	for _, ok := range []string{testTo, "15551234567"} {
		if status, out := e.post(t, "messages", msg("to", ok)); status != 200 {
			t.Errorf("allowed %s: %d %v", ok, status, out)
		}
	}
	if status, out := e.post(t, "messages", msg("recipient", testBSUID)); status != 200 {
		t.Errorf("allowed BSUID: %d %v", status, out)
	}
	status, out = e.post(t, "messages", msg("to", "15559999999"))
	graphErr(t, status, out, 400, 131030, "Add recipient phone number to recipient list")
	status, out = e.post(t, "messages", msg("recipient", "US.8"))
	graphErr(t, status, out, 400, 131030, "not in allowed list")
}

// A send to a BSUID gets statuses naming recipient_user_id; a marketing
// message's pricing category is marketing_lite.
func TestBSUIDAndMarketingWebhooks(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	w := hooksScenario(rc.ts.URL)
	w.Statuses = []string{"sent"}
	e := setup(t, Config{Scenario: &Scenario{Webhooks: w}})
	if status, out := e.post(t, APIMarketingMessages, `{"messaging_product":"whatsapp","recipient":"`+testBSUID+
		`","type":"template","template":{"name":"promo","language":{"code":"en_US"}}}`); status != 200 {
		t.Fatalf("%d %v", status, out)
	}
	eventually(t, "the sent webhook", func() bool { return len(rc.got()) == 1 })
	rc.check(t)
	st := rc.got()[0].Entry[0].Changes[0].Value.Statuses[0]
	if st.RecipientUserID != testBSUID || st.RecipientID != "" || st.Pricing == nil || st.Pricing.Category != "marketing_lite" {
		t.Errorf("status %+v", st)
	}
}
