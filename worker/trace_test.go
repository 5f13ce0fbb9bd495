package worker_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

// traced is an in-memory span recorder behind a provider that samples
// everything, and a producer that traces with that same provider, so that
// the producer's and the worker's spans land in one place.
type traced struct {
	rec      *tracetest.SpanRecorder
	tp       *sdktrace.TracerProvider
	producer *queue.Producer
}

func (e *env) traced(t *testing.T) *traced {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &traced{rec: rec, tp: tp, producer: queue.NewProducer(e.js, queue.ProducerOptions{TracerProvider: tp})}
}

func (tr *traced) publish(t *testing.T, jobs ...*queue.Job) {
	t.Helper()
	for _, j := range jobs {
		if _, err := tr.producer.Publish(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
}

// jobTrace is the ended spans of one job's trace, by kind.
type jobTrace struct {
	producer sdktrace.ReadOnlySpan
	attempts []sdktrace.ReadOnlySpan // CONSUMER spans with waq.attempt, by attempt
	clients  map[trace.SpanID]sdktrace.ReadOnlySpan
	all      []sdktrace.ReadOnlySpan
}

// waitTrace waits until the trace of job id holds a PRODUCER span and n
// attempt spans, each with its CLIENT child, all ended; a span ends after
// the ack, so the job's outcome alone is not enough to look.
func (tr *traced) waitTrace(t *testing.T, id string, n int) *jobTrace {
	t.Helper()
	var jt *jobTrace
	testenv.Eventually(t, 20*time.Second, func() error {
		jt = &jobTrace{clients: map[trace.SpanID]sdktrace.ReadOnlySpan{}}
		ended := tr.rec.Ended()
		for _, s := range ended {
			if s.SpanKind() == trace.SpanKindProducer && attrs(s)["messaging.message.id"].AsString() == id {
				jt.producer = s
			}
		}
		if jt.producer == nil {
			return fmt.Errorf("no PRODUCER span for %s yet", id)
		}
		tid := jt.producer.SpanContext().TraceID()
		for _, s := range ended {
			if s.SpanContext().TraceID() != tid {
				continue
			}
			jt.all = append(jt.all, s)
			switch s.SpanKind() {
			case trace.SpanKindConsumer:
				if _, ok := attrs(s)["waq.attempt"]; ok {
					jt.attempts = append(jt.attempts, s)
				}
			case trace.SpanKindClient:
				jt.clients[s.Parent().SpanID()] = s
			}
		}
		if len(jt.attempts) < n || len(jt.clients) < n {
			return fmt.Errorf("%s: %d attempt spans and %d client spans ended, want %d", id, len(jt.attempts), len(jt.clients), n)
		}
		return nil
	})
	sort.Slice(jt.attempts, func(i, j int) bool {
		return attrs(jt.attempts[i])["waq.attempt"].AsInt64() < attrs(jt.attempts[j])["waq.attempt"].AsInt64()
	})
	return jt
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(s.Attributes()))
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// spanText is everything a span shows a tracing UI: name, attribute values,
// events, links, status description.
func spanText(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	b.WriteString(s.Name())
	kvs := func(list []attribute.KeyValue) {
		for _, kv := range list {
			b.WriteString(" " + string(kv.Key) + "=" + kv.Value.String())
		}
	}
	kvs(s.Attributes())
	for _, ev := range s.Events() {
		b.WriteString(" event " + ev.Name)
		kvs(ev.Attributes)
	}
	for _, l := range s.Links() {
		kvs(l.Attributes)
	}
	b.WriteString(" status " + s.Status().Description)
	return b.String()
}

// recipientHash is what the worker writes for a recipient: the keyed hash
// with the key the workers share in Redis.
func (e *env) recipientHash(t *testing.T, to string) string {
	t.Helper()
	key, err := e.redis.Client(t).Get(context.Background(), "waq:recipient-key").Bytes()
	if err != nil {
		t.Fatalf("recipient key: %v", err)
	}
	return telemetry.NewRecipientHasher(key).Hash(to)
}

// checkMessagingAttrs checks what every attempt span carries.
func checkMessagingAttrs(t *testing.T, s sdktrace.ReadOnlySpan, jobID, recipientHash string) {
	t.Helper()
	a := attrs(s)
	for k, want := range map[attribute.Key]string{
		"messaging.system":           "nats",
		"messaging.destination.name": "waq.send." + pn,
		"messaging.message.id":       jobID,
		"whatsapp.phone_number_id":   pn,
		"waq.recipient.hash":         recipientHash,
	} {
		if got := a[k].String(); got != want {
			t.Errorf("%s attempt %d: %s = %q, want %q", s.Name(), a["waq.attempt"].AsInt64(), k, got, want)
		}
	}
}

// checkClientChild checks the HTTP CLIENT span under an attempt.
func checkClientChild(t *testing.T, jt *jobTrace, attempt sdktrace.ReadOnlySpan, failed bool) {
	t.Helper()
	c, ok := jt.clients[attempt.SpanContext().SpanID()]
	if !ok {
		t.Errorf("attempt %s has no CLIENT child", attempt.SpanContext().SpanID())
		return
	}
	a := attrs(c)
	if c.Name() != "POST /{version}/{phone_number_id}/messages" || a["http.request.method"].AsString() != "POST" ||
		a["server.address"].AsString() != "127.0.0.1" || a["server.port"].AsInt64() == 0 || a["http.response.status_code"].AsInt64() == 0 {
		t.Errorf("client span %q attributes %v", c.Name(), a)
	}
	if got := c.Status().Code == codes.Error; got != failed {
		t.Errorf("client span status %v, want error=%v", c.Status(), failed)
	}
	if c.EndTime().After(attempt.EndTime()) || c.StartTime().Before(attempt.StartTime()) {
		t.Error("the CLIENT span is not inside its attempt span")
	}
}

// TestTraceRetriedThenSent: a job that fails twice with 131000 and then
// succeeds is one trace: the producer's PRODUCER span and, under it, three
// CONSUMER attempt spans, each with the HTTP CLIENT span as its child.
func TestTraceRetriedThenSent(t *testing.T) {
	e := setup(t)
	tr := e.traced(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "flaky"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}}); err != nil {
		t.Fatal(err)
	}
	e.startWith(t, e.config(), nil, worker.Options{TracerProvider: tr.tp})
	const to = "15551234567"
	tr.publish(t, textJob("flaky", to))
	e.waitSent(t, 20*time.Second, "flaky")
	jt := tr.waitTrace(t, "flaky", 3)

	// One trace, rooted at the producer.
	p := jt.producer
	if p.Parent().IsValid() || p.Name() != "publish waq.send" {
		t.Errorf("PRODUCER span %q has parent %v; want the root, named publish waq.send", p.Name(), p.Parent())
	}
	pa := attrs(p)
	if pa["messaging.system"].AsString() != "nats" || pa["messaging.destination.name"].AsString() != "waq.send."+pn ||
		pa["whatsapp.phone_number_id"].AsString() != pn {
		t.Errorf("PRODUCER attributes %v", pa)
	}
	// 1 producer + 3 attempts + 3 client spans; nothing else in the trace
	// but deliveries that were only told to wait (no attempt, no child).
	extra := 0
	for _, s := range jt.all {
		if s.SpanKind() == trace.SpanKindConsumer {
			if _, ok := attrs(s)["waq.attempt"]; !ok {
				if attrs(s)["waq.policy.action"].AsString() != "wait" {
					t.Errorf("consumer span without an attempt: %v", attrs(s))
				}
				extra++
			}
		}
	}
	if len(jt.attempts) != 3 || len(jt.clients) != 3 || len(jt.all) != 7+extra {
		t.Fatalf("trace has %d attempts, %d client spans, %d spans in all", len(jt.attempts), len(jt.clients), len(jt.all))
	}

	history, err := e.ledger.History(context.Background(), "flaky")
	if err != nil || len(history) != 3 {
		t.Fatalf("history %v %v", history, err)
	}
	state, _ := e.ledger.Load(context.Background(), "flaky")
	hash := e.recipientHash(t, to)
	wantAction := []string{"retry", "retry", "sent"}
	fbtraces := map[string]bool{}
	for i, s := range jt.attempts {
		a := attrs(s)
		failed := i < 2
		if s.SpanKind() != trace.SpanKindConsumer || s.Parent().SpanID() != p.SpanContext().SpanID() {
			t.Errorf("attempt %d: kind %v, parent %v; want CONSUMER under the PRODUCER span", i+1, s.SpanKind(), s.Parent().SpanID())
		}
		if a["waq.attempt"].AsInt64() != int64(i+1) || a["waq.policy.action"].AsString() != wantAction[i] {
			t.Errorf("attempt %d: waq.attempt %d, action %q; want %d, %q", i+1, a["waq.attempt"].AsInt64(), a["waq.policy.action"].AsString(), i+1, wantAction[i])
		}
		checkMessagingAttrs(t, s, "flaky", hash)
		checkClientChild(t, jt, s, failed)
		if s.SpanContext().SpanID().String() != history[i].SpanID {
			t.Errorf("attempt %d: span %s, the ledger says %s", i+1, s.SpanContext().SpanID(), history[i].SpanID)
		}
		fb := a["whatsapp.fbtrace_id"].AsString()
		if failed {
			if a["whatsapp.error.code"].AsInt64() != 131000 || fb == "" || fb != history[i].FBTraceID || fbtraces[fb] {
				t.Errorf("attempt %d: code %v, fbtrace_id %q (ledger %q); want 131000 and Meta's fresh fbtrace_id", i+1, a["whatsapp.error.code"], fb, history[i].FBTraceID)
			}
			fbtraces[fb] = true
			if s.Status().Code != codes.Error {
				t.Errorf("attempt %d: status %v, want Error", i+1, s.Status())
			}
			if _, ok := a["whatsapp.message.id"]; ok {
				t.Errorf("attempt %d: a failed attempt has a wamid", i+1)
			}
		} else {
			if !state.SentAs(a["whatsapp.message.id"].AsString()) {
				t.Errorf("last attempt: wamid %q, not the ledger's (%+v)", a["whatsapp.message.id"].AsString(), state)
			}
			if _, ok := a["whatsapp.error.code"]; ok || s.Status().Code == codes.Error {
				t.Errorf("last attempt: error code %v, status %v; want neither", a["whatsapp.error.code"], s.Status())
			}
			if _, ok := a["waq.dlq.reason"]; ok {
				t.Error("a sent attempt has waq.dlq.reason")
			}
		}
		// Only the starts are ordered: an attempt's span ends just after
		// its nak, and a loaded machine may redeliver first.
		if i > 0 && !s.StartTime().After(jt.attempts[i-1].StartTime()) {
			t.Errorf("attempt %d began before attempt %d", i+1, i)
		}
	}
	for _, s := range jt.all {
		txt := spanText(s)
		if strings.Contains(txt, to) || strings.Contains(txt, token) {
			t.Errorf("span %q shows the recipient or the token: %s", s.Name(), txt)
		}
	}
}

