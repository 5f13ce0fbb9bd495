package worker_test

import (
	"testing"
	"time"
)

// A job that waits for its paced slot (in its number's line, then on a
// timer to the slot) longer than the ack wait in all is still one worker's:
// JetStream must not hand it to a second worker meanwhile, which would send
// it too (and, had one of the two sends failed for good, leave it both sent
// and parked).
func TestLongPacedWaitNotHandedToSecondWorker(t *testing.T) {
	// Five seconds at 40 msg/s, over two workers sharing the number's
	// schedule: most jobs wait longer than the ack wait (2s) before their
	// send; without telling JetStream, about a third were sent twice.
	const jobs = 200
	e, ids, cfg := lineEnv(t, jobs)
	cfg.AckWait = 2 * time.Second
	cfg.GraphTimeout = time.Second
	r1 := e.start(t, cfg)
	r2 := e.start(t, cfg)
	e.waitSent(t, 30*time.Second, ids...)
	st := e.fake.Stats(false)
	if st.Duplicates != 0 || st.AcceptedJobs != jobs {
		t.Errorf("simulator: %d accepted jobs of %d, %d sent twice (%d duplicate sends)", st.AcceptedJobs, jobs, st.Duplicates, st.DuplicateSends)
	}
	// A job answered 130429 goes back to JetStream for a while; no other
	// comes round again.
	if re := metric(t, r1.url, "waq_redeliveries_total") + metric(t, r2.url, "waq_redeliveries_total"); re > float64(st.ByCode[130429]) {
		t.Errorf("%v redeliveries (%d answered 130429): jobs held by a worker were handed to another", re, st.ByCode[130429])
	}
}
