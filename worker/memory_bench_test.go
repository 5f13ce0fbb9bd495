package worker_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// BenchmarkSendsInFlight measures what a send in flight holds in memory:
// one worker with WAQ_CONCURRENCY sends (WAQ_BENCH_INFLIGHT, 2,048 by
// default) against the simulator over h2c, as waq bench runs it, answering
// after 10 s, so that every send is in its HTTP round trip at once whatever
// the machine's load. With all of them there it reports, per send in
// flight, the goroutine stacks (stack-B/send) and the live heap after a
// collection (heap-B/send) this process gained since before the jobs, and
// goroutines per send. The process holds the simulator too (its handler
// goroutine per request): the same for any worker code, so two commits'
// figures compare the worker's.
//
//	go test -run '^$' -bench BenchmarkSendsInFlight -benchtime 1x ./worker/
func BenchmarkSendsInFlight(b *testing.B) {
	n := 2048
	if v, err := strconv.Atoi(os.Getenv("WAQ_BENCH_INFLIGHT")); err == nil && v > 0 {
		n = v
	}
	numbersFile := filepath.Join(b.TempDir(), "numbers.yaml")
	err := os.WriteFile(numbersFile, []byte("phone_numbers:\n  - phone_number_id: \""+pn+"\"\n    waba_id: \"102290129340398\"\n    mps: 10000\n"), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		e := setup(b)
		srv := httptest.NewUnstartedServer(e.fake)
		srv.Config.Protocols = fakegraph.Protocols()
		srv.Start()
		b.Cleanup(srv.Close)
		sc := e.fake.Scenario()
		sc.Latency = fakegraph.Latency{Base: fakegraph.Duration(10 * time.Second)}
		if err := e.fake.SetScenario(&sc); err != nil {
			b.Fatal(err)
		}
		cfg := e.config()
		cfg.GraphURL, cfg.GraphH2C = srv.URL, true
		cfg.AccessToken, cfg.PhoneNumbersFile = token, numbersFile
		cfg.Concurrency = n
		cfg.GraphTimeout, cfg.AckWait = 30*time.Second, time.Minute
		cfg.LogLevel = "warn"
		w := e.startWith(b, cfg, nil, worker.Options{})
		// The worker's own start-up is not counted.
		before := memNow()
		publishJobs(b, e.js, "mem", n)
		testenv.Eventually(b, 2*time.Minute, func() error {
			if v := gauge(w.w.Metrics().InFlight); v < float64(n) {
				return fmt.Errorf("%v sends in flight, want %d", v, n)
			}
			return nil
		})
		after := memNow()
		per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
		b.ReportMetric(per(after.stack, before.stack), "stack-B/send")
		b.ReportMetric(per(after.heap, before.heap), "heap-B/send")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/send")
		if err := w.stop(); err != nil {
			b.Fatal(err)
		}
	}
}

type memFigures struct {
	stack, heap uint64
	goroutines  int
}

// memNow is the process's goroutine stacks and live heap, after a
// collection.
func memNow() memFigures {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memFigures{stack: m.StackInuse, heap: m.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}
