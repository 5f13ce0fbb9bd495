package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSetupTracingOff(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
	} {
		tr, err := SetupTracing(context.Background(), "waq-test", envMap(env))
		if err != nil {
			t.Fatalf("%v: %v", env, err)
		}
		if tr.Exporting {
			t.Errorf("%v: exporting, want no exporter", env)
		}
		_, span := tr.Provider.Tracer("t").Start(context.Background(), "x")
		if span.IsRecording() {
			t.Errorf("%v: spans are recorded with no exporter", env)
		}
		span.End()
	}
}

func TestSetupTracingBadSettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_HEADERS": "secret-token-value"}, "OTEL_EXPORTER_OTLP_HEADERS"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
	} {
		_, err := SetupTracing(context.Background(), "waq-test", envMap(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-token-value") {
			t.Errorf("the error shows a header value: %v", err)
		}
	}
}

// TestSetupTracingExportsOverOTLPHTTP: the endpoint, headers, service name
// and resource attributes come from the given environment, not the
// process's, and a span reaches an OTLP/HTTP receiver at /v1/traces.
func TestSetupTracingExportsOverOTLPHTTP(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []*coltrace.ExportTraceServiceRequest
		errs []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("X-Tenant") != "acme corp" {
			errs = append(errs, r.URL.Path+" tenant="+r.Header.Get("X-Tenant"))
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			errs = append(errs, err.Error())
		}
		reqs = append(reqs, &req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()

	tr, err := SetupTracing(context.Background(), "waq-test", envMap(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL + "/",
		"OTEL_EXPORTER_OTLP_HEADERS":  "X-Tenant=acme%20corp",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment=test,service.name=ignored",
		"OTEL_SERVICE_NAME":           "waq-worker-a",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Exporting {
		t.Fatal("not exporting with an endpoint set")
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "attempt")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 || len(reqs) != 1 {
		t.Fatalf("receiver got %d exports, problems %v", len(reqs), errs)
	}
	rs := reqs[0].GetResourceSpans()
	if len(rs) != 1 || len(rs[0].GetScopeSpans()) != 1 || rs[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "attempt" {
		t.Fatalf("export = %v", reqs[0])
	}
	attrs := map[string]string{}
	for _, kv := range rs[0].GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if attrs["service.name"] != "waq-worker-a" || attrs["deployment.environment"] != "test" || attrs["host.name"] == "" {
		t.Errorf("resource = %v", attrs)
	}
}

func TestParseSampler(t *testing.T) {
	for _, tc := range []struct{ name, arg, want string }{
		{"", "", "ParentBased{root:AlwaysOnSampler"},
		{"always_off", "", "AlwaysOffSampler"},
		{"traceidratio", "0.25", "TraceIDRatioBased{0.25}"},
		{"parentbased_traceidratio", "0.5", "ParentBased{root:TraceIDRatioBased{0.5}"},
	} {
		s, err := parseSampler(tc.name, tc.arg)
		if err != nil || !strings.HasPrefix(s.Description(), tc.want) {
			t.Errorf("%q %q: %v %v, want %s", tc.name, tc.arg, s, err, tc.want)
		}
	}
}
