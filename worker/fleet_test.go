package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// TestFleetCounts: two workers share a stream; the fleet's view in Redis
// sums what both did and agrees with what the simulator accepted, with
// the workers' own /metrics and with the consumer (nothing pending once
// all is done). A worker that stops leaves the list, not the counts.
func TestFleetCounts(t *testing.T) {
	e := setup(t)
	_, err := e.fake.AddRules(
		fakegraph.Rule{Match: fakegraph.Match{JobID: "flaky-0"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "flaky-1"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "late"}, Respond: fakegraph.Response{Error: fakegraph.Code(131047)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "busy"}, Times: 1, Respond: fakegraph.Response{Error: fakegraph.Code(130429)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	sc := e.fake.Scenario()
	sc.Latency = fakegraph.Latency{Base: fakegraph.Duration(5 * time.Millisecond)}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Concurrency = 4
	opts := worker.Options{GaugeInterval: 50 * time.Millisecond}
	a := e.startWith(t, cfg, nil, opts)
	b := e.startWith(t, cfg, nil, opts)

	const okJobs = 40
	var sent []string
	for i := 0; i < okJobs; i++ {
		sent = append(sent, fmt.Sprintf("ok-%d", i))
	}
	sent = append(sent, "flaky-0", "flaky-1", "busy")
	for i, id := range append(sent, "late") {
		e.publish(t, textJob(id, fmt.Sprintf("1555600%04d", i)))
	}
	e.waitSent(t, 30*time.Second, sent...)
	e.waitParked(t, 20*time.Second, "late")
	e.streamEmpty(t, 10*time.Second)

	rd := fleet.NewReader(e.redis.Client(t), "", nil)
	var v fleet.View
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		if v, err = rd.Read(context.Background(), 5); err != nil {
			return err
		}
		if v.Total.Sent != int64(len(sent)) || v.Pending != 0 || v.AckPending != 0 || v.Holding != 0 || len(v.Workers) != 2 {
			return fmt.Errorf("sent %d of %d, pending %d, delivered unacknowledged %d, held %d, %d workers",
				v.Total.Sent, len(sent), v.Pending, v.AckPending, v.Holding, len(v.Workers))
		}
		return nil
	})
	tot := v.Total
	// flaky-0 and flaky-1 failed twice each (131000, retried), late once
	// (parked); busy was answered 130429 once, which is no send attempt
	// but holds its job back (scope number).
	if tot.Failed != 5 || tot.Retried != 4 || tot.E131000 != 4 || tot.RateLimited != 1 || tot.Throttled["number"] != 1 ||
		tot.Parked["window"] != 1 || tot.ParkedTotal() != 1 || tot.Attempts() != int64(len(sent))+5 {
		t.Errorf("fleet totals %+v", tot)
	}
	st := e.fake.Stats(false)
	if st.Accepted != tot.Sent || st.Requests != tot.Attempts()+tot.RateLimited {
		t.Errorf("simulator accepted %d of %d requests; the fleet counts %d sent of %d attempts and %d rate-limited", st.Accepted, st.Requests, tot.Sent, tot.Attempts(), tot.RateLimited)
	}
	// What each worker's /metrics says adds up to the fleet's.
	perWorker := 0.0
	for _, r := range []string{a.url, b.url} {
		fams, err := scrapeFamilies(r)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := sample(fams, "waq_sends_total", "outcome", "sent", "phone_number_id", pn)
		perWorker += n
	}
	if int64(perWorker) != tot.Sent {
		t.Errorf("the workers' /metrics count %v sent, the fleet %d", perWorker, tot.Sent)
	}

	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	v, err = rd.Read(context.Background(), 5)
	if err != nil || len(v.Workers) != 1 || v.Total.Sent != tot.Sent {
		t.Errorf("after one worker stopped: %d workers, sent %d (%v)", len(v.Workers), v.Total.Sent, err)
	}
}
