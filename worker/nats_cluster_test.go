package worker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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

// TestNATSClusterLeaderKilled is the proof of SPEC §2 past one NATS
// server: three servers clustered on loopback, the job stream with three
// replicas, two worker processes connected to all three, at least 5,000
// jobs of a mixed load, and the server that leads the stream killed
// (SIGKILL) mid-run and restarted later. Every job ends with exactly one
// outcome; the duplicate sends the simulator saw are reported.
func TestNATSClusterLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("NATS cluster test: about 30 seconds")
	}
	const (
		jobs       = 5000
		numbers    = 10
		publishers = 8
		workers    = 2
	)
	testenv.Binaries(t) // built once per test process; not part of the time below
	start := time.Now()
	cluster := testenv.StartNATSCluster(t, 3)
	rds := testenv.StartRedis(t)
	t.Logf("3 NATS servers and Redis ready in %s", time.Since(start).Round(time.Millisecond))

	code := fakegraph.Code
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{token}, SendsLog: -1, Scenario: &fakegraph.Scenario{
		Latency: fakegraph.Latency{Base: fakegraph.Duration(time.Millisecond), Jitter: fakegraph.Duration(10 * time.Millisecond)},
		Random: []fakegraph.RandomFailure{
			{Rate: 0.15, Respond: fakegraph.Response{Error: code(131000)}},
			{Rate: 0.03, Respond: fakegraph.Response{Error: code(131047)}},
			{Rate: 0.02, Respond: fakegraph.Response{Error: code(131026)}},
			{Rate: 0.01, Respond: fakegraph.Response{Kind: fakegraph.KindHTML}},
		},
	}})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })

	// Ten numbers at 1,000 messages per second: the cluster, not the
	// pacing, sets the pace.
	var file strings.Builder
	file.WriteString("phone_numbers:\n")
	for i := range numbers {
		fmt.Fprintf(&file, "  - phone_number_id: \"%s\"\n    waba_id: \"102290129340398\"\n    mps: 1000\n", clusterNumber(i))
	}
	numbersFile := filepath.Join(t.TempDir(), "numbers.yaml")
	if err := os.WriteFile(numbersFile, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := make([]*testenv.Process, workers)
	addrs := make([]string, workers)
	for i := range procs {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		addrs[i] = addr
		procs[i] = startWorkerProcess(t, fmt.Sprintf("worker-%d", i),
			"WAQ_NATS_URL="+cluster.URL, "WAQ_STREAM_REPLICAS=3", "WAQ_REDIS_URL="+rds.URL, "WAQ_GRAPH_URL="+srv.URL,
			"WAQ_PHONE_NUMBERS_FILE="+numbersFile, "WAQ_CONCURRENCY=32", "WAQ_ACK_WAIT=5s", "WAQ_HTTP_ADDR="+addr)
	}
	// Kill nothing before the workers have set up: a new R3 stream needs
	// all three servers.
	for i, p := range procs {
		waitReady(t, p, "http://"+addrs[i]+"/readyz")
	}

	nc, err := nats.Connect(cluster.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	leader := cluster.StreamLeader(t, js, "WAQ_SEND")
	info := streamInfo(t, js)
	if info.Config.Replicas != 3 {
		t.Fatalf("stream has %d replicas, want 3", info.Config.Replicas)
	}
	t.Logf("workers ready after %s; stream leader %s", time.Since(start).Round(time.Millisecond), leader)

	// Several publishers, each publishing a job again until JetStream
	// acknowledges it (the same id: de-duplicated), through the kill.
	producer := queue.NewProducer(js, queue.ProducerOptions{})
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("nc-%05d", i)
	}
	var published atomic.Int64
	pubErr := make(chan error, publishers)
	var pubWG sync.WaitGroup
	for p := range publishers {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			for i := p; i < jobs; i += publishers {
				job := textJob(ids[i], fmt.Sprintf("1555%07d", i))
				job.PhoneNumberID = clusterNumber(i)
				if err := publishUntilAcked(producer, job); err != nil {
					pubErr <- err
					return
				}
				published.Add(1)
			}
		}()
	}

	// Chaos: once a third of the jobs is published, kill the stream's
	// leader; restart it a few seconds later.
	testenv.Eventually(t, 60*time.Second, func() error {
		if n := published.Load(); n < jobs/3 {
			return fmt.Errorf("%d published", n)
		}
		return nil
	})
	leader = cluster.StreamLeader(t, js, "WAQ_SEND")
	victim, victimURL := cluster.Server(leader)
	victim.Kill(syscall.SIGKILL, time.Second)
	killedAt := time.Now()
	t.Logf("stream leader %s killed (SIGKILL) after %d jobs published, %s after the start", leader, published.Load(), time.Since(start).Round(time.Millisecond))
	next := cluster.StreamLeader(t, js, "WAQ_SEND")
	t.Logf("new stream leader %s after %s", next, time.Since(killedAt).Round(time.Millisecond))
	<-time.After(3 * time.Second) // the cluster runs on two servers for a while
	victim.Start(t)
	cluster.WaitReady(t, victimURL)
	t.Logf("%s restarted, %d jobs published", leader, published.Load())

	pubWG.Wait()
	select {
	case err := <-pubErr:
		t.Fatal(err)
	default:
	}
	t.Logf("%d jobs published after %s", published.Load(), time.Since(start).Round(time.Millisecond))

	rdb := rds.Client(t)
	led := ledger.New(rdb, ledger.Options{})
	dlq := deadletter.New(rdb, deadletter.Options{})
	sent, parked := waitOutcomes(t, 120*time.Second, led, dlq, ids, procs...)
	t.Logf("every job has its outcome after %s", time.Since(start).Round(time.Millisecond))
	// Once every job has its outcome, every message is acknowledged, and
	// the restarted server has caught up.
	testenv.Eventually(t, 60*time.Second, func() error {
		info := streamInfo(t, js)
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d messages unacknowledged", info.State.Msgs)
		}
		if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("stream cluster %+v: want a leader and two replicas", info.Cluster)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s is not current", r.Name)
			}
		}
		return nil
	})

	st := fake.Stats(false)
	acceptedThenParked := countAcceptedThenParked(t, fake, led, ids)
	t.Logf("NATS cluster: %d jobs, stream leader %s killed and restarted: %d sent, %d parked, %d requests to the API; "+
		"duplicate sends: %d (%d jobs); accepted by the API, then parked on a later failed send: %d; took %s",
		jobs, leader, sent, parked, st.Requests, st.DuplicateSends, st.Duplicates, acceptedThenParked, time.Since(start).Round(time.Millisecond))
	if sent+parked != jobs {
		t.Fatalf("%d outcomes for %d jobs", sent+parked, jobs)
	}
	if st.AcceptedJobs != int64(sent+acceptedThenParked) {
		t.Errorf("the simulator accepted %d distinct jobs; the ledger has %d sent and %d accepted-then-parked", st.AcceptedJobs, sent, acceptedThenParked)
	}
}

// clusterNumber is the business number of job i: one of ten.
func clusterNumber(i int) string { return fmt.Sprintf("1065403522430%02d", i%10) }

func streamInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	testenv.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "WAQ_SEND")
		if err != nil {
			return err
		}
		info, err = s.Info(ctx)
		return err
	})
	return info
}
