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
		{"to and recipient", msg(`{"messaging_product":"whatsapp","to":"15551234567","recipient":"US.13491208655302741918","type":"text","text":{"body":"x"}}`), "message.recipient", "exactly one"},
		{"recipient empty", msg(`{"messaging_product":"whatsapp","recipient":"","type":"text","text":{"body":"x"}}`), "message.recipient", "missing"},
		{"recipient lowercase country", msg(`{"messaging_product":"whatsapp","recipient":"us.13491208655302741918","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient no dot", msg(`{"messaging_product":"whatsapp","recipient":"US13491208655302741918","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient three-letter country", msg(`{"messaging_product":"whatsapp","recipient":"USA.1349120865","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient nothing after dot", msg(`{"messaging_product":"whatsapp","recipient":"US.","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient parent without id", msg(`{"messaging_product":"whatsapp","recipient":"US.ENT.","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient punctuation", msg(`{"messaging_product":"whatsapp","recipient":"US.1349-1208","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient too long", msg(`{"messaging_product":"whatsapp","recipient":"US.` + strings.Repeat("7", 129) + `","type":"text","text":{"body":"x"}}`), "message.recipient", "not a business-scoped user ID"},
		{"recipient a phone number", msg(`{"messaging_product":"whatsapp","recipient":"+1 555 123 4567","type":"text","text":{"body":"x"}}`), "message.recipient", "looks like a phone number"},
		{"recipient a number", msg(`{"messaging_product":"whatsapp","recipient":13491208655302741918,"type":"text","text":{"body":"x"}}`), "message.recipient", "want a business-scoped user ID string"},
		{"bsuid in to", msg(`{"messaging_product":"whatsapp","to":"US.13491208655302741918","type":"text","text":{"body":"x"}}`), "message.to", "put it in recipient"},
		{"text over 4096", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"` + strings.Repeat("é", MaxTextBody+1) + `"}}`), "message.text.body", "4097 characters, more than Meta's limit of 4096"},
		{"text not an object", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":"hi"}`), "message", "field text"},
		{"image caption over 1024", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"image","image":{"id":"1","caption":"` + strings.Repeat("c", MaxCaption+1) + `"}}`), "message.image.caption", "limit of 1024"},
		{"video caption over 1024", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"video","video":{"id":"1","caption":"` + strings.Repeat("c", MaxCaption+1) + `"}}`), "message.video.caption", "limit of 1024"},
		{"document caption over 1024", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"document","document":{"id":"1","caption":"` + strings.Repeat("c", MaxCaption+1) + `"}}`), "message.document.caption", "limit of 1024"},
		{"unknown api", `{"id":"j","phone_number_id":"1","api":"mm_lite","message":{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"name":"t","language":{"code":"en"}}}}`, "api", `"mm_lite"`},
		{"api not a string", `{"id":"j","phone_number_id":"1","api":1,"message":{}}`, "", "field api"},
		{"marketing text", `{"id":"j","phone_number_id":"1","api":"marketing_messages","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"x"}}}`, "api", "template messages only"},
		{"product_policy on messages", msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"template","product_policy":"STRICT","template":{"name":"t","language":{"code":"en"}}}`), "message.product_policy", "only the Marketing Messages API"},
		{"bad product_policy", `{"id":"j","phone_number_id":"1","api":"marketing_messages","message":{"messaging_product":"whatsapp","to":"15551234567","type":"template","product_policy":"LOOSE","template":{"name":"t","language":{"code":"en"}}}}`, "message.product_policy", `"LOOSE"`},
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
	// Over 64 KiB in metadata-free padding: the body limit, not the text
	// limit, refuses it.
	pad := strings.Repeat(" ", MaxJobBytes)
	body := `{"id":"j","phone_number_id":"1",` + pad + `"message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"x"}}}`
	_, _, err := Decode([]byte(body))
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 65536 bytes (64 KiB)") {
		t.Fatalf("Decode(huge) = %v", err)
	}
	// At the limit exactly it decodes.
	ok := `{"id":"j","phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"x"}}}`
	ok = ok[:len(ok)-1] + strings.Repeat(" ", MaxJobBytes-len(ok)) + "}"
	if _, _, err := Decode([]byte(ok)); err != nil {
		t.Fatalf("Decode(%d bytes) = %v", len(ok), err)
	}
}

