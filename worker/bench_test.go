package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

// BenchmarkWorkerTracing measures what tracing costs: jobs per second
// through one worker (128 slots) against the in-process simulator, with
// tracing off and on at full sampling, exporting over OTLP/HTTP (the
// production path: SetupTracing, batch processor, protobuf) to a loopback
// receiver that drops what it gets. Every run starts on fresh servers
// (NATS, Redis, simulator) with the same settings, so the two throughputs'
// ratio is the cost. Besides jobs/s it reports the process's CPU time per
// job (cpu-µs/job), steadier than the wall clock on a busy machine.
//
// One op is one job: b.N jobs are published first, then the clock runs from
// the worker's start until the stream is empty (every job sent and
// acknowledged). The simulator answers at once, so the worker's own cost
// per job is all there is to measure: with Meta's real latency (100 ms and
// more) the share of tracing is smaller still.
//
//	WAQ_BENCH_ROUNDS=5 go test -run '^$' -bench BenchmarkWorkerTracing -benchtime 5000x ./worker/
//
// WAQ_BENCH_ROUNDS repeats the pair, alternating off and on (Go names the
// repeats tracing=off#01, ...); -count would run all the offs first.
func BenchmarkWorkerTracing(b *testing.B) {
	// A high rate for the number: the gate's pacing (80/s by default) is
	// not what is measured here.
	numbersFile := filepath.Join(b.TempDir(), "numbers.yaml")
	err := os.WriteFile(numbersFile, []byte("phone_numbers:\n  - phone_number_id: \""+pn+"\"\n    waba_id: \"102290129340398\"\n    mps: 10000\n"), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	var exported atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		exported.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(receiver.Close)

	// Rounds alternate the two, so that a machine whose load changes (other
	// builds, other benchmarks) weighs on both alike.
	rounds := 1
	if v, err := strconv.Atoi(os.Getenv("WAQ_BENCH_ROUNDS")); err == nil && v > 1 {
		rounds = v
	}
	for i := 0; i < 2*rounds; i++ {
		mode := []string{"off", "on"}[i%2]
		b.Run("tracing="+mode, func(b *testing.B) {
			// Fresh servers for every run: the ledger, the stream's store
			// and the simulator's records grow with every job, and a run
			// must not pay for the runs before it.
			e := setup(b)
			opts := worker.Options{}
			var tracing *telemetry.Tracing
			if mode == "on" {
				var err error
				tracing, err = telemetry.SetupTracing(context.Background(), "waq-bench", func(k string) string {
					return map[string]string{
						"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.URL,
						"OTEL_TRACES_SAMPLER":         "always_on",
					}[k]
				})
				if err != nil || !tracing.Exporting {
					b.Fatalf("tracing: %v", err)
				}
				opts.TracerProvider = tracing.Provider
			}
			// Jobs go on the stream before the worker starts, published
			// asynchronously in windows, so that publishing is not timed.
			publishJobs(b, e.js, "bench", b.N)
			cfg := e.config()
			cfg.AccessToken, cfg.PhoneNumbersFile = token, numbersFile
			cfg.Concurrency = 128
			cfg.LogLevel = "info"

			b.ResetTimer()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cpu0 := cpuTime(b)
			start := time.Now()
			w := e.startWith(b, cfg, nil, opts)
			waitStreamEmpty(b, e, 10*time.Minute)
			elapsed := time.Since(start)
			cpu := cpuTime(b) - cpu0
			runtime.ReadMemStats(&m1)
			b.StopTimer()

			if err := w.stop(); err != nil {
				b.Fatal(err)
			}
			if tracing != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := tracing.Shutdown(ctx); err != nil {
					b.Errorf("flush: %v", err)
				}
				cancel()
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/job")
			// Allocations of the whole process (the embedded NATS server and
			// the simulator's too, the same in every run): steadier still.
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/job")
		})
	}
	b.Logf("OTLP bytes exported: %d", exported.Load())
}

// cpuTime is the CPU time (user and system) this process has used: the
// worker, the embedded NATS server and the simulator, not redis-server. On a
// shared machine it varies far less than the wall clock, and what tracing
// adds to it is tracing's cost.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitStreamEmpty polls the stream every few milliseconds (a benchmark
// cannot afford Eventually's growing pauses) until every job is
// acknowledged, within timeout.
func waitStreamEmpty(b *testing.B, e *env, timeout time.Duration) {
	b.Helper()
	s, err := e.js.Stream(context.Background(), "WAQ_SEND")
	if err != nil {
		b.Fatal(err)
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(timeout)
	for {
		info, err := s.Info(context.Background())
		if err == nil && info.State.Msgs == 0 {
			return
		}
		select {
		case <-t.C:
		case <-deadline:
			b.Fatalf("stream not empty within %s (%v)", timeout, err)
		}
	}
}

// publishJobs puts n text jobs (ids prefix-0, prefix-1, …, to distinct
// recipients) on the stream, published asynchronously in windows below the
// client's limit of async publishes in flight (4000).
func publishJobs(b *testing.B, js jetstream.JetStream, prefix string, n int) {
	b.Helper()
	const window = 1000
	for i := 0; i < n; i += window {
		var futures []jetstream.PubAckFuture
		for j := i; j < min(i+window, n); j++ {
			id := fmt.Sprintf("%s-%d", prefix, j)
			data, err := json.Marshal(textJob(id, fmt.Sprintf("1555%07d", j%10_000_000)))
			if err != nil {
				b.Fatal(err)
			}
			msg := nats.NewMsg("waq.send." + pn)
			msg.Data = data
			msg.Header.Set(queue.HeaderMsgID, id)
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case err := <-f.Err():
				b.Fatal(err)
			default:
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("async publishes not acknowledged within a minute")
		}
	}
}
