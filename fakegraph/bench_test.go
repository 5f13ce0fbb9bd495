package fakegraph

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
			req, _ := http.NewRequest(http.MethodPost, "/v27.0/"+testPhone+"/messages", bytes.NewReader(body))
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

// rewind is a request body read again on every iteration.
type rewind struct{ bytes.Reader }

func (*rewind) Close() error { return nil }

// BenchmarkSimulatorCPU compares the CPU one send costs the simulator in
// its normal mode and in the lean one (Config.Fast), one request at a time
// so that ns/op is CPU per request: the handler alone, with the worker's
// usual request (a template send with a job id). The ratio fast/normal is
// what to quote:
//
//	go test -run '^$' -bench SimulatorCPU -benchtime 200000x ./fakegraph/
func BenchmarkSimulatorCPU(b *testing.B) {
	for _, mode := range []struct {
		name string
		fast bool
	}{{"normal", false}, {"fast", true}} {
		b.Run(mode.name, func(b *testing.B) {
			s := New(Config{Fast: mode.fast})
			defer s.Close()
			body := tmpl(testTo, "order_update", "en_US", 1)
			rd := &rewind{}
			req, _ := http.NewRequest(http.MethodPost, "/v27.0/"+testPhone+"/messages", nil)
			req.Body = rd
			req.Header.Set("Authorization", "Bearer tok")
			ids := []string{""}
			req.Header["X-Waq-Job-Id"] = ids
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for i := range b.N {
				rd.Reset(body)
				ids[0] = strconv.Itoa(i)
				clear(w.h)
				s.ServeHTTP(w, req)
				if w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time the process used so far (user and system, the
// garbage collector's included): on a busy machine ns/op is wall time, this
// is not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
