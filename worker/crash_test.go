package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// crashPolicy retries fast so that a run of a few thousand jobs with
// transient failures ends in seconds.
const crashPolicy = `
defaults:
  max_attempts: 6
  backoff: {initial: 50ms, multiplier: 2, max: 400ms, jitter: 0.2}
rules:
  - codes: [131000]
    action: retry
    backoff: {initial: 50ms, multiplier: 2, max: 400ms, jitter: 0.2}
  - transport: true
    action: retry
`

// TestCrashLosesNothing is the proof of SPEC §2: worker processes killed
// with SIGKILL at random moments (at least 20 times), the NATS server and
// Redis each killed and restarted once mid-run, and still every published
// job ends with exactly one outcome. It reports the duplicate sends the
// simulator saw: only a worker that dies between the API's answer and the
// ledger's write can cause one.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs for about a minute")
	}
	const (
		jobs         = 2400
		kills        = 24
		workers      = 2
		concurrency  = 16
		publishEvery = 2 * time.Millisecond
	)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	t.Logf("seed %d", seed)

	waqBin, _ := testenv.Binaries(t)
	natsProc, natsURL := testenv.StartNATSProcess(t)
	rds := testenv.StartRedis(t)

	code := fakegraph.Code
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{token}, SendsLog: -1, Scenario: &fakegraph.Scenario{
		Latency: fakegraph.Latency{Base: fakegraph.Duration(2 * time.Millisecond), Jitter: fakegraph.Duration(15 * time.Millisecond)},
		Random: []fakegraph.RandomFailure{
			{Rate: 0.15, Respond: fakegraph.Response{Error: code(131000)}},
			{Rate: 0.03, Respond: fakegraph.Response{Error: code(131047)}},
			{Rate: 0.02, Respond: fakegraph.Response{Error: code(131026)}},
			{Rate: 0.01, Respond: fakegraph.Response{Kind: fakegraph.KindHTML}},
		},
	}})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })

	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(crashPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := make([]*testenv.Process, workers)
	for i := range procs {
		procs[i] = &testenv.Process{
			Name: "worker-" + strconv.Itoa(i), Path: waqBin, Args: []string{"worker"},
			Log: filepath.Join(dir, fmt.Sprintf("worker-%d.log", i)),
			Env: []string{
				"WAQ_NATS_URL=" + natsURL, "WAQ_REDIS_URL=" + rds.URL, "WAQ_GRAPH_URL=" + srv.URL,
				"WAQ_ACCESS_TOKEN=" + token, "WAQ_POLICY_FILE=" + policyFile, "WAQ_HTTP_ADDR=127.0.0.1:0",
				"WAQ_CONCURRENCY=" + strconv.Itoa(concurrency), "WAQ_ACK_WAIT=3s", "WAQ_GRAPH_TIMEOUT=1s",
				"WAQ_SHUTDOWN_TIMEOUT=2s", "WAQ_LOG_LEVEL=warn", "OTEL_TRACES_EXPORTER=none",
			},
		}
		procs[i].Start(t)
		p := procs[i]
		t.Cleanup(func() { p.Kill(syscall.SIGKILL, time.Second) })
	}

	// The publisher has its own connection and keeps publishing through the
	// NATS restart, publishing an id again until JetStream acknowledges it.
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		_, err := js.Stream(context.Background(), "WAQ_SEND")
		return err
	})
	producer := queue.NewProducer(js, queue.ProducerOptions{})
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%05d", i)
	}
	var published atomic.Int64
	pubErr := make(chan error, 1)
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	pace := time.NewTicker(publishEvery) // a steady flow of jobs, not a burst
	defer pace.Stop()
	go func() {
		defer pubWG.Done()
		for i, id := range ids {
			job := textJob(id, fmt.Sprintf("1555%07d", i))
			// Ten business numbers, so that pacing (80 per second each)
			// does not set the pace of the test.
			job.PhoneNumberID = fmt.Sprintf("10654035224290%d", i%10)
			if err := publishUntilAcked(producer, job); err != nil {
				pubErr <- err
				return
			}
			published.Add(1)
			<-pace.C
		}
	}()

	// Chaos: kill a worker at a random moment, restart it; once, the NATS
	// server; once, Redis.
	for k := 1; k <= kills; k++ {
		<-time.After(time.Duration(100+rng.IntN(300)) * time.Millisecond) // a random moment
		p := procs[rng.IntN(workers)]
		p.Kill(syscall.SIGKILL, time.Second)
		switch k {
		case kills / 3:
			natsProc.Kill(syscall.SIGKILL, time.Second)
			natsProc.Start(t)
			testenv.WaitNATS(t, natsURL)
			t.Logf("kill %d: NATS server killed and restarted (%d published so far)", k, published.Load())
		case 2 * kills / 3:
			rds.Stop()
			rds.Start(t)
			t.Logf("kill %d: Redis killed and restarted (%d published so far)", k, published.Load())
		}
		p.Start(t)
	}
	pubWG.Wait()
	select {
	case err := <-pubErr:
		t.Fatal(err)
	default:
	}
	t.Logf("published %d jobs; %d worker kills done", published.Load(), kills)

	rdb := rds.Client(t)
	led := ledger.New(rdb, ledger.Options{})
	dlq := deadletter.New(rdb, deadletter.Options{})
	sent, parked := waitOutcomes(t, 120*time.Second, led, dlq, ids, procs...)
	// Once every job has its outcome, every message is acknowledged.
	waitStreamDrained(t, js, 30*time.Second)
	st := fake.Stats(false)
	acceptedThenParked := countAcceptedThenParked(t, fake, led, ids)
	t.Logf("crash test: %d jobs, %d worker SIGKILLs, 1 NATS and 1 Redis restart: %d sent, %d parked, %d requests to the API; "+
		"duplicate sends: %d (%d jobs); jobs accepted by the API, interrupted, then parked on a later failed send: %d",
		jobs, kills, sent, parked, st.Requests, st.DuplicateSends, st.Duplicates, acceptedThenParked)
	if sent+parked != jobs {
		t.Fatalf("%d outcomes for %d jobs", sent+parked, jobs)
	}
	if st.AcceptedJobs != int64(sent+acceptedThenParked) {
		t.Errorf("the simulator accepted %d distinct jobs; the ledger has %d sent and %d accepted-then-parked", st.AcceptedJobs, sent, acceptedThenParked)
	}
	// A kill can duplicate at most the sends in flight in the killed process.
	if st.DuplicateSends > int64(kills*concurrency) {
		t.Errorf("%d duplicate sends: more than %d kills × %d in flight could cause", st.DuplicateSends, kills, concurrency)
	}
}
