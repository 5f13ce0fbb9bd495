package worker

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/ledger"
)

// confirmed makes sure, with WAQ_REDIS_WAIT_REPLICAS, that the replicas
// have the outcome a delivery found before the job is acknowledged again;
// false leaves the job for a later delivery.
func (d *delivery) confirmed(ctx context.Context) bool {
	if d.w.cfg.RedisWaitReplicas == 0 {
		return true
	}
	return d.w.durably(ctx, d.msg, func(c context.Context) error { return d.w.ledger.Confirm(c, d.job.ID) }) == nil
}

// durably runs write until it succeeds, while it fails for a transient
// reason (Redis down, failing over). Meanwhile Redis is marked down and
// JetStream is told the job is still being worked on. It gives up when ctx
// ends or the error is not transient.
//
// The job must not be handed to another worker meanwhile: while this one
// holds an answer it could not record, a second delivery would find no
// record and send again. So each try and each pause between tries is
// bounded by a quarter of the ack wait, and JetStream hears "in progress"
// at least every half of it, however long Redis stays away.
func (w *Worker) durably(ctx context.Context, msg jetstream.Msg, write func(context.Context) error) error {
	quarter := w.cfg.AckWait / 4
	wait := 50 * time.Millisecond
	progress := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, min(5*time.Second, quarter))
		err := write(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if !isTransient(err) || ctx.Err() != nil {
			return err
		}
		w.setRedis(err)
		if time.Since(progress) >= quarter {
			_ = msg.InProgress()
			progress = time.Now()
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(wait, quarter)):
		}
		if wait < 2*time.Second {
			wait *= 2
		}
	}
}

// isTransient tells a Redis that is unreachable, loading or failing over
// from an error that would repeat (a bug, a bad script).
func isTransient(err error) bool {
	if err == nil || errors.Is(err, ledger.ErrStale) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		// A replica behind or gone (a failover under way): write again.
		errors.Is(err, conn.ErrNotReplicated) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOSCRIPT", "connection refused", "connection reset", "broken pipe", "i/o timeout"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
