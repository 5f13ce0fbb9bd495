package worker_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// haAppSecret signs the simulator's status webhooks in these tests.
const haAppSecret = "ha-app-secret"

// startWorkerProcess starts `waq worker` as a child process with the
// settings every test of a real deployment shares, plus env (whose entries
// win: os/exec keeps the last of a duplicated variable); it is killed when
// the test ends.
func startWorkerProcess(t *testing.T, name string, env ...string) *testenv.Process {
	t.Helper()
	waqBin, _ := testenv.Binaries(t)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(crashPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &testenv.Process{
		Name: name, Path: waqBin, Args: []string{"worker"}, Log: filepath.Join(dir, name+".log"),
		Env: append([]string{
			"WAQ_ACCESS_TOKEN=" + token, "WAQ_POLICY_FILE=" + policyFile, "WAQ_HTTP_ADDR=127.0.0.1:0",
			"WAQ_ACK_WAIT=3s", "WAQ_GRAPH_TIMEOUT=1s", "WAQ_SHUTDOWN_TIMEOUT=2s", "WAQ_LOG_LEVEL=warn",
			"OTEL_TRACES_EXPORTER=none",
		}, env...),
	}
	p.Start(t)
	t.Cleanup(func() {
		p.Kill(syscall.SIGKILL, time.Second)
		if t.Failed() {
			if b, err := os.ReadFile(p.Log); err == nil {
				t.Logf("%s log (its end):\n%s", name, tail(b, 6000))
			}
		}
	})
	return p
}

// waitReady waits until the worker p answers 200 on its /readyz URL.
func waitReady(t *testing.T, p *testenv.Process, url string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if !p.Running() {
			return fmt.Errorf("%s exited (%s); see %s", p.Name, p.Exited(), p.Log)
		}
		res, err := http.Get(url)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, res.Status)
		}
		return nil
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waqCommand runs the waq binary (as an operator would) with env and
// returns its stdout; a failure ends the test with its stderr.
func waqCommand(t *testing.T, env []string, args ...string) string {
	t.Helper()
	waqBin, _ := testenv.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, waqBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("waq %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// outcomes counts the jobs of ids that are sent and parked, and fails when
// one is both; missing lists those with neither yet.
func outcomes(ctx context.Context, led *ledger.Ledger, dlq *deadletter.Store, ids []string) (sent, parked int, missing []string, err error) {
	for start := 0; start < len(ids); start += 500 {
		batch := ids[start:min(start+500, len(ids))]
		states, err := led.LoadMany(ctx, batch)
		if err != nil {
			return 0, 0, nil, err
		}
		for i, st := range states {
			isParked, err := dlq.Parked(ctx, batch[i], 0)
			if err != nil {
				return 0, 0, nil, err
			}
			switch {
			case st.Sent() && isParked:
				return 0, 0, nil, fmt.Errorf("job %s is both sent and parked", batch[i])
			case st.Sent():
				sent++
			case isParked:
				parked++
			default:
				missing = append(missing, batch[i])
			}
		}
	}
	return sent, parked, missing, nil
}

// waitOutcomes waits until every job of ids has exactly one outcome, while
// the workers keep running.
func waitOutcomes(t *testing.T, timeout time.Duration, led *ledger.Ledger, dlq *deadletter.Store, ids []string, procs ...*testenv.Process) (sent, parked int) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		for _, p := range procs {
			if !p.Running() {
				return fmt.Errorf("%s exited (%s); see %s", p.Name, p.Exited(), p.Log)
			}
		}
		s, p, missing, err := outcomes(context.Background(), led, dlq, ids)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d jobs without an outcome yet (e.g. %s)", len(missing), missing[0])
		}
		sent, parked = s, p
		return nil
	})
	return sent, parked
}

