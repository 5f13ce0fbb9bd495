package worker_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
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