// TestDecodeAtLimits: a text of exactly 4,096 characters (multi-byte ones
// count once) and a caption of exactly 1,024 pass.
func TestDecodeAtLimits(t *testing.T) {
	msg := func(m string) string {
		return `{"id":"j","phone_number_id":"106540352242922","message":` + m + `}`
	}
	for name, body := range map[string]string{
		"text":     msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"` + strings.Repeat("é", MaxTextBody) + `"}}`),
		"image":    msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"image","image":{"link":"https://x/y.png","caption":"` + strings.Repeat("c", MaxCaption) + `"}}`),
		"document": msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"document","document":{"id":"1","caption":"` + strings.Repeat("ü", MaxCaption) + `"}}`),
		"audio":    msg(`{"messaging_product":"whatsapp","to":"15551234567","type":"audio","audio":{"id":"1"}}`),
	} {
		if _, _, err := Decode([]byte(body)); err != nil {
			t.Errorf("%s at the limit: %v", name, err)
		}
	}
}

// TestDecodeRecipient: a business-scoped user ID, or a parent one, in
// recipient addresses the job; the summary says which.
func TestDecodeRecipient(t *testing.T) {
	for _, id := range []string{"US.13491208655302741918", "US.ENT.11815799212886844830", "BR.1502576394655843", "DE.aB3", "US." + strings.Repeat("9", 128), "US.ENT." + strings.Repeat("9", 128)} {
		body := `{"id":"j","phone_number_id":"1","message":{"messaging_product":"whatsapp","recipient":"` + id + `","type":"text","text":{"body":"hi"}}}`
		_, sum, err := Decode([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if sum.To != "" || sum.Recipient != id || sum.Addressee() != id {
			t.Errorf("%s: summary = %+v", id, sum)
		}
	}
	if !IsParentUserID("US.ENT.11815799212886844830") || IsParentUserID("US.13491208655302741918") {
		t.Error("IsParentUserID is wrong")
	}
	_, sum, err := Decode([]byte(goodTemplate))
	if err != nil || sum.Addressee() != "15551234567" || sum.Recipient != "" {
		t.Errorf("a to job: %+v %v", sum, err)
	}
}

// TestDecodeMarketing: api marketing_messages with a template and a
// product_policy decodes and keeps both.
func TestDecodeMarketing(t *testing.T) {
	for _, pp := range []string{"", `,"product_policy":"STRICT"`, `,"product_policy":"CLOUD_API_FALLBACK"`} {
		body := `{"id":"j","phone_number_id":"1","api":"marketing_messages","message":{"messaging_product":"whatsapp","recipient":"US.13491208655302741918","type":"template"` + pp + `,"template":{"name":"promo","language":{"code":"en"}}}}`
		j, sum, err := Decode([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", pp, err)
		}
		if j.API != APIMarketingMessages || (pp != "" && sum.ProductPolicy == "") {
			t.Errorf("%s: job %+v summary %+v", pp, j, sum)
		}
	}
	j, _, err := Decode([]byte(`{"id":"j","phone_number_id":"1","api":"messages","message":{"messaging_product":"whatsapp","to":"15551234567","text":{"body":"x"}}}`))
	if err != nil || j.API != APIMessages {
		t.Fatalf("api messages: %+v %v", j, err)
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
	f.Add([]byte(`{"id":"b","phone_number_id":"1","message":{"messaging_product":"whatsapp","recipient":"US.13491208655302741918","type":"text","text":{"body":"hi"}}}`))
	f.Add([]byte(`{"id":"b","phone_number_id":"1","message":{"messaging_product":"whatsapp","recipient":"US.ENT.11815799212886844830","to":"15551234567","type":"text","text":{"body":"hi"}}}`))
	f.Add([]byte(`{"id":"m","phone_number_id":"1","api":"marketing_messages","message":{"messaging_product":"whatsapp","to":"15551234567","type":"template","product_policy":"STRICT","template":{"name":"p","language":{"code":"en"}}}}`))
	f.Add([]byte(`{"id":"c","phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"15551234567","type":"image","image":{"link":"https://x","caption":"` + strings.Repeat("c", MaxCaption+1) + `"}}}`))
	f.Add([]byte(`{"id":"t","phone_number_id":"1","api":"x","message":{"messaging_product":"whatsapp","to":"15551234567","text":{"body":null}}}`))
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
		if (sum.To == "") == (sum.Recipient == "") || ValidateID(j.ID) != nil ||
			(sum.To != "" && ValidateRecipient(sum.To) != nil) || (sum.Recipient != "" && ValidateUserID(sum.Recipient) != nil) {
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