// settledParked waits until the dead-letter store counts as many entries
// as jobs of ids are parked (each once: an entry counted twice never
// settles), and returns that number. A job counted sent by waitOutcomes is
// parked later when a status webhook reports its failure after its sent
// status (the simulator's asynchronous 131026): under load that comes
// seconds after, and a count taken before it is short.
func settledParked(t *testing.T, led *ledger.Ledger, dlq *deadletter.Store, ids []string) int {
	t.Helper()
	parked, first := 0, ""
	defer func() {
		if first != "" {
			t.Logf("settled after: %s", first)
		}
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		st, err := dlq.Stats(context.Background(), deadletter.Filter{})
		if err != nil {
			return err
		}
		_, p, _, err := outcomes(context.Background(), led, dlq, ids)
		if err != nil {
			return err
		}
		if st.Total != int64(p) {
			err := fmt.Errorf("the store counts %d entries, %d jobs are parked", st.Total, p)
			if first == "" {
				first = err.Error()
			}
			return err
		}
		parked = p
		return nil
	})
	return parked
}

// publishUntilAcked publishes job until JetStream acknowledges it, through
// a server's restart or a leader's election (the same id again:
// de-duplicated), for at most a minute.
func publishUntilAcked(producer *queue.Producer, job *queue.Job) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := producer.Publish(ctx, job)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %s: %v", job.ID, err)
		}
		<-time.After(50 * time.Millisecond) // back off while NATS restarts or elects a leader
	}
}

// countAcceptedThenParked counts the jobs of ids that the simulator accepted and
// the ledger does not have as sent. A job Meta accepted whose worker died
// (or lost a server) before recording it is sent again; if that second send
// fails for good, the job ends parked although the first send went through.
// Such a job must have been sent more than once: they are part of the
// duplicate count's story.
func countAcceptedThenParked(t *testing.T, fake *fakegraph.Server, led *ledger.Ledger, ids []string) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		js, _ := fake.Job(id)
		if st, _ := led.Load(context.Background(), id); !st.Sent() && js.Accepted > 0 {
			n++
			if js.Sends < 2 {
				t.Errorf("job %s was accepted once, never sent again, and is not recorded as sent", id)
			}
		}
	}
	return n
}

// haJob is job i of a mixed load: a tenth free-form text (parked as
// "window" by the simulator's window), a tenth a missing template (parked
// as "template"), the rest an existing template; over numbers business
// numbers, each recipient its own.
func haJob(prefix string, i, numbers int) *queue.Job {
	id := fmt.Sprintf("%s-%05d", prefix, i)
	to := fmt.Sprintf("1555%07d", i)
	var job *queue.Job
	switch i % 10 {
	case 0:
		job = textJob(id, to)
	case 1:
		job = templateJob(id, to, "no_such_template")
	default:
		job = templateJob(id, to, "order_update")
	}
	job.PhoneNumberID = fmt.Sprintf("1065403522429%02d", i%numbers)
	return job
}

// haScenario answers like Meta with a share of transient failures (131000,
// 130429), synchronous window and template failures, and failures reported
// later by webhook (131026), so that every Redis script of the worker runs.
// (No 131056: its 6-second pair pace would set the length of the test, and
// its key shares the pacing script's hash tag, which every send runs.)
func haScenario(webhookURL string, random bool) *fakegraph.Scenario {
	code := fakegraph.Code
	sc := &fakegraph.Scenario{
		Latency:   fakegraph.Latency{Base: fakegraph.Duration(time.Millisecond), Jitter: fakegraph.Duration(5 * time.Millisecond)},
		Templates: []fakegraph.Template{{Name: "order_update", Language: "en_US"}},
		Window:    fakegraph.Window{Enforce: true},
	}
	if webhookURL != "" {
		sc.Webhooks = fakegraph.Webhooks{URL: webhookURL, AppSecret: haAppSecret, Statuses: []string{"sent", "delivered"}}
	}
	if random {
		sc.Random = []fakegraph.RandomFailure{
			{Rate: 0.15, Respond: fakegraph.Response{Error: code(131000)}},
			{Rate: 0.02, Respond: fakegraph.Response{Error: code(130429)}},
		}
		if webhookURL != "" {
			sc.Random = append(sc.Random, fakegraph.RandomFailure{Rate: 0.03, Respond: fakegraph.Response{Async: &fakegraph.AsyncFailure{Error: code(131026), After: []string{"sent"}}}})
		}
	}
	return sc
}

