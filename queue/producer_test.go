package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

func textJob(id, to string) *queue.Job {
	return &queue.Job{
		ID:            id,
		PhoneNumberID: "106540352242922",
		Message:       json.RawMessage(`{"messaging_product":"whatsapp","to":"` + to + `","type":"text","text":{"body":"hello"}}`),
	}
}

func setup(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := queue.EnsureStream(ctx, js, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

func TestEnsureStream(t *testing.T) {
	js, s := setup(t)
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Name != "WAQ_SEND" || c.Subjects[0] != "waq.send.>" || c.Storage != jetstream.FileStorage || c.Replicas != 1 || c.Retention != jetstream.WorkQueuePolicy {
		t.Errorf("stream config = %+v", c)
	}
	// Brought up to date, not refused, when settings change.
	if _, err := queue.EnsureStream(ctx, js, queue.StreamConfig{Duplicates: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	info, _ = s.Info(ctx)
	if info.Config.Duplicates != 10*time.Minute {
		t.Errorf("duplicates = %s", info.Config.Duplicates)
	}
	if _, err := queue.EnsureStream(ctx, js, queue.StreamConfig{Replicas: 9}); err == nil {
		t.Error("replicas 9 accepted")
	}
}

func TestPublishStoresOnceForOneID(t *testing.T) {
	js, s := setup(t)
	p := queue.NewProducer(js, queue.ProducerOptions{})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id, err := p.Publish(ctx, textJob("same-id", "15551234567"))
		if err != nil || id != "same-id" {
			t.Fatalf("publish %d: %q %v", i, id, err)
		}
	}
	if _, err := p.Publish(ctx, textJob("other-id", "15551234567")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2 (one per id)", info.State.Msgs)
	}
	// A replay generation is a new message, and is itself de-duplicated.
	for i := 0; i < 2; i++ {
		if _, err := p.PublishWith(ctx, textJob("same-id", "15551234567"), queue.PublishOptions{Replay: 1}); err != nil {
			t.Fatal(err)
		}
	}
	info, _ = s.Info(ctx)
	if info.State.Msgs != 3 {
		t.Fatalf("after replay: %d messages, want 3", info.State.Msgs)
	}
}

func TestPublishMakesUUIDv7AndHeaders(t *testing.T) {
	js, s := setup(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	p := queue.NewProducer(js, queue.ProducerOptions{TracerProvider: tp})
	ctx := context.Background()
	j := textJob("", "15551234567")
	id, err := p.Publish(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		t.Fatalf("id %q is not a UUIDv7 (%v)", id, err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, "waq.send.106540352242922")
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get("Nats-Msg-Id"); got != id {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, id)
	}
	tp2 := raw.Header.Get("traceparent")
	if tp2 == "" {
		t.Fatalf("no traceparent header: %v", raw.Header)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].SpanKind() != trace.SpanKindProducer {
		t.Fatalf("spans = %v", spans)
	}
	// The header carries the PRODUCER span's context.
	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, queue.HeaderCarrier(raw.Header)))
	if got.TraceID() != spans[0].SpanContext().TraceID() || got.SpanID() != spans[0].SpanContext().SpanID() {
		t.Errorf("traceparent %s is not the producer span", tp2)
	}
	var back queue.Job
	if err := json.Unmarshal(raw.Data, &back); err != nil || back.ID != id {
		t.Errorf("body = %s", raw.Data)
	}
}

func TestPublishRefusesBadJobs(t *testing.T) {
	js, s := setup(t)
	p := queue.NewProducer(js, queue.ProducerOptions{})
	bad := []*queue.Job{
		textJob("a", "+1 (555) 123-4567"),
		{ID: "b", PhoneNumberID: "106540352242922", Message: json.RawMessage(`{"messaging_product":"whatsapp","to":"15551234567","type":"fax"}`)},
		{ID: "c", PhoneNumberID: "106540352242922", Message: json.RawMessage(`{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"language":{"code":"en"}}}`)},
		{ID: "d", PhoneNumberID: "not-digits", Message: textJob("", "15551234567").Message},
		{ID: "e", PhoneNumberID: "106540352242922", Message: json.RawMessage(`{"messaging_product":"whatsapp","to":"15551234567","recipient":"US.13491208655302741918","type":"text","text":{"body":"x"}}`)},
		{ID: "f", PhoneNumberID: "106540352242922", Message: json.RawMessage(`{"messaging_product":"whatsapp","recipient":"13491208655302741918","type":"text","text":{"body":"x"}}`)},
		{ID: "g", PhoneNumberID: "106540352242922", Message: json.RawMessage(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"` + strings.Repeat("x", queue.MaxTextBody+1) + `"}}`)},
		// 300 KB in a field waq does not read: only the body limit refuses it.
		{ID: "h", PhoneNumberID: "106540352242922", Message: json.RawMessage(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"x"},"pad":"` + strings.Repeat("p", 300<<10) + `"}`)},
		{ID: "i", PhoneNumberID: "106540352242922", API: "marketing_messages", Message: textJob("", "15551234567").Message},
	}
	for _, j := range bad {
		_, err := p.Publish(context.Background(), j)
		var ve *queue.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Publish(%s) = %v, want a validation error", j.ID, err)
		}
	}
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 0 {
		t.Errorf("refused jobs reached the stream: %d", info.State.Msgs)
	}
}
