package worker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

// jaegerModule is the module of the Jaeger binary, pinned in tools/go.mod
// (not in waq's own go.mod: its dependencies are many and only this test
// needs them).
const jaegerModule = "github.com/jaegertracing/jaeger"

// TestJaegerFindsParkedJob exports a worker's spans over OTLP/HTTP, as
// configured by the OTEL_* variables, to a real Jaeger, and finds the
// parked job's trace through Jaeger's query API by the tag an operator
// copies from a Meta support ticket: whatsapp.fbtrace_id.
func TestJaegerFindsParkedJob(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the Jaeger end-to-end test (it builds Jaeger from tools/go.mod once, about 5 minutes on 2 cores, then runs it); run without -short, or set WAQ_JAEGER to a jaeger binary")
	}
	j := startJaeger(t, jaegerBinary(t))

	e := setup(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "late"}, Respond: fakegraph.Response{Error: fakegraph.Code(131047)}}); err != nil {
		t.Fatal(err)
	}
	service := fmt.Sprintf("waq-e2e-%d", time.Now().UnixNano())
	tracing, err := telemetry.SetupTracing(context.Background(), "waq-worker", func(k string) string {
		return map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": j.otlp,
			"OTEL_SERVICE_NAME":           service,
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tracing.Exporting {
		t.Fatal("SetupTracing: not exporting with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	t.Cleanup(func() { _ = tracing.Shutdown(context.Background()) })
	producer := queue.NewProducer(e.js, queue.ProducerOptions{TracerProvider: tracing.Provider})
	r := e.startWith(t, e.config(), nil, worker.Options{TracerProvider: tracing.Provider})
	if _, err := producer.Publish(context.Background(), textJob("late", "15551234567")); err != nil {
		t.Fatal(err)
	}
	entry := e.waitParked(t, 20*time.Second, "late")
	if entry.LastError == nil || entry.LastError.FBTraceID == "" || entry.TraceID == "" {
		t.Fatalf("entry without fbtrace_id or trace id: %+v", entry)
	}
	// The attempt span ends after the ack: stop the worker so that every
	// span has ended, then flush them to Jaeger.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := tracing.Shutdown(fctx); err != nil {
		t.Fatalf("flush to jaeger: %v", err)
	}

	traces := j.find(t, service, map[string]string{"whatsapp.fbtrace_id": entry.LastError.FBTraceID})
	if len(traces) != 1 {
		t.Fatalf("jaeger found %d traces with whatsapp.fbtrace_id=%s, want 1", len(traces), entry.LastError.FBTraceID)
	}
	tr := traces[0]
	if tr.TraceID != entry.TraceID {
		t.Errorf("jaeger's trace %s, the dead-letter entry's %s", tr.TraceID, entry.TraceID)
	}
	var attempt, producerSpan, client *jaegerSpan
	for i := range tr.Spans {
		s := &tr.Spans[i]
		switch s.tag("span.kind") {
		case "consumer":
			attempt = s
		case "producer":
			producerSpan = s
		case "client":
			client = s
		}
	}
	if attempt == nil || producerSpan == nil || client == nil {
		t.Fatalf("trace %s lacks a consumer, producer or client span: %+v", tr.TraceID, tr.Spans)
	}
	for k, want := range map[string]string{
		"waq.dlq.reason":       "window",
		"waq.policy.action":    "park",
		"whatsapp.fbtrace_id":  entry.LastError.FBTraceID,
		"whatsapp.error.code":  "131047",
		"messaging.message.id": "late",
		"otel.status_code":     "ERROR",
	} {
		if got := attempt.tag(k); got != want {
			t.Errorf("attempt span %s = %q, want %q", k, got, want)
		}
	}
	if attempt.parent() != producerSpan.SpanID || client.parent() != attempt.SpanID {
		t.Errorf("parents: attempt under %s (producer %s), client under %s (attempt %s)", attempt.parent(), producerSpan.SpanID, client.parent(), attempt.SpanID)
	}
	// An operator's other search: every job parked as window.
	if byReason := j.find(t, service, map[string]string{"waq.dlq.reason": "window"}); len(byReason) != 1 || byReason[0].TraceID != tr.TraceID {
		t.Errorf("search by waq.dlq.reason=window found %d traces", len(byReason))
	}
}

// jaegerBinary returns a Jaeger binary: $WAQ_JAEGER, or one built from the
// version tools/go.mod pins, cached in the user cache directory so that the
// build (minutes) is paid once per machine and version.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WAQ_JAEGER"); p != "" {
		return p
	}
	tools := filepath.Join(testenv.ModuleRoot(), "tools")
	version, err := moduleVersion(filepath.Join(tools, "go.mod"), jaegerModule)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "waq")
	bin := filepath.Join(dir, "jaeger-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Bounded by the test's own deadline, less a margin for the test.
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-2*time.Minute))
		defer cancel()
	}
	// Built under a temporary name and renamed: a concurrent or interrupted
	// build never leaves a half-written binary under the cached name.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, jaegerModule+"/cmd/jaeger")
	cmd.Dir = tools
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("build jaeger %s: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built jaeger %s in %s (cached at %s)", version, time.Since(start).Round(time.Second), bin)
	return bin
}

