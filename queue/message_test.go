package queue

import (
	"encoding/json"
	"testing"
)

// TestMessageObjects: the two message objects are what the Graph API
// takes, and what Validate accepts in a job; a body with quotes, newlines
// and HTML stays one JSON string.
func TestMessageObjects(t *testing.T) {
	tests := []struct {
		name string
		got  json.RawMessage
		want string
	}{
		{"text", TextMessage("15551234567", "hi"),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567","type":"text","text":{"body":"hi"}}`},
		{"text that needs escaping", TextMessage("15551234567", "say \"hi\"\n<b>&</b>"),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567","type":"text","text":{"body":"say \"hi\"\n\u003cb\u003e\u0026\u003c/b\u003e"}}`},
		{"template without parameters", TemplateMessage("15551234567", "spring_sale", "en_US"),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567","type":"template","template":{"name":"spring_sale","language":{"code":"en_US"}}}`},
		{"template with parameters", TemplateMessage("15551234567", "order_update", "pt_BR", "A-1", "42"),
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567","type":"template","template":{"name":"order_update","language":{"code":"pt_BR"},"components":[{"type":"body","parameters":[{"type":"text","text":"A-1"},{"type":"text","text":"42"}]}]}}`},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, tt.got, tt.want)
		}
		job := &Job{ID: "m-1", PhoneNumberID: "106540352242922", Message: tt.got}
		if _, err := job.Validate(); err != nil {
			t.Errorf("%s: a job with it does not validate: %v", tt.name, err)
		}
	}
	// A bad recipient is the job's to refuse, not the constructor's.
	job := &Job{ID: "m-2", PhoneNumberID: "106540352242922", Message: TextMessage("+1 555", "hi")}
	if _, err := job.Validate(); err == nil {
		t.Error("a job to +1 555 validates")
	}
}
