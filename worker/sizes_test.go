package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOversizedBodiesNeverSent: bodies past Meta's size limits published
// raw on NATS (past the producer, which refuses them) are parked invalid
// with the limit named, and never reach the Graph API.
func TestOversizedBodiesNeverSent(t *testing.T) {
	e := setup(t)
	e.start(t, e.config())
	nc, _ := e.nats.Connect(t)
	js, _ := jetstream.New(nc)
	job := func(id, message string) string {
		return `{"id":"` + id + `","phone_number_id":"` + pn + `","message":{"messaging_product":"whatsapp","to":"15551234567",` + message + `}}`
	}
	tests := []struct {
		id, body, want string
	}{
		{"huge-body", job("huge-body", `"type":"text","text":{"body":"`+strings.Repeat("x", 300_000)+`"}`), "more than the limit of 65536 bytes (64 KiB)"},
		// 64 KiB and one byte: the limit is on the body, whatever is in it.
		{"body-64k", job("body-64k", `"type":"text","text":{"body":"x"},"padding":"`+strings.Repeat("p", 65536)+`"`), "more than the limit of 65536 bytes"},
		{"long-text", job("long-text", `"type":"text","text":{"body":"`+strings.Repeat("é", 4097)+`"}`), "message.text.body: 4097 characters, more than Meta's limit of 4096"},
		{"long-caption", job("long-caption", `"type":"image","image":{"link":"https://example.com/a.png","caption":"`+strings.Repeat("c", 1025)+`"}`), "message.image.caption: 1025 characters, more than Meta's limit of 1024"},
		{"long-video-caption", job("long-video-caption", `"type":"video","video":{"id":"1","caption":"`+strings.Repeat("c", 1025)+`"}`), "message.video.caption: 1025 characters"},
		{"long-doc-caption", job("long-doc-caption", `"type":"document","document":{"id":"1","caption":"`+strings.Repeat("c", 2000)+`"}`), "message.document.caption: 2000 characters"},
	}
	for _, tt := range tests {
		msg := nats.NewMsg("waq.send." + pn)
		msg.Data = []byte(tt.body)
		msg.Header.Set("Nats-Msg-Id", tt.id)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
	}
	// At the limits exactly, a job is sent.
	atLimit := job("at-limits", `"type":"text","text":{"body":"`+strings.Repeat("é", 4096)+`"}`)
	msg := nats.NewMsg("waq.send." + pn)
	msg.Data = []byte(atLimit)
	msg.Header.Set("Nats-Msg-Id", "at-limits")
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		entry := e.waitParked(t, 20*time.Second, tt.id)
		if entry.Reason != "invalid" || !strings.Contains(entry.Problem, tt.want) {
			t.Errorf("%s: reason %s, problem %q; want invalid naming %q", tt.id, entry.Reason, entry.Problem, tt.want)
		}
		if len(entry.Job)+len(entry.Raw) < len(tt.body) {
			t.Errorf("%s: the entry keeps %d bytes of a %d-byte body", tt.id, len(entry.Job)+len(entry.Raw), len(tt.body))
		}
	}
	if entry, err := e.dlq.Get(context.Background(), "at-limits"); err == nil {
		t.Fatalf("the job at the limits was parked: %s", entry.Problem)
	}
	e.waitSent(t, 20*time.Second, "at-limits")
	e.streamEmpty(t, 10*time.Second)
	st := e.fake.Stats(false)
	if st.Requests != 1 {
		t.Errorf("the simulator got %d requests; want 1 (the job at the limits)", st.Requests)
	}
	for _, s := range e.fake.Sends(0) {
		if s.JobID != "at-limits" {
			t.Errorf("job %s reached the Graph API", s.JobID)
		}
	}
}