// moduleVersion reads the version go.mod requires of module.
func moduleVersion(gomod, module string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}

// jaeger is a running Jaeger: its OTLP/HTTP receiver and query API.
type jaeger struct {
	otlp  string // base URL for OTEL_EXPORTER_OTLP_ENDPOINT
	query string // base URL of the query API
}

// startJaeger runs Jaeger (v2, an OpenTelemetry Collector distribution)
// with in-memory storage, the OTLP/HTTP receiver and the query API on free
// loopback ports; its own telemetry is off, so that it opens no other port.
func startJaeger(t *testing.T, bin string) *jaeger {
	t.Helper()
	dir := t.TempDir()
	otlpPort, queryPort, grpcPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	conf := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, queryPort, grpcPort, otlpPort)
	path := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &testenv.Process{Name: "jaeger", Path: bin, Args: []string{"--config", path}, Log: filepath.Join(dir, "jaeger.log")}
	p.Start(t)
	t.Cleanup(func() { p.Kill(syscall.SIGTERM, 5*time.Second) })
	j := &jaeger{otlp: fmt.Sprintf("http://127.0.0.1:%d", otlpPort), query: fmt.Sprintf("http://127.0.0.1:%d", queryPort)}
	testenv.Eventually(t, 60*time.Second, func() error {
		if !p.Running() {
			log, _ := os.ReadFile(p.Log)
			t.Fatalf("jaeger exited at start:\n%s", log)
		}
		resp, err := http.Get(j.query + "/api/services")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("query api: %s", resp.Status)
		}
		// The receiver answers once the pipeline runs; an empty POST is
		// refused with 4xx, never a connection error.
		resp, err = http.Post(j.otlp+"/v1/traces", "application/x-protobuf", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return j
}

// jaegerTrace and jaegerSpan are the parts of the query API's answer
// (GET /api/traces) the test reads.
type jaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []jaegerSpan `json:"spans"`
}

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s *jaegerSpan) tag(key string) string {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return fmt.Sprint(kv.Value)
		}
	}
	return ""
}

func (s *jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// find searches service's traces of the last hour by tags, waiting for
// Jaeger to store what was exported (its pipeline batches).
func (j *jaeger) find(t *testing.T, service string, tags map[string]string) []jaegerTrace {
	t.Helper()
	tj, _ := json.Marshal(tags)
	q := url.Values{"service": {service}, "tags": {string(tj)}, "lookback": {"1h"}, "limit": {"20"}}
	var out struct {
		Data   []jaegerTrace `json:"data"`
		Errors []any         `json:"errors"`
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(j.query + "/api/traces?" + q.Encode())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET /api/traces: %s %s", resp.Status, body)
		}
		out.Data = nil
		if err := json.Unmarshal(body, &out); err != nil {
			return err
		}
		if len(out.Data) == 0 {
			return errors.New("no trace with " + string(tj) + " yet")
		}
		return nil
	})
	return out.Data
}
