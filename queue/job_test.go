package queue

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const goodTemplate = `{"id":"j-1","phone_number_id":"106540352242922","message":{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"name":"order_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"42"}]}]}},"not_after":"2026-11-25T18:00:00Z","metadata":{"tenant":"acme","campaign":"c-42"}}`

func TestDecodeGood(t *testing.T) {
	j, sum, err := Decode([]byte(goodTemplate))
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "j-1" || j.PhoneNumberID != "106540352242922" {
		t.Errorf("job = %+v", j)
	}
	if sum.To != "15551234567" || sum.Type != "template" || sum.Template != "order_update" || sum.Language != "en_US" {
		t.Errorf("summary = %+v", sum)
	}
	want := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	if j.NotAfter == nil || !j.NotAfter.Equal(want) {
		t.Errorf("not_after = %v", j.NotAfter)
	}
	if j.Metadata["campaign"] != "c-42" {
		t.Errorf("metadata = %v", j.Metadata)
	}
	// The message object travels unchanged.
	var back map[string]any
	if err := json.Unmarshal(j.Message, &back); err != nil || back["to"] != "15551234567" {
		t.Errorf("message not kept: %s", j.Message)
	}
}

func TestDecodeText(t *testing.T) {
	_, sum, err := Decode([]byte(`{"id":"x","phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Type != "text" || sum.Template != "" {
		t.Errorf("summary = %+v", sum)
	}
}

// TestDecodeBad is SPEC §8's table of bad job bodies: each is refused with
// an error that names the field.
func TestDecodeBad(t *testing.T) {
	msg := func(m string) string {
		return `{"id":"j","phone_number_id":"106540352242922","message":` + m + `}`
	}
	long := strings.Repeat("a", 129)
	meta := `{`
	for i := 0; i < 17; i++ {
		if i > 0 {
			meta += ","
		}
		meta += `"k` + string(rune('a'+i)) + `":"v"`
	}
	meta += `}`
	tests := []struct {
		name, body, field, problem string
	}{
		{"not json", `hello`, "", "not a JSON job object"},
		{"html", `<html><body>502</body></html>`, "", "not a JSON job object"},
		{"array", `[1,2]`, "", "want an object"},
		{"empty", ``, "", "not a JSON job object"},
		{"cut", goodTemplate[:60], "", "not a JSON job object"},
		{"no id", `{"phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"x"}}}`, "id", "missing"},
		{"id not string", `{"id":7,"phone_number_id":"1","message":{}}`, "", "field id"},
		{"id too long", `{"id":"` + long + `","phone_number_id":"1","message":{}}`, "id", "at most 128"},
		{"id with space", `{"id":"a b","phone_number_id":"1","message":{}}`, "id", "space"},
		{"no phone number id", `{"id":"j","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"x"}}}`, "phone_number_id", "missing"},
		{"phone number id letters", `{"id":"j","phone_number_id":"abc","message":{}}`, "phone_number_id", "digits only"},
		{"no message", `{"id":"j","phone_number_id":"1"}`, "message", "missing"},
		{"message null", msg(`null`), "message", "missing"},
		{"message string", msg(`"hi"`), "message", "not a JSON object"},
		{"no messaging_product", msg(`{"to":"15551234567","type":"text","text":{"body":"x"}}`), "message.messaging_product", "missing"},
		{"wrong messaging_product", msg(`{"messaging_product":"sms","to":"15551234567","type":"text","text":{"body":"x"}}`), "message.messaging_product", `"sms"`},
		{"no to", msg(`{"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}`), "message.to", "missing"},
		{"formatted to", msg(`{"messaging_product":"whatsapp","to":"+1 (555) 123-4567","type":"text","text":{"body":"x"}}`), "message.to", `write it as "15551234567"`},
		{"to with letters", msg(`{"messaging_product":"whatsapp","to":"call me","type":"text","text":{"body":"x"}}`), "message.to", "digits only"},
		{"to too short", msg(`{"messaging_product":"whatsapp","to":"5551234","type":"text","text":{"body":"x"}}`), "message.to", "8 to 15"},
		{"to too long", msg(`{"messaging_product":"whatsapp","to":"1555123456789012","type":"text","text":{"body":"x"}}`), "message.to", "8 to 15"},
		{"to leading zero", msg(`{"messaging_product":"whatsapp","to":"05551234567","type":"text","text":{"body":"x"}}`), "message.to", "starts with 0"},
		{"to number", msg(`{"messaging_product":"whatsapp","to":15551234567,"type":"text","text":{"body":"x"}}`), "message.to", "want a string"},
		{"unknown type", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"fax","fax":{}}`), "message.type", `unknown type "fax"`},
		{"type without payload", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"image"}`), "message.image", "missing"},
		{"template without name", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"language":{"code":"en"}}}`), "message.template.name", "missing"},
		{"template without language", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"name":"t"}}`), "message.template.language.code", "missing"},
		{"template missing", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"template"}`), "message.template", "missing"},
		{"recipient type", msg(`{"messaging_product":"whatsapp","recipient_type":"group","to":"15551234567","type":"text","text":{"body":"x"}}`), "message.recipient_type", "individual"},
		{"bad not_after", `{"id":"j","phone_number_id":"1","not_after":"tomorrow","message":{}}`, "not_after", "RFC 3339"},
		{"too much metadata", `{"id":"j","phone_number_id":"1","metadata":` + meta + `,"message":{}}`, "metadata", "at most 16"},
		{"metadata not strings", `{"id":"j","phone_number_id":"1","metadata":{"a":1},"message":{}}`, "", "field metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode([]byte(tt.body))
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Decode = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", ve.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("error %q does not say %q", err, tt.problem)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	body := `{"id":"j","phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"` + strings.Repeat("x", MaxJobBytes) + `"}}}`
	_, _, err := Decode([]byte(body))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("Decode(huge) = %v", err)
	}
}

func TestExpired(t *testing.T) {
	j, _, err := Decode([]byte(goodTemplate))
	if err != nil {
		t.Fatal(err)
	}
	at := *j.NotAfter
	if j.Expired(at) || !j.Expired(at.Add(time.Second)) {
		t.Error("Expired is wrong around not_after")
	}
	j.NotAfter = nil
	if j.Expired(at.Add(time.Hour)) {
		t.Error("a job without not_after expired")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodTemplate))
	f.Add([]byte(`{"id":"x","phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"4915112345678","type":"text","text":{"body":"hi"}}}`))
	f.Add([]byte(`{"id":"","message":null}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, sum, err := Decode(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is not a *ValidationError: %T %v", err, err)
			}
			return
		}
		// A job that decodes is valid, and survives its own encoding.
		if ValidateRecipient(sum.To) != nil || ValidateID(j.ID) != nil {
			t.Fatalf("decoded an invalid job: %+v %+v", j, sum)
		}
		again, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		j2, sum2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", again, err)
		}
		if j2.ID != j.ID || sum2 != sum {
			t.Fatalf("round trip changed the job: %+v vs %+v", sum, sum2)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	data := []byte(goodTemplate)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
