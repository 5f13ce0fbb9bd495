package worker_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

// TestAcksSurviveNATSRestart: jobs whose sends are under way when NATS goes
// away are sent and recorded meanwhile; their acks, which cannot reach a
// server that is down, reach it once it is back, so the jobs finish then
// and none is delivered again an ack wait later.
func TestAcksSurviveNATSRestart(t *testing.T) {
	const (
		jobs    = 20
		ackWait = 10 * time.Second
	)
	e := setup(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Respond: fakegraph.Response{Kind: fakegraph.KindSlow, Delay: fakegraph.Duration(1500 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.AckWait = ackWait
	cfg.GraphTimeout = 5 * time.Second
	r := e.start(t, cfg)
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("ack-%02d", i)
		e.publish(t, textJob(ids[i], fmt.Sprintf("1555200%04d", i)))
	}
	// Every send is at the simulator, answered in 1.5 s: NATS goes now.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := e.fake.Stats(false).Requests; n < jobs {
			return fmt.Errorf("%d sends under way", n)
		}
		return nil
	})
	e.nats.Shutdown()
	back := time.Now()
	e.nats.Start(t)
	e.waitSent(t, 10*time.Second, ids...)
	var finished time.Duration
	testenv.Eventually(t, 3*ackWait, func() error {
		cons, err := e.js.Consumer(context.Background(), "WAQ_SEND", queue.DefaultConsumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("%d jobs unacknowledged, %d pending", info.NumAckPending, info.NumPending)
		}
		finished = time.Since(back)
		return nil
	})
	redelivered := metricValue(t, scrape(t, r.url), "waq_redeliveries_total")
	t.Logf("%d jobs in flight through a NATS restart: all acknowledged %s after NATS was back, %d redelivered (ack wait %s)",
		jobs, finished.Round(10*time.Millisecond), redelivered, ackWait)
	if redelivered != 0 || finished >= ackWait {
		t.Errorf("%d jobs redelivered, finished %s after NATS was back: want none, within the ack wait (%s)", redelivered, finished, ackWait)
	}
	if st := e.fake.Stats(false); st.DuplicateSends != 0 {
		t.Errorf("%d duplicate sends", st.DuplicateSends)
	}
}

// TestAcksSurviveNATSKill: a nats-server process killed with SIGKILL while
// jobs finish one after another, then started again on the same port and
// store. The acks it had not read when it died, those it had applied but
// not yet written to its consumer state, and those a worker sent while it
// was away are confirmed once it is back: every job is acknowledged within
// moments of the restart, before any could be delivered again an ack wait
// later, and none is sent twice.
func TestAcksSurviveNATSKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a nats-server process")
	}
	const (
		jobs    = 200
		ackWait = 20 * time.Second
		answer  = 1500 * time.Millisecond
	)
	proc, url := testenv.StartNATSProcess(t)
	e := setupOn(t, url)
	if _, err := e.fake.AddRules(fakegraph.Rule{Respond: fakegraph.Response{Kind: fakegraph.KindSlow, Delay: fakegraph.Duration(answer)}}); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.AckWait = ackWait
	cfg.GraphTimeout = 5 * time.Second
	cfg.Concurrency = jobs
	r := e.start(t, cfg)
	// Published over about a second, the jobs' answers come one every few
	// milliseconds, and so do their acks: NATS dies among them.
	ids := make([]string, jobs)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	first := time.Now()
	for i := range ids {
		<-tick.C
		ids[i] = fmt.Sprintf("kill-%03d", i)
		e.publish(t, textJob(ids[i], fmt.Sprintf("1555300%04d", i)))
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		if n := e.fake.Stats(false).Accepted; n < jobs/2 {
			return fmt.Errorf("%d sends answered", n)
		}
		return nil
	})
	proc.Kill(syscall.SIGKILL, 5*time.Second)
	killed := time.Now()
	// Every job is sent and recorded while NATS is away (each waits up to
	// 5 s for its body to be kept): their acks wait.
	e.waitSent(t, 15*time.Second, ids...)
	back := time.Now()
	proc.Start(t)
	testenv.WaitNATS(t, url)
	var finished time.Time
	testenv.Eventually(t, 3*ackWait, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cons, err := e.js.Consumer(ctx, "WAQ_SEND", queue.DefaultConsumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("%d jobs unacknowledged, %d pending", info.NumAckPending, info.NumPending)
		}
		finished = time.Now()
		return nil
	})
	m := scrape(t, r.url)
	again, done := metricValue(t, m, "waq_redeliveries_total"), metricValue(t, m, "waq_already_done_total")
	st := e.fake.Stats(false)
	t.Logf("%d jobs, nats-server killed after %d answers and down %s: all acknowledged %s after it started again; "+
		"%d deliveries again, %d acknowledged as already done; %d sent twice (ack wait %s)",
		jobs, jobs/2, back.Sub(killed).Round(10*time.Millisecond), finished.Sub(back).Round(10*time.Millisecond),
		again, done, st.DuplicateSends, ackWait)
	if st.DuplicateSends != 0 {
		t.Errorf("%d jobs sent twice", st.DuplicateSends)
	}
	// The first job was delivered after first: a job whose ack was lost is
	// acknowledged no sooner than an ack wait after its delivery.
	if redelivery := first.Add(ackWait); !finished.Before(redelivery) {
		t.Errorf("the last job acknowledged %s after NATS was back, %s after the first job could be redelivered: want before",
			finished.Sub(back), finished.Sub(redelivery))
	}
	if again != 0 || done != 0 {
		t.Errorf("%d jobs delivered again, %d acknowledged as already done: want none", again, done)
	}
}

// metricValue reads an unlabelled counter or gauge from a scrape.
func metricValue(t *testing.T, scrape, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` ([0-9.e+]+)$`).FindStringSubmatch(scrape)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(v)
}