// TestRedisCluster runs a worker and the dead-letter commands against a
// three-master Redis Cluster: jobs are sent, retried, throttled, parked
// (synchronously and by webhook), the scripts are flushed from every node
// mid-run (NOSCRIPT in pipelines), and the parked jobs are listed, counted
// and replayed until they are sent.
func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test: about 10 seconds")
	}
	const jobs, numbers = 600, 6
	testenv.Binaries(t) // built once per test process; not part of the time below
	start := time.Now()
	cluster := testenv.StartRedisCluster(t, 3)
	t.Logf("redis cluster ready in %s", time.Since(start).Round(time.Millisecond))
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)

	httpPort := testenv.FreePort(t)
	webhookURL := fmt.Sprintf("http://127.0.0.1:%d/webhook", httpPort)
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{token}, SendsLog: -1, Scenario: haScenario(webhookURL, true)})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })

	env := []string{"WAQ_NATS_URL=" + n.URL, "WAQ_REDIS_URL=" + cluster.URL}
	w := startWorkerProcess(t, "worker-cluster", append(env, "WAQ_GRAPH_URL="+srv.URL, "WAQ_CONCURRENCY=32",
		fmt.Sprintf("WAQ_HTTP_ADDR=127.0.0.1:%d", httpPort), "WAQ_APP_SECRET="+haAppSecret, "WAQ_WEBHOOK_VERIFY_TOKEN=verify")...)

	testenv.Eventually(t, 15*time.Second, func() error {
		_, err := js.Stream(context.Background(), "WAQ_SEND")
		return err
	})
	t.Logf("worker ready after %s", time.Since(start).Round(time.Millisecond))
	producer := queue.NewProducer(js, queue.ProducerOptions{})
	rdb := cluster.Client(t)
	ids := make([]string, jobs)
	for i := range ids {
		job := haJob("rc", i, numbers)
		ids[i] = job.ID
		if _, err := producer.Publish(context.Background(), job); err != nil {
			t.Fatal(err)
		}
		if i == jobs/3 {
			// A node restarted or replaced forgets its scripts: the
			// pipelined EVALSHAs must load them again, on every master.
			if err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
				return c.ScriptFlush(ctx).Err()
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	led := ledger.New(rdb, ledger.Options{})
	dlq := deadletter.New(rdb, deadletter.Options{})
	sent, parked := waitOutcomes(t, 90*time.Second, led, dlq, ids, w)
	t.Logf("redis cluster: %d jobs: %d sent, %d parked (%s)", jobs, sent, parked, time.Since(start).Round(time.Millisecond))

	// The keys are spread over the three masters, and every script ran:
	// pacing and its 130429 back-off, statuses by webhook.
	if err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
		if n, err := c.DBSize(ctx).Result(); err != nil || n == 0 {
			return fmt.Errorf("master %s holds %d keys (%v)", c.Options().Addr, n, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	lowered := 0
	for i := range numbers {
		if v, _ := rdb.HGet(context.Background(), fmt.Sprintf("waq:rl:{1065403522429%02d}", i), "rate").Result(); v != "" {
			lowered++
		}
	}
	st := fake.Stats(false)
	if st.ByCode[130429] > 0 && lowered == 0 {
		t.Errorf("%d answers 130429, and no number's rate was lowered", st.ByCode[130429])
	}
	delivered := 0
	for _, id := range ids {
		if s, err := led.Load(context.Background(), id); err == nil && s.Status == "delivered" {
			delivered++
		}
	}
	if delivered == 0 {
		t.Error("no status webhook was recorded")
	}

	// A job counted sent may still be parked by its failed status webhook,
	// which comes after its sent one: the counts settle first.
	parked = settledParked(t, led, dlq, ids)

	// The operator's commands against the cluster.
	cli := append(env, "WAQ_KEY_PREFIX=waq")
	var stats deadletter.Stats
	if err := json.Unmarshal([]byte(waqCommand(t, cli, "dlq", "stats", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	// undeliverable: failed by webhook after it was sent (3% of sends).
	if stats.Total != int64(parked) || stats.ByReason["window"] == 0 || stats.ByReason["template"] == 0 || stats.ByReason["undeliverable"] == 0 {
		t.Fatalf("dlq stats: %+v; want %d parked, some window, template and undeliverable", stats, parked)
	}
	listed := testenv.JSONLines(t, waqCommand(t, cli, "dlq", "list", "--json", "--limit", "1000"))
	if len(listed) != parked {
		t.Errorf("dlq list: %d entries, want %d", len(listed), parked)
	}
	windows := testenv.JSONLines(t, waqCommand(t, cli, "dlq", "list", "--json", "--reason", "window", "--limit", "1000"))
	if int64(len(windows)) != stats.ByReason["window"] {
		t.Errorf("dlq list --reason window: %d entries, stats say %d", len(windows), stats.ByReason["window"])
	}

	// Replayed as a template, without the random failures, the window
	// failures are sent.
	if err := fake.SetScenario(haScenario(webhookURL, false)); err != nil {
		t.Fatal(err)
	}
	replayed := testenv.JSONLines(t, waqCommand(t, append(cli, "WAQ_NATS_URL="+n.URL), "dlq", "replay", "--reason", "window",
		"--as-template", "order_update", "--language", "en_US", "--json"))
	if len(replayed) != len(windows) {
		t.Fatalf("replay: %d results for %d entries", len(replayed), len(windows))
	}
	for _, r := range replayed {
		if r["replayed"] != true {
			t.Fatalf("replay: %v", r)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, r := range replayed {
			id := r["id"].(string)
			s, err := led.Load(context.Background(), id)
			if err != nil {
				return err
			}
			if !s.HasSent(1) {
				return fmt.Errorf("%s not sent as generation 1 yet (gen %d, parked %q)", id, s.Gen, s.Parked)
			}
		}
		return nil
	})
	parked = settledParked(t, led, dlq, ids)
	stats = deadletter.Stats{} // Unmarshal would merge the maps
	if err := json.Unmarshal([]byte(waqCommand(t, cli, "dlq", "stats", "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.ByReason["window"] != 0 || stats.Total != int64(parked) {
		t.Errorf("dlq stats after the replay: %+v, want %d parked", stats, parked)
	}
	t.Logf("redis cluster: %d window entries replayed as a template and sent; %d 130429, %d 131000 answers; %d delivered statuses; %d numbers' rates lowered; took %s",
		len(windows), st.ByCode[130429], st.ByCode[131000], delivered, lowered, time.Since(start).Round(time.Millisecond))
}

// TestRedisSentinelFailover kills the Redis primary (SIGKILL) under a
// running worker with WAQ_REDIS_WAIT_REPLICAS=1: Sentinel promotes the
// replica, the worker follows it, and no outcome the worker had
// acknowledged is lost. Every job ends with exactly one outcome in the new
// primary, and the stream holds no unacknowledged job.
func TestRedisSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("Sentinel failover test: about 25 seconds")
	}
	// WAQ_TEST_WAIT_REPLICAS=0 shows what the setting prevents: the test
	// then fails, some acknowledged jobs having no outcome.
	waitReplicas := cmp.Or(os.Getenv("WAQ_TEST_WAIT_REPLICAS"), "1")
	const jobs, numbers = 1500, 10
	testenv.Binaries(t) // built once per test process; not part of the time below
	start := time.Now()
	rs := testenv.StartRedisSentinel(t, 1, 3)
	first := rs.Primary(t)
	primary, replica := first.Client(t), rs.Servers[1].Client(t)
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{token}, SendsLog: -1, Scenario: haScenario("", true)})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })
	// The ack wait outlasts the failover, as in production (60s against a
	// Sentinel down-after of a few seconds): a job the worker holds while
	// Redis is away is not handed to a second delivery meanwhile.
	w := startWorkerProcess(t, "worker-sentinel", "WAQ_NATS_URL="+n.URL, "WAQ_REDIS_URL="+rs.URL,
		"WAQ_REDIS_WAIT_REPLICAS="+waitReplicas, "WAQ_GRAPH_URL="+srv.URL, "WAQ_CONCURRENCY=32", "WAQ_ACK_WAIT="+ackWaitForTest())

	testenv.Eventually(t, 15*time.Second, func() error {
		_, err := js.Stream(context.Background(), "WAQ_SEND")
		return err
	})
	producer := queue.NewProducer(js, queue.ProducerOptions{})
	ids := make([]string, jobs)
	pace := time.NewTicker(2 * time.Millisecond) // a steady flow, so that the kill meets writes
	defer pace.Stop()
	killed := false
	for i := range ids {
		job := haJob("rs", i, numbers)
		ids[i] = job.ID
		if _, err := producer.Publish(context.Background(), job); err != nil {
			t.Fatal(err)
		}
		if i == jobs/3 {
			// The replica falls behind (asynchronous replication at its
			// worst: a busy or far replica), the primary takes writes it
			// will never pass on, and dies (SIGKILL). Without waiting for
			// the replica, the worker would have acknowledged jobs whose
			// outcomes only the dead primary had.
			slept := make(chan error, 1)
			go func() { slept <- replica.Do(context.Background(), "debug", "sleep", "1.5").Err() }()
			// 32 MB fill the kernel's socket buffers on the way to the
			// sleeping replica, so that what the worker writes next waits
			// in the primary's memory, where the kill loses it.
			junk := strings.Repeat("x", 1<<20)
			if _, err := primary.Pipelined(context.Background(), func(p redis.Pipeliner) error {
				for k := range 32 {
					p.Set(context.Background(), fmt.Sprintf("junk:%d", k), junk, time.Minute)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			<-time.After(500 * time.Millisecond)
			first.Stop()
			killed = true
			if err := <-slept; err != nil {
				t.Fatalf("debug sleep: %v", err)
			}
			t.Logf("replica held back 1.5s; primary %s killed 0.5s into it, after %d jobs published", first.Addr, i+1)
		}
		<-pace.C
	}
	if !killed {
		t.Fatal("no kill")
	}
	second := rs.Primary(t)
	if second == first {
		t.Fatal("no failover")
	}
	t.Logf("failover: %s is the primary now (%s after the start)", second.Addr, time.Since(start).Round(time.Millisecond))
	// The old primary comes back; Sentinel makes it a replica of the new
	// one, and the writes waiting for a replica go through.
	first.Start(t)

	c, err := conn.Redis(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	led := ledger.New(c, ledger.Options{})
	dlq := deadletter.New(c, deadletter.Options{})
	sent, parked := waitOutcomes(t, 90*time.Second, led, dlq, ids, w)
	waitStreamDrained(t, js, 30*time.Second)
	// The outcomes are read from the promoted primary itself, not through
	// Sentinel: they survived the failover there.
	direct := second.Client(t)
	s2, p2, missing, err := outcomes(context.Background(), ledger.New(direct, ledger.Options{}), deadletter.New(direct, deadletter.Options{}), ids)
	if err != nil || len(missing) > 0 {
		t.Fatalf("on the promoted primary: %v, %d jobs without an outcome", err, len(missing))
	}
	st := fake.Stats(false)
	t.Logf("sentinel failover: %d jobs: %d sent, %d parked (on the new primary: %d, %d); duplicate sends %d; took %s",
		jobs, sent, parked, s2, p2, st.DuplicateSends, time.Since(start).Round(time.Millisecond))
	if st.DuplicateSends > 0 {
		// Redis was down for seconds, the worker was not: a job sent but
		// not yet recorded waits for Redis, it is not sent again.
		t.Errorf("%d duplicate sends; a Redis failover should cause none", st.DuplicateSends)
	}
}

// ackWaitForTest is the Sentinel test's ack wait: 30s as in production, or
// WAQ_TEST_ACK_WAIT to show that a failover longer than the ack wait sends
// nothing twice either (the worker holding an unrecorded answer keeps
// telling JetStream it is in progress).
func ackWaitForTest() string {
	if v := os.Getenv("WAQ_TEST_ACK_WAIT"); v != "" {
		return v
	}
	return "30s"
}