// TestTraceParkedTemplate: a job parked as template is one attempt span
// with the reason, the park action, Meta's code and fbtrace_id, and status
// Error; the dead-letter entry names the same trace.
func TestTraceParkedTemplate(t *testing.T) {
	e := setup(t)
	tr := e.traced(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "tpl"}, Respond: fakegraph.Response{Error: fakegraph.Code(132001)}}); err != nil {
		t.Fatal(err)
	}
	e.startWith(t, e.config(), nil, worker.Options{TracerProvider: tr.tp})
	const to = "15557654321"
	tr.publish(t, templateJob("tpl", to, "order_update"))
	entry := e.waitParked(t, 20*time.Second, "tpl")
	jt := tr.waitTrace(t, "tpl", 1)
	if len(jt.attempts) != 1 || len(jt.all) != 3 {
		t.Fatalf("trace has %d attempts, %d spans; want 1 attempt in 3 spans", len(jt.attempts), len(jt.all))
	}
	s := jt.attempts[0]
	a := attrs(s)
	if s.Parent().SpanID() != jt.producer.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("attempt: kind %v parent %v", s.SpanKind(), s.Parent())
	}
	checkMessagingAttrs(t, s, "tpl", e.recipientHash(t, to))
	checkClientChild(t, jt, s, true)
	if a["waq.attempt"].AsInt64() != 1 || a["waq.policy.action"].AsString() != "park" || a["waq.dlq.reason"].AsString() != "template" ||
		a["whatsapp.error.code"].AsInt64() != 132001 || a["whatsapp.template.name"].AsString() != "order_update" {
		t.Errorf("attempt attributes %v", a)
	}
	if fb := a["whatsapp.fbtrace_id"].AsString(); fb == "" || entry.LastError == nil || fb != entry.LastError.FBTraceID {
		t.Errorf("fbtrace_id %q, entry's %+v", fb, entry.LastError)
	}
	if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "template") {
		t.Errorf("status %v, want Error naming the reason", s.Status())
	}
	if entry.TraceID != s.SpanContext().TraceID().String() || entry.SpanID != s.SpanContext().SpanID().String() {
		t.Errorf("entry trace %s/%s, span %s/%s", entry.TraceID, entry.SpanID, s.SpanContext().TraceID(), s.SpanContext().SpanID())
	}
	for _, s := range jt.all {
		if txt := spanText(s); strings.Contains(txt, to) || strings.Contains(txt, token) {
			t.Errorf("span %q shows the recipient or the token: %s", s.Name(), txt)
		}
	}
}

