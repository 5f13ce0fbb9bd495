package worker

// Watchers that run beside the consumer: Redis health, the consumer's
// pending counts and the dead-letter sweep.

import (
	"cmp"
	"context"
	"time"

	"github.com/waqhq/waq/fleet"
)

// watchRedis pings Redis while it is marked down, and marks it up again.
func (w *Worker) watchRedis(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := w.rdb.Ping(pctx).Err()
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.setRedis(err)
	}
}

func (w *Worker) setRedis(err error) {
	was := w.health.get("redis")
	w.health.set("redis", err)
	if err != nil {
		w.metrics.Up.WithLabelValues("redis").Set(0)
		if was == nil {
			w.log.Warn("redis unreachable: taking no new jobs until it answers", "error", err)
		}
	} else {
		w.metrics.Up.WithLabelValues("redis").Set(1)
		if was != nil {
			w.log.Info("redis answers again: taking jobs")
		}
	}
}

// watchConsumer publishes the consumer's pending counts as metrics, and
// keeps them for the fleet's view.
func (w *Worker) watchConsumer(ctx context.Context) {
	t := time.NewTicker(cmp.Or(w.gauges, 5*time.Second))
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := w.cons.Info(ictx)
		cancel()
		if err == nil {
			w.metrics.Pending.Set(float64(info.NumPending))
			w.metrics.AckPending.Set(float64(info.NumAckPending))
			w.consumer.Store(&fleet.Consumer{Pending: int64(info.NumPending), AckPending: int64(info.NumAckPending), At: w.now()})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepDeadLetters removes expired entries now and then, and publishes the
// store's size by reason.
func (w *Worker) sweepDeadLetters(ctx context.Context) {
	t := time.NewTicker(cmp.Or(w.gauges, 15*time.Second))
	defer t.Stop()
	last := time.Time{}
	for {
		if time.Since(last) > time.Minute {
			if n, err := w.dlq.Sweep(ctx); err == nil && n > 0 {
				w.log.Info("expired dead-letter entries removed", "count", n, "retention", w.cfg.DLQRetention)
			}
			last = time.Now()
		}
		if counts, err := w.dlq.CountByReason(ctx); err == nil {
			w.metrics.DeadLetter.Reset()
			for r, n := range counts {
				w.metrics.DeadLetter.WithLabelValues(r).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
