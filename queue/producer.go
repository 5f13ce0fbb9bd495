package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Header names waq sets on a job message besides the trace context.
const (
	// HeaderReplay carries the replay generation of a job republished from
	// the dead-letter store: absent for a first publish, then 1, 2, ...
	HeaderReplay = "Waq-Replay"
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = nats.MsgIdHdr
)

// DefaultSubjectPrefix is the subject prefix of jobs: waq.send.{phone_number_id}.
const DefaultSubjectPrefix = "waq.send"

const instrumentation = "github.com/waqhq/waq/queue"

// Producer publishes jobs. It is safe for concurrent use.
type Producer struct {
	js     jetstream.JetStream
	prefix string
	tracer trace.Tracer
}

// ProducerOptions configure a Producer; the zero value means the defaults.
type ProducerOptions struct {
	// SubjectPrefix defaults to "waq.send".
	SubjectPrefix string
	// TracerProvider defaults to the global one.
	TracerProvider trace.TracerProvider
}

// NewProducer returns a producer that publishes on js.
func NewProducer(js jetstream.JetStream, opts ProducerOptions) *Producer {
	p := &Producer{js: js, prefix: opts.SubjectPrefix}
	if p.prefix == "" {
		p.prefix = DefaultSubjectPrefix
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	p.tracer = tp.Tracer(instrumentation)
	return p
}

// PublishOptions change how one job is published.
type PublishOptions struct {
	// Replay is the replay generation (0 for a first publish). A replayed
	// job keeps its id; the de-duplication id becomes "{id}#r{Replay}", so
	// replaying one entry twice publishes it once.
	Replay int
	// Links are added to the PRODUCER span (a replay links the first trace).
	Links []trace.Link
}

// Publish validates job (the wire format, exactly one of to and recipient,
// Meta's size limits, the body at most 64 KiB), gives it a UUIDv7 id when
// it has none, and returns
// its id once JetStream has stored it. Publishing the same id twice inside
// the stream's duplicate window stores one message.
func (p *Producer) Publish(ctx context.Context, job *Job) (string, error) {
	return p.PublishWith(ctx, job, PublishOptions{})
}

// PublishWith is Publish with options.
func (p *Producer) PublishWith(ctx context.Context, job *Job, opts PublishOptions) (string, error) {
	if job.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("make job id: %w", err)
		}
		job.ID = id.String()
	}
	if _, err := job.Validate(); err != nil {
		return "", err
	}
	data, err := json.Marshal(job)
	if err != nil {
		return "", fmt.Errorf("encode job: %w", err)
	}
	if len(data) > MaxJobBytes {
		// The worker would park it as invalid; refuse it here instead.
		return "", invalid("", "body is %d bytes, more than the limit of %d bytes (64 KiB)", len(data), MaxJobBytes)
	}
	subject := Subject(p.prefix, job.PhoneNumberID)
	ctx, span := p.tracer.Start(ctx, "publish "+p.prefix,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithLinks(opts.Links...),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", job.ID),
			attribute.String("whatsapp.phone_number_id", job.PhoneNumberID),
		))
	defer span.End()
	if opts.Replay > 0 {
		span.SetAttributes(attribute.Int("waq.replay", opts.Replay))
	}

	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(HeaderMsgID, DedupID(job.ID, opts.Replay))
	if opts.Replay > 0 {
		msg.Header.Set(HeaderReplay, strconv.Itoa(opts.Replay))
	}
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(msg.Header))

	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		return "", fmt.Errorf("publish %s: %w", job.ID, err)
	}
	if ack.Duplicate {
		span.SetAttributes(attribute.Bool("waq.duplicate", true))
	}
	return job.ID, nil
}

// DedupID is the Nats-Msg-Id of a job at a replay generation.
func DedupID(id string, replay int) string {
	if replay <= 0 {
		return id
	}
	return id + "#r" + strconv.Itoa(replay)
}

// ReplayOf reads the replay generation of a job message; 0 when absent or
// malformed (a malformed header is treated as a first publish).
func ReplayOf(h nats.Header) int {
	v := h.Get(HeaderReplay)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// HeaderCarrier adapts NATS headers to OpenTelemetry propagation. Keys are
// written as given ("traceparent"), as the W3C spec spells them.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
