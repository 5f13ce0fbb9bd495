package fakegraph

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// accountValues are the account webhooks rc received, by field, in order.
func accountValues(t *testing.T, rc *receiver) map[string][]map[string]any {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	values := map[string][]map[string]any{}
	for _, b := range rc.raw {
		var h accountHook
		if err := json.Unmarshal(b, &h); err != nil || len(h.Entry) != 1 || len(h.Entry[0].Changes) != 1 {
			t.Fatalf("webhook %s: %v", b, err)
		}
		c := h.Entry[0].Changes[0]
		if c.Field == "messages" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(c.Value, &v); err != nil {
			t.Fatal(err)
		}
		v["waba"] = h.Entry[0].ID
		values[c.Field] = append(values[c.Field], v)
	}
	return values
}

// TestScenarioAccountEvents: a scenario file's account_events are sent by
// themselves, at once or after their wait, signed, and change what sends
// get as the control API's do; a scenario replaced before an event's time
// does not send it.
func TestScenarioAccountEvents(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	file := filepath.Join(t.TempDir(), "holds.yaml")
	yaml := `webhooks: {url: "` + rc.ts.URL + `", app_secret: "` + testSecret + `", retry_backoff: 1ms}
phone_numbers:
  - {phone_number_id: "` + testPhone + `", waba_id: "555", display_phone_number: "+1 555-010-0001"}
templates:
  - {name: promo, language: en_US, category: MARKETING, waba_id: "555"}
account_events:
  - template: {name: promo, language: en_US, status: PAUSED, reason: LOW_QUALITY, title: FIRST_PAUSE, description: paused for 3 hours}
  - after: 50ms
    template: {name: promo, language: en_US, quality: RED}
  - after: 100ms
    number: {phone_number_id: "` + testPhone + `", event: FLAGGED, current_limit: TIER_10K}
  - after: 150ms
    account:
      waba_id: "555"
      event: ACCOUNT_RESTRICTION
      restriction_info: [{restriction_type: RESTRICTED_BIZ_INITIATED_MESSAGING, expiration: "2026-12-12T07:09:27+0000"}]
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := LoadScenario(file)
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, Config{Scenario: sc})
	eventually(t, "four account webhooks", func() bool { return len(rc.got()) == 4 })
	rc.check(t)
	v := accountValues(t, rc)
	if s := v["message_template_status_update"]; len(s) != 1 || s[0]["event"] != "PAUSED" || s[0]["reason"] != "LOW_QUALITY" ||
		s[0]["message_template_name"] != "promo" || s[0]["message_template_category"] != "MARKETING" || s[0]["waba"] != "555" {
		t.Errorf("template status %v", s)
	}
	if q := v["message_template_quality_update"]; len(q) != 1 || q[0]["new_quality_score"] != "RED" {
		t.Errorf("template quality %v", q)
	}
	if n := v["phone_number_quality_update"]; len(n) != 1 || n[0]["event"] != "FLAGGED" || n[0]["current_limit"] != "TIER_10K" || n[0]["display_phone_number"] != "15550100001" {
		t.Errorf("number quality %v", n)
	}
	if a := v["account_update"]; len(a) != 1 || a[0]["event"] != "ACCOUNT_RESTRICTION" || len(a[0]["restriction_info"].([]any)) != 1 {
		t.Errorf("account %v", a)
	}
	// In order of their waits.
	var order []string
	for _, h := range rc.got() {
		order = append(order, h.Entry[0].Changes[0].Field)
	}
	if strings.Join(order, " ") != "message_template_status_update message_template_quality_update phone_number_quality_update account_update" {
		t.Errorf("order %v", order)
	}
	// The changes apply to sends: the WABA is restricted (131031).
	_, err = e.send(t, "p1", tmpl(testTo, "promo", "en_US", 0))
	apiError(t, err, 131031)

	// Replaced before its time: not sent.
	later := sc.clone()
	later.AccountEvents = []AccountEvent{{After: Duration(200 * time.Millisecond), Template: &TemplateEvent{Name: "promo", Language: "en_US", TemplateUpdate: TemplateUpdate{Status: "DISABLED"}}}}
	if err := e.sim.SetScenario(&later); err != nil {
		t.Fatal(err)
	}
	// The replacement sends one event of its own, later than the replaced
	// one's: events go in the order of their times, so when it arrives the
	// replaced event's time has passed, and it must not have come first.
	marker := later.clone()
	marker.AccountEvents = []AccountEvent{{After: Duration(300 * time.Millisecond), Number: &NumberEvent{PhoneNumberID: testPhone, NumberUpdate: NumberUpdate{Event: "UNFLAGGED", CurrentLimit: "TIER_10K"}}}}
	if err := e.sim.SetScenario(&marker); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replacement's event", func() bool { return len(rc.got()) >= 5 })
	if got := rc.got(); len(got) != 5 || got[4].Entry[0].Changes[0].Field != "phone_number_quality_update" {
		var fields []string
		for _, h := range got {
			fields = append(fields, h.Entry[0].Changes[0].Field)
		}
		t.Errorf("webhooks %v: the replaced scenario's event was sent", fields)
	}
	// A JSON round trip keeps them (the control API carries scenarios so).
	roundTrip(t, sc)
}

// TestBadAccountEvents: each bad account event is refused with its file's
// line and what is wrong.
func TestBadAccountEvents(t *testing.T) {
	t.Parallel()
	const head = "phone_numbers:\n  - {phone_number_id: \"1\"}\ntemplates:\n  - {name: promo, language: en_US}\naccount_events:\n"
	cases := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"none", "  - after: 1s\n", 6, "give one of template, number and account"},
		{"two", "  - template: {name: promo, language: en_US, status: PAUSED}\n    number: {phone_number_id: \"1\", event: FLAGGED}\n", 6, "give one of template, number and account"},
		{"negative after", "  - after: -1s\n    number: {phone_number_id: \"1\", event: FLAGGED}\n", 6, `duration "-1s": must not be negative`},
		{"bad after", "  - after: soon\n    number: {phone_number_id: \"1\", event: FLAGGED}\n", 6, `duration "soon"`},
		{"template without name", "  - template: {language: en_US, status: PAUSED}\n", 6, "the template needs its name"},
		{"template without language", "  - template: {name: promo, status: PAUSED}\n", 6, "template promo needs its language"},
		{"unknown template", "  - template:\n      name: other\n      language: en_US\n      status: PAUSED\n", 7, "no template other in language en_US"},
		{"template in another language", "  - template: {name: promo, language: de, status: PAUSED}\n", 6, "no template promo in language de"},
		{"unknown status", "  - template:\n      name: promo\n      language: en_US\n      status: SLEEPING\n", 9, `status "SLEEPING"`},
		{"unknown quality", "  - template:\n      name: promo\n      language: en_US\n      quality: BLUE\n", 9, `quality "BLUE"`},
		{"status and quality", "  - template: {name: promo, language: en_US, status: PAUSED, quality: RED}\n", 6, "give one of status and quality"},
		{"unknown number", "  - number:\n      phone_number_id: \"2\"\n      event: FLAGGED\n", 7, "no phone number 2"},
		{"unknown number event", "  - number:\n      phone_number_id: \"1\"\n      event: GLOWING\n", 8, `event "GLOWING"`},
		{"waba not digits", "  - account:\n      waba_id: abc\n      event: ACCOUNT_RESTRICTION\n", 7, "waba_id must be digits"},
		{"unknown account event", "  - account:\n      waba_id: \"555\"\n      event: ACCOUNT_HAPPY\n", 8, `event "ACCOUNT_HAPPY"`},
		{"ban state without its event", "  - account:\n      waba_id: \"555\"\n      event: ACCOUNT_RESTRICTION\n      ban_state: DISABLE\n", 9, "ban_state goes with DISABLED_UPDATE"},
		{"restriction without type", "  - account:\n      waba_id: \"555\"\n      event: ACCOUNT_RESTRICTION\n      restriction_info: [{expiration: \"1\"}]\n", 9, "needs its restriction_type"},
		{"unknown key", "  - template: {name: promo, language: en_US, status: PAUSED, colour: red}\n", 6, `unknown field "colour"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeScenario(strings.NewReader(head+c.in), "s.yaml")
			var se *ScenarioError
			if !errors.As(err, &se) {
				t.Fatalf("want a *ScenarioError, got %T: %v", err, err)
			}
			if se.File != "s.yaml" || se.Line != c.line || !strings.Contains(se.Msg, c.msg) {
				t.Errorf("%v: want line %d and %q", err, c.line, c.msg)
			}
		})
	}
	// The control API's scenario is checked alike.
	s := New(Config{})
	defer s.Close()
	bad := &Scenario{AccountEvents: []AccountEvent{{Number: &NumberEvent{PhoneNumberID: "9", NumberUpdate: NumberUpdate{Event: "FLAGGED"}}}}}
	if err := s.SetScenario(bad); err == nil || !strings.Contains(err.Error(), "account_events[0].number.phone_number_id: no phone number 9") {
		t.Errorf("SetScenario: %v", err)
	}
	bad = &Scenario{AccountEvents: []AccountEvent{{After: Duration(-time.Second), Account: &WABAEvent{WABAID: "5", AccountUpdate: AccountUpdate{Event: "ACCOUNT_DELETED"}}}}}
	if err := s.SetScenario(bad); err == nil || !strings.Contains(err.Error(), "account_events[0].after: after must not be negative") {
		t.Errorf("SetScenario: %v", err)
	}
}
