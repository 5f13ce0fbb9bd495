package telemetry

// Failed attempts are always exported; successful ones follow the sampler.
//
// The sampler decides when a span starts, before the outcome is known. So
// the configured sampler (OTEL_TRACES_SAMPLER) is wrapped: what it would
// drop is recorded all the same, unsampled (recordFailures), and at the
// span's end keepFailures passes it on to the exporter only if it failed.
// A sampled span is exported as before; the trace context sent on (the
// traceparent of the Graph API call) keeps the sampler's decision.

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// KeepFailures is the tracer provider options of waq's tracing: spans
// sampled by sampler go to next, and so do failed ones the sampler would
// drop (next is the exporter's batch processor; a test's recorder).
func KeepFailures(next sdktrace.SpanProcessor, sampler sdktrace.Sampler) []sdktrace.TracerProviderOption {
	return []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(keepFailures{next}), sdktrace.WithSampler(recordFailures{sampler})}
}

// recordFailures records, unsampled, every span its sampler drops.
type recordFailures struct{ sdktrace.Sampler }

func (s recordFailures) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	r := s.Sampler.ShouldSample(p)
	if r.Decision == sdktrace.Drop {
		r.Decision = sdktrace.RecordOnly
	}
	return r
}

func (s recordFailures) Description() string {
	return "RecordFailures{" + s.Sampler.Description() + "}"
}

// keepFailures passes sampled spans on to next, and unsampled ones that
// failed (see Failed), marked sampled so that the exporter takes them.
type keepFailures struct{ next sdktrace.SpanProcessor }

func (k keepFailures) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	k.next.OnStart(ctx, s)
}

func (k keepFailures) OnEnd(s sdktrace.ReadOnlySpan) {
	switch {
	case s.SpanContext().IsSampled():
		k.next.OnEnd(s)
	case Failed(s.Status().Code, s.Attributes()):
		k.next.OnEnd(sampledSpan{s})
	}
}

func (k keepFailures) Shutdown(ctx context.Context) error   { return k.next.Shutdown(ctx) }
func (k keepFailures) ForceFlush(ctx context.Context) error { return k.next.ForceFlush(ctx) }

// sampledSpan is an unsampled span presented as sampled to the exporter.
type sampledSpan struct{ sdktrace.ReadOnlySpan }

func (s sampledSpan) SpanContext() trace.SpanContext {
	sc := s.ReadOnlySpan.SpanContext()
	return sc.WithTraceFlags(sc.TraceFlags().WithSampled(true))
}

// failedActions are the attempt outcomes always exported.
var failedActions = map[string]bool{"retry": true, "throttle": true, "park": true, "pause": true}

// Failed says whether a span is a failed attempt, exported whatever the
// sampler says: its status is Error (a failed Graph API call, and the
// attempt that made it, with Meta's fbtrace_id when the answer had one), or
// its action (waq.policy.action) is retry, throttle, park or pause. A
// fbtrace_id alone is not a failure: Meta sends one with successes too.
func Failed(status codes.Code, attrs []attribute.KeyValue) bool {
	if status == codes.Error {
		return true
	}
	for _, kv := range attrs {
		if kv.Key == AttrAction && failedActions[kv.Value.AsString()] {
			return true
		}
	}
	return false
}
