package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/worker"
)

// A worker that cannot take up what it pulled (its consume callback held,
// as when every place of the process is taken, or the process stands still)
// keeps those deliveries in nats.go's buffer past the ack wait; JetStream
// hands them to a second, live worker, which sends them. When the first
// worker can run again, its old deliveries must not be sent too: the job
// would reach WhatsApp twice. Before lapse.go, every one of the stalled
// worker's 100 was sent twice here.
func TestStalledWorkerSendsNoJobTwice(t *testing.T) {
	const jobs, batch = 200, 100
	e, ids, cfg := lineEnv(t, jobs) // one number paced at 40 msg/s: 5 s of sends
	cfg.AckWait = 2 * time.Second
	cfg.GraphTimeout = time.Second
	cfg.Concurrency = batch // the pull's batch: what the stalled worker holds

	// The stalled worker's callback waits at the gate until the test opens it.
	gate := make(chan struct{})
	var open sync.Once
	entered := make(chan struct{}, 1)
	// The stalled worker logs apart, to tell its lines from the live one's.
	stalledLogs := &syncBuffer{}
	opts := worker.Options{Logger: slog.New(slog.NewJSONHandler(stalledLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	worker.WithStall(&opts, func(stage string) {
		if stage != "pulled" {
			return
		}
		select {
		case entered <- struct{}{}:
		default:
		}
		<-gate
	})
	stalled := e.startWith(t, cfg, nil, opts)
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // before the worker's stop
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled worker pulled nothing in 10s")
	}
	cons, err := e.js.Consumer(context.Background(), "WAQ_SEND", "waq-worker")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending < batch {
			return fmt.Errorf("%d delivered to the stalled worker, want its batch of %d", info.NumAckPending, batch)
		}
		return nil
	})

	live := e.start(t, cfg)
	// Past the ack wait, JetStream gives the stalled worker's deliveries to
	// the live one; then the stalled worker runs again.
	waitMetricAtLeast(t, live.url, "waq_redeliveries_total", batch)
	open.Do(func() { close(gate) })

	e.waitSent(t, 30*time.Second, ids...)
	// Each of the stalled worker's deliveries lapsed, or was taken up after
	// the live worker's record (acknowledged without a send), or was sent.
	sentBy := func(r *running) float64 {
		return metric(t, r.url, `waq_sends_total{outcome="sent",phone_number_id="`+pn+`"}`)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		lapsed := metric(t, stalled.url, `waq_lapsed_deliveries_total{stage="pulled"}`)
		done := metric(t, stalled.url, "waq_already_done_total")
		if sent := sentBy(stalled); lapsed+done+sent < batch {
			return fmt.Errorf("stalled worker: %v lapsed, %v already done, %v sent, want its %d deliveries", lapsed, done, sent, batch)
		}
		return nil
	})
	st := e.fake.Stats(false)
	t.Logf("stalled worker: %v lapsed, %v already done, %v sent; live worker: %v redeliveries, %v sent",
		metric(t, stalled.url, `waq_lapsed_deliveries_total{stage="pulled"}`), metric(t, stalled.url, "waq_already_done_total"), sentBy(stalled),
		metric(t, live.url, "waq_redeliveries_total"), sentBy(live))
	if st.Duplicates != 0 || st.AcceptedJobs != jobs {
		t.Errorf("simulator: %d accepted jobs of %d, %d sent twice (%d duplicate sends)", st.AcceptedJobs, jobs, st.Duplicates, st.DuplicateSends)
	}
	if st, err := e.dlq.Stats(context.Background(), deadletter.Filter{}); err != nil || st.Total != 0 {
		t.Errorf("dead-letter store: %+v (%v), want no entry", st, err)
	}
	// Past the hold, the stalled worker's next pulls may count as lapsed
	// too (the bound cannot tell them from those held), and on a loaded
	// machine the live worker's own waits may lapse: both are allowed, a
	// second send is not.
	pulledLapses := metric(t, stalled.url, `waq_lapsed_deliveries_total{stage="pulled"}`)
	if pulledLapses < 1 {
		t.Errorf("no lapsed delivery counted on the stalled worker")
	}
	lines := logLinesWith(stalledLogs.String(), "delivery lapsed before its send; left unsent for JetStream's redelivery, which may be another worker's")
	pulledLines := 0
	for _, l := range lines {
		if l["level"] != "WARN" || l["job_id"] == "" || (l["stage"] != "pulled" && l["stage"] != "waiting") || l["since_heard"] == "" {
			t.Errorf("lapse line %v: want level WARN, a job id, the stage and since_heard", l)
		}
		if l["stage"] == "pulled" {
			pulledLines++
		}
	}
	if float64(pulledLines) != pulledLapses {
		t.Errorf("%d WARN lines of lapses when pulled, %v counted", pulledLines, pulledLapses)
	}
	for i := range jobs {
		to := fmt.Sprintf("1555200%04d", i)
		if strings.Contains(e.logs.String(), to) || strings.Contains(stalledLogs.String(), to) {
			t.Fatalf("recipient %s in the logs", to)
		}
	}
}

// A worker whose jobs stand still after their paced slot came, before their
// send (a process starved of CPU, a goroutine that does not run), past the
// ack wait: JetStream hands them to the live worker, which sends them; once
// the first worker runs again it must give them up, not send them too.
func TestStalledBeforeSendSendsNoJobTwice(t *testing.T) {
	const jobs, held = 200, 20
	e, ids, cfg := lineEnv(t, jobs)
	cfg.AckWait = 2 * time.Second
	cfg.GraphTimeout = time.Second
	gate := make(chan struct{})
	var open sync.Once
	var mu sync.Mutex
	stood := 0
	var opts worker.Options
	worker.WithStall(&opts, func(stage string) {
		if stage != "waiting" {
			return
		}
		mu.Lock()
		stood++
		mu.Unlock()
		<-gate
	})
	stalled := e.startWith(t, cfg, nil, opts)
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // before the worker's stop
	testenv.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if stood < held {
			return fmt.Errorf("%d jobs stand still before their send, want %d", stood, held)
		}
		return nil
	})
	live := e.start(t, cfg)
	waitMetricAtLeast(t, live.url, "waq_redeliveries_total", held)
	open.Do(func() { close(gate) })

	e.waitSent(t, 30*time.Second, ids...)
	sentBy := func(r *running) float64 {
		return metric(t, r.url, `waq_sends_total{outcome="sent",phone_number_id="`+pn+`"}`)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := sentBy(stalled) + sentBy(live); n < jobs {
			return fmt.Errorf("%v sends counted, want %d", n, jobs)
		}
		return nil
	})
	st := e.fake.Stats(false)
	lapsed := metric(t, stalled.url, `waq_lapsed_deliveries_total{stage="waiting"}`)
	t.Logf("stalled worker: %v lapsed waiting, %v sent; live worker: %v redeliveries, %v sent",
		lapsed, sentBy(stalled), metric(t, live.url, "waq_redeliveries_total"), sentBy(live))
	if st.Duplicates != 0 || st.AcceptedJobs != jobs {
		t.Errorf("simulator: %d accepted jobs of %d, %d sent twice (%d duplicate sends)", st.AcceptedJobs, jobs, st.Duplicates, st.DuplicateSends)
	}
	if lapsed < held {
		t.Errorf("%v deliveries lapsed waiting on the stalled worker, want at least the %d held", lapsed, held)
	}
	if st, err := e.dlq.Stats(context.Background(), deadletter.Filter{}); err != nil || st.Total != 0 {
		t.Errorf("dead-letter store: %+v (%v), want no entry", st, err)
	}
}
