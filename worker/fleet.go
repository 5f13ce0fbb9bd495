package worker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/waqhq/waq/fleet"
)

// publishCounts adds this worker's counters to the fleet's buckets in Redis
// every few seconds (the gauge interval, 5s by default), and once more when
// it stops, so that the console and the admin API of any worker show the
// whole fleet.
func (w *Worker) publishCounts(ctx context.Context) {
	fleet.NewPublisher(w.rdb, w.reg, fleet.PublisherOptions{
		Prefix:  w.cfg.KeyPrefix,
		Worker:  w.fleetID(),
		Every:   cmp.Or(w.gauges, 5*time.Second),
		Holding: func() int { return len(w.held) },
		Consumer: func() fleet.Consumer {
			if c := w.consumer.Load(); c != nil {
				return *c
			}
			return fleet.Consumer{}
		},
		Now: w.now,
	}).Run(ctx)
}

// fleetID names this worker in the fleet: host-pid (its id in the logs)
// and a random part, since one process may run several workers (tests,
// waq bench).
func (w *Worker) fleetID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return w.id + "-" + hex.EncodeToString(b)
}
