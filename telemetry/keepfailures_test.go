package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// exportedNames runs spans through SetupTracing with env, against an
// OTLP/HTTP receiver, and returns the names of the spans it received.
func exportedNames(t *testing.T, env map[string]string, spans func(tr *Tracing)) []string {
	t.Helper()
	var mu sync.Mutex
	var names []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("receiver: %v", err)
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
					if s.GetFlags()&0x1 == 0 && s.GetFlags() != 0 {
						t.Errorf("span %s exported with flags %x", s.GetName(), s.GetFlags())
					}
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = srv.URL
	tr, err := SetupTracing(context.Background(), "waq-test", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	spans(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(names)
	return names
}

// attempts ends one span per outcome as the worker does: a success, a
// retry whose Graph API call failed (with its child span), a park without a
// send, a hold (throttle) and a wait before any send.
func attempts(tr *Tracing) {
	tracer := tr.Provider.Tracer("t")
	ctx := context.Background()
	_, ok := tracer.Start(ctx, "sent")
	ok.SetAttributes(AttrAction.String("sent"), AttrFBTraceID.String("AbC"))
	ok.End()

	rctx, retry := tracer.Start(ctx, "retry")
	_, post := tracer.Start(rctx, "retry POST")
	post.SetStatus(codes.Error, "131000")
	post.End()
	retry.SetStatus(codes.Error, "131000")
	retry.SetAttributes(AttrAction.String("retry"), AttrFBTraceID.String("Xyz"))
	retry.End()

	_, park := tracer.Start(ctx, "park")
	park.SetAttributes(AttrAction.String("park"))
	park.End()
	_, hold := tracer.Start(ctx, "throttle")
	hold.SetAttributes(AttrAction.String("throttle"))
	hold.End()
	_, pause := tracer.Start(ctx, "pause")
	pause.SetAttributes(AttrAction.String("pause"))
	pause.End()
	_, wait := tracer.Start(ctx, "wait")
	wait.SetAttributes(AttrAction.String("wait"))
	wait.End()
}

// TestFailuresExportedAtRatioZero: with a sampler that keeps nothing, every
// failed attempt is exported all the same, successes and waits are not,
// and what goes on (the span context) still says unsampled.
func TestFailuresExportedAtRatioZero(t *testing.T) {
	for _, sampler := range []string{"traceidratio", "parentbased_traceidratio", "always_off"} {
		got := exportedNames(t, map[string]string{"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0"}, func(tr *Tracing) {
			attempts(tr)
			_, s := tr.Provider.Tracer("t").Start(context.Background(), "probe")
			if s.SpanContext().IsSampled() || !s.IsRecording() {
				t.Errorf("%s: sampled %t, recording %t: want recorded, unsampled", sampler, s.SpanContext().IsSampled(), s.IsRecording())
			}
			s.End()
		})
		want := []string{"park", "pause", "retry", "retry POST", "throttle"}
		if !slices.Equal(got, want) {
			t.Errorf("%s at 0: exported %v, want %v", sampler, got, want)
		}
	}
}

// TestSuccessesFollowTheSampler: at the default (parentbased_always_on)
// every span is exported, once.
func TestSuccessesFollowTheSampler(t *testing.T) {
	got := exportedNames(t, map[string]string{}, func(tr *Tracing) { attempts(tr) })
	want := []string{"park", "pause", "retry", "retry POST", "sent", "throttle", "wait"}
	if !slices.Equal(got, want) {
		t.Errorf("exported %v, want %v", got, want)
	}
}

func TestFailed(t *testing.T) {
	for _, tc := range []struct {
		status codes.Code
		attrs  []attribute.KeyValue
		want   bool
	}{
		{codes.Unset, nil, false},
		{codes.Ok, []attribute.KeyValue{AttrAction.String("sent")}, false},
		{codes.Unset, []attribute.KeyValue{AttrFBTraceID.String("x")}, false},
		{codes.Unset, []attribute.KeyValue{AttrAction.String("wait")}, false},
		{codes.Unset, []attribute.KeyValue{AttrAction.Int(3)}, false},
		{codes.Unset, []attribute.KeyValue{AttrAction.String("RETRY")}, false},
		{codes.Error, nil, true},
		{codes.Unset, []attribute.KeyValue{AttrMessageID.String("j"), AttrAction.String("pause")}, true},
	} {
		if got := Failed(tc.status, tc.attrs); got != tc.want {
			t.Errorf("Failed(%v, %v) = %t", tc.status, tc.attrs, got)
		}
	}
}
