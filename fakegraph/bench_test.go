package fakegraph

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/waqhq/waq/graph"
)

// discard is a ResponseWriter that keeps nothing, so the handler benchmark
// measures the simulator alone.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkMessagesHandler is the messages endpoint's own cost per send
// (a template send with a job id, the worker's usual request).
func BenchmarkMessagesHandler(b *testing.B) {
	s := New(Config{SendsLog: 1000})
	defer s.Close()
	body := tmpl(testTo, "order_update", "en_US", 1)
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, "/v25.0/"+testPhone+"/messages", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("X-Waq-Job-Id", strconv.FormatInt(seq.Add(1), 10))
			clear(w.h)
			s.ServeHTTP(w, req)
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

// BenchmarkMessagesHTTP is a send through loopback HTTP and the project's
// Graph API client, as the worker makes it.
func BenchmarkMessagesHTTP(b *testing.B) {
	e := setup(b, Config{})
	body := tmpl(testTo, "order_update", "en_US", 1)
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := e.graph.Send(context.Background(), graph.SendRequest{PhoneNumberID: testPhone, Token: "tok",
				Message: body, JobID: strconv.FormatInt(seq.Add(1), 10)})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