// TestTraceFailuresKeptAtRatioZero: with the production providers' wrapping
// (telemetry.KeepFailures) and a sampler that keeps nothing, producer
// included, the failed attempts and their Graph API calls are exported,
// the successful attempt is not.
func TestTraceFailuresKeptAtRatioZero(t *testing.T) {
	e := setup(t)
	exported := tracetest.NewSpanRecorder()
	all := tracetest.NewSpanRecorder() // every recorded span, exported or not
	opts := append(telemetry.KeepFailures(exported, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))), sdktrace.WithSpanProcessor(all))
	tp := sdktrace.NewTracerProvider(opts...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := &traced{rec: exported, tp: tp, producer: queue.NewProducer(e.js, queue.ProducerOptions{TracerProvider: tp})}
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "flaky0"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}}); err != nil {
		t.Fatal(err)
	}
	e.startWith(t, e.config(), nil, worker.Options{TracerProvider: tp})
	tr.publish(t, textJob("flaky0", "15551234567"))
	e.waitSent(t, 20*time.Second, "flaky0")
	// The successful attempt's span has ended (it ends after the ack).
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, s := range all.Ended() {
			if attrs(s)["waq.policy.action"].AsString() == "sent" && attrs(s)["messaging.message.id"].AsString() == "flaky0" {
				return nil
			}
		}
		return fmt.Errorf("the successful attempt's span has not ended")
	})
	var actions []string
	clients, failedClients := 0, 0
	// What goes on (the traceparent of the Graph API call) keeps the
	// sampler's decision: unsampled.
	for _, s := range all.Ended() {
		if s.SpanContext().IsSampled() {
			t.Errorf("span %s is sampled at ratio 0", s.Name())
		}
	}
	for _, s := range exported.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindConsumer:
			actions = append(actions, attrs(s)["waq.policy.action"].AsString())
			if attrs(s)["whatsapp.fbtrace_id"].AsString() == "" {
				t.Errorf("failed attempt without fbtrace_id: %v", attrs(s))
			}
		case trace.SpanKindClient:
			clients++
			if s.Status().Code == codes.Error {
				failedClients++
			}
		case trace.SpanKindProducer:
			t.Errorf("the unsampled producer span was exported")
		}
	}
	sort.Strings(actions)
	if len(actions) != 2 || actions[0] != "retry" || actions[1] != "retry" || clients != 2 || failedClients != 2 {
		t.Errorf("exported attempts %v, %d client spans (%d failed); want the two retries and their failed calls", actions, clients, failedClients)
	}
}
