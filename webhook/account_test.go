package webhook_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/waqhq/waq/webhook"
)

// The sample payloads follow Meta's webhook reference (2026): one change
// per entry, field beside value, the WABA id in entry[].id.
const (
	templatePausedBody   = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1764072000,"changes":[{"value":{"event":"PAUSED","message_template_id":1689556908129832,"message_template_name":"spring_sale","message_template_language":"en_US","reason":"NONE","message_template_category":"MARKETING","other_info":{"title":"FIRST_PAUSE","description":"Your WhatsApp message template has been paused for 3 hours until Dec 3 at 6:00 PM UTC because it had issues."}},"field":"message_template_status_update"}]}]}`
	templateRejectedBody = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1764072001,"changes":[{"value":{"event":"REJECTED","message_template_id":1689556908129835,"message_template_name":"abandoned_cart","message_template_language":"en","reason":"INVALID_FORMAT","message_template_category":"MARKETING","rejection_info":{"reason":"Variable parameters are next to each other.","recommendation":"Add text between them."}},"field":"message_template_status_update"}]}]}`
	templateDeletionBody = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1764072002,"changes":[{"value":{"event":"PENDING_DELETION","message_template_id":1,"message_template_name":"old_promo","message_template_language":"en_US","reason":null},"field":"message_template_status_update"}]}]}`
	qualityBody          = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1674864290,"changes":[{"value":{"previous_quality_score":"GREEN","new_quality_score":"RED","message_template_id":806312974732579,"message_template_name":"welcome_template","message_template_language":"en-US"},"field":"message_template_quality_update"}]}]}`
	numberBody           = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1748454394,"changes":[{"value":{"display_phone_number":"15550783881","event":"FLAGGED","current_limit":"TIER_10K"},"field":"phone_number_quality_update"}]}]}`
	restrictionBody      = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1764072003,"changes":[{"value":{"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION","expiration":"2026-12-12T07:09:27+0000"},{"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING","expiration":"2026-12-12T07:09:27+0000"}]},"field":"account_update"}]}]}`
	banBody              = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1764072004,"changes":[{"value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE","waba_ban_date":"December 3, 2026"}},"field":"account_update"}]}]}`
)

func parseOne(t *testing.T, body string) webhook.AccountEvent {
	t.Helper()
	evs, bad, err := webhook.ParseAccount([]byte(body))
	if err != nil || bad != 0 || len(evs) != 1 {
		t.Fatalf("ParseAccount: %v, bad %d, %d events", err, bad, len(evs))
	}
	return evs[0]
}

func TestParseAccount(t *testing.T) {
	ev := parseOne(t, templatePausedBody)
	if ev.Field != webhook.FieldTemplateStatus || ev.WABAID != "102290129340398" || ev.Time != 1764072000 || ev.Event != "PAUSED" ||
		ev.TemplateID != "1689556908129832" || ev.TemplateName != "spring_sale" || ev.TemplateLanguage != "en_US" || ev.Category != "MARKETING" {
		t.Errorf("paused = %+v", ev)
	}
	// reason NONE says nothing; other_info says how long.
	if !strings.HasPrefix(ev.Reason, "FIRST_PAUSE: Your WhatsApp message template has been paused for 3 hours") {
		t.Errorf("reason = %q", ev.Reason)
	}
	if ev := parseOne(t, templateRejectedBody); ev.Event != "REJECTED" || ev.Reason != "INVALID_FORMAT" || ev.TemplateName != "abandoned_cart" {
		t.Errorf("rejected = %+v", ev)
	}
	if ev := parseOne(t, templateDeletionBody); ev.Event != "PENDING_DELETION" || ev.Reason != "" || ev.Category != "" {
		t.Errorf("deletion (reason null) = %+v", ev)
	}
	if ev := parseOne(t, qualityBody); ev.Field != webhook.FieldTemplateQuality || ev.Event != "RED" || ev.PreviousQuality != "GREEN" ||
		ev.TemplateName != "welcome_template" || ev.TemplateLanguage != "en-US" {
		t.Errorf("quality = %+v", ev)
	}
	if ev := parseOne(t, numberBody); ev.Field != webhook.FieldNumberQuality || ev.Event != "FLAGGED" || ev.DisplayPhoneNumber != "15550783881" || ev.CurrentLimit != "TIER_10K" {
		t.Errorf("number = %+v", ev)
	}
	// max_daily_conversations_per_business replaces current_limit (2026).
	newer := strings.Replace(numberBody, `"current_limit":"TIER_10K"`, `"max_daily_conversations_per_business":"TIER_2K"`, 1)
	if ev := parseOne(t, newer); ev.CurrentLimit != "TIER_2K" {
		t.Errorf("max_daily_conversations_per_business = %+v", ev)
	}
	if ev := parseOne(t, restrictionBody); ev.Event != "ACCOUNT_RESTRICTION" || len(ev.Restrictions) != 2 ||
		ev.Restrictions[1].Type != "RESTRICTED_BIZ_INITIATED_MESSAGING" || ev.Restrictions[1].Expiration != "2026-12-12T07:09:27+0000" {
		t.Errorf("restriction = %+v", ev)
	}
	if ev := parseOne(t, banBody); ev.Event != "DISABLED_UPDATE" || ev.BanState != "DISABLE" {
		t.Errorf("ban = %+v", ev)
	}
	// Parse counts them among the others and returns no status.
	if sts, others, err := webhook.Parse([]byte(templatePausedBody)); err != nil || len(sts) != 0 || others != 1 {
		t.Errorf("Parse: %v %d %v", sts, others, err)
	}
	// The stored event reads back the same, and the dedup id is stable.
	back, err := webhook.DecodeAccountEvent(mustJSON(t, ev))
	if err != nil || back.DedupID() != ev.DedupID() || back.TemplateName != ev.TemplateName {
		t.Errorf("round trip: %+v %v", back, err)
	}
	if parseOne(t, qualityBody).DedupID() == ev.DedupID() {
		t.Error("two events share a dedup id")
	}
}

func TestParseAccountBad(t *testing.T) {
	long := strings.Repeat("x", 600)
	for name, body := range map[string]string{
		"no template name":      strings.Replace(templatePausedBody, `"spring_sale"`, `""`, 1),
		"no language":           strings.Replace(templatePausedBody, `"en_US"`, `""`, 1),
		"colon in the name":     strings.Replace(templatePausedBody, `"spring_sale"`, `"a:b"`, 1),
		"no event":              strings.Replace(templatePausedBody, `"PAUSED"`, `""`, 1),
		"waba id not digits":    strings.Replace(templatePausedBody, `"102290129340398"`, `"waq.>"`, 1),
		"no waba id":            strings.Replace(templatePausedBody, `"id":"102290129340398",`, ``, 1),
		"name too long":         strings.Replace(templatePausedBody, `"spring_sale"`, `"`+long+`"`, 1),
		"no quality":            strings.Replace(qualityBody, `"new_quality_score":"RED",`, ``, 1),
		"no display number":     strings.Replace(numberBody, `"15550783881"`, `"+"`, 1),
		"restriction no type":   strings.Replace(restrictionBody, `"RESTRICTED_BIZ_INITIATED_MESSAGING"`, `""`, 1),
		"account with no event": strings.Replace(banBody, `"DISABLED_UPDATE"`, `""`, 1),
	} {
		evs, bad, err := webhook.ParseAccount([]byte(body))
		if err != nil || bad != 1 || len(evs) != 0 {
			t.Errorf("%s: %v, bad %d, %d events", name, err, bad, len(evs))
		}
	}
	// Values of the wrong JSON type make the body undecodable.
	for name, body := range map[string]string{
		"name a number":        strings.Replace(templatePausedBody, `"spring_sale"`, `12`, 1),
		"restrictions object":  strings.Replace(restrictionBody, `"restriction_info":[`, `"restriction_info":{"a":[`, 1),
		"template id a string": strings.Replace(qualityBody, `806312974732579`, `"x y"`, 1),
	} {
		if _, _, err := webhook.ParseAccount([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := webhook.DecodeAccountEvent([]byte(`{"field":"messages","event":"X","waba_id":"1"}`)); err == nil {
		t.Error("DecodeAccountEvent took another field")
	}
	if _, err := webhook.DecodeAccountEvent([]byte(`not json`)); err == nil {
		t.Error("DecodeAccountEvent took a bad body")
	}
}

// TestPostStoresAccountEvents: signed account changes are stored on the
// events stream under waq.status.account.{waba_id}; unsigned ones are not.
func TestPostStoresAccountEvents(t *testing.T) {
	f := setup(t)
	if got := f.post(t, templatePausedBody, "sha256=00"); got != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", got)
	}
	if n := f.stored(t); n != 0 {
		t.Fatalf("stored %d after an unsigned post", n)
	}
	both := strings.Replace(templatePausedBody, `]}]}`, `]},`+strings.TrimPrefix(strings.TrimSuffix(numberBody, `]}`), `{"object":"whatsapp_business_account","entry":[`)+`]}`, 1)
	if got := f.post(t, both, sign(both)); got != http.StatusOK {
		t.Fatalf("signed: %d", got)
	}
	// A redelivery is de-duplicated.
	if got := f.post(t, both, sign(both)); got != http.StatusOK {
		t.Fatalf("again: %d", got)
	}
	if n := f.stored(t); n != 2 {
		t.Fatalf("stored %d, want 2 (one per change, redelivery dropped)", n)
	}
	msg, err := f.stream.GetLastMsgForSubject(context.Background(), "waq.status.account.102290129340398")
	if err != nil {
		t.Fatal(err)
	}
	if !webhook.IsAccountSubject(msg.Subject) || webhook.IsAccountSubject("waq.status.106540352242922") {
		t.Error("IsAccountSubject")
	}
	ev, err := webhook.DecodeAccountEvent(msg.Data)
	if err != nil || ev.Field != webhook.FieldNumberQuality {
		t.Errorf("last stored = %+v %v", ev, err)
	}
	if f.counts["account"] != 4 {
		t.Errorf("counts = %v", f.counts)
	}
	bad := strings.Replace(templatePausedBody, `"spring_sale"`, `""`, 1)
	if got := f.post(t, bad, sign(bad)); got != http.StatusOK || f.counts["invalid"] != 1 {
		t.Errorf("incomplete change: %d, counts %v", got, f.counts)
	}
}

func FuzzParseAccount(f *testing.F) {
	for _, b := range []string{templatePausedBody, qualityBody, numberBody, restrictionBody, banBody} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, _, err := webhook.ParseAccount(body)
		if err != nil && len(evs) != 0 {
			t.Fatal("events with an error")
		}
		for _, e := range evs {
			if e.Event == "" || strings.ContainsAny(e.WABAID, ".*> ") || strings.ContainsAny(e.TemplateName+e.TemplateLanguage, ":|") {
				t.Fatalf("an event the worker cannot keep: %+v", e)
			}
			if _, err := webhook.DecodeAccountEvent(mustJSON(t, e)); err != nil {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
