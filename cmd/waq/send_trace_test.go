package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/waqhq/waq/internal/testenv"
)

// TestSendTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set, `waq send` starts
// the job's trace: its PRODUCER span is exported before the command
// returns, and the job carries the span's context in its traceparent
// header, which the worker's attempt spans continue.
func TestSendTraces(t *testing.T) {
	var (
		mu    sync.Mutex
		spans []string // trace id/span id of every exported "publish" span
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err == nil {
			mu.Lock()
			for _, rs := range req.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					for _, s := range ss.GetSpans() {
						if strings.HasPrefix(s.GetName(), "publish ") {
							spans = append(spans, hex.EncodeToString(s.GetTraceId())+"-"+hex.EncodeToString(s.GetSpanId()))
						}
					}
				}
			}
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer receiver.Close()

	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	vars := map[string]string{"WAQ_NATS_URL": n.URL, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.URL}
	code, _, stderr := runCmd(t, vars, "", "send", "--phone-number-id", "106540352242922", "--to", "15551234567", "--text", "hi")
	if code != 0 {
		t.Fatalf("code %d: %s", code, stderr)
	}
	s, err := js.Stream(context.Background(), "WAQ_SEND")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(context.Background(), "waq.send.106540352242922")
	if err != nil {
		t.Fatal(err)
	}
	tp := raw.Header.Get("traceparent") // 00-{trace id}-{span id}-01
	parts := strings.Split(tp, "-")
	mu.Lock()
	defer mu.Unlock()
	if len(parts) != 4 || parts[3] != "01" || len(spans) != 1 || spans[0] != parts[1]+"-"+parts[2] {
		t.Fatalf("traceparent %q, exported publish spans %v: want the one span, sampled, in the header", tp, spans)
	}
}
