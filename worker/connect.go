package worker

// Connecting: NATS, JetStream and its stream and consumer, Redis and the
// stores built on it, and closing them when Run ends.

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/webhook"
)

func (w *Worker) connect(ctx context.Context) error {
	w.acks = newAcks(w.log, w.cfg.AckWait, func(ctx context.Context, reply string) error {
		return natsConfirm(w.nc)(ctx, reply)
	})
	nc, err := conn.NATS(ctx, w.cfg.NATSURL, "waq-worker "+w.id,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			w.acks.disconnected()
			w.health.set("nats", errOr(err, "disconnected"))
			w.metrics.Up.WithLabelValues("nats").Set(0)
			w.log.Warn("nats disconnected", "error", errString(err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			w.acks.reconnected()
			w.health.set("nats", nil)
			w.metrics.Up.WithLabelValues("nats").Set(1)
			w.log.Info("nats reconnected")
		}),
	)
	if err != nil {
		return fmt.Errorf("WAQ_NATS_URL: %w", err)
	}
	w.nc = nc
	w.metrics.Up.WithLabelValues("nats").Set(1)
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	w.js = js
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	w.stream, err = queue.EnsureStream(sctx, js, queue.StreamConfig{Name: w.cfg.Stream, Replicas: w.cfg.StreamReplicas})
	if err != nil {
		return err
	}
	w.cons, err = queue.EnsureConsumer(sctx, w.stream, queue.ConsumerConfig{AckWait: w.cfg.AckWait, MaxAckPending: w.cfg.MaxAckPending})
	if err != nil {
		return err
	}
	events, err := queue.EnsureStream(sctx, js, queue.StreamConfig{Name: w.cfg.EventsStream, SubjectPrefix: webhook.DefaultSubjectPrefix,
		Replicas: w.cfg.StreamReplicas, Duplicates: 10 * time.Minute})
	if err != nil {
		return err
	}
	w.events, err = queue.EnsureConsumer(sctx, events, queue.ConsumerConfig{Durable: "waq-status", AckWait: eventsAckWait, MaxAckPending: 10000})
	if err != nil {
		return err
	}
	w.producer = queue.NewProducer(js, queue.ProducerOptions{TracerProvider: w.tp})
	rdb, err := conn.Redis(w.cfg.RedisURL)
	if err != nil {
		return &ConfigError{Setting: "WAQ_REDIS_URL", Problem: err.Error()}
	}
	w.rdb = rdb
	if err := rdb.Ping(sctx).Err(); err != nil {
		return fmt.Errorf("WAQ_REDIS_URL: redis at %s does not answer: %w", conn.Redact(w.cfg.RedisURL), err)
	}
	w.metrics.Up.WithLabelValues("redis").Set(1)
	// Up until sends say otherwise (graphwatch.go).
	w.metrics.Up.WithLabelValues(graphAPI).Set(1)
	// The hot path (each job's record, pace and outcome) goes through the
	// autopipeliner: concurrent jobs share round trips.
	w.fast = conn.AutoPipelined(rdb)
	bodies, err := ledger.EnsureBodies(sctx, w.js, ledger.BodiesConfig{Name: w.cfg.BodiesStream, Replicas: w.cfg.StreamReplicas, MaxAge: w.cfg.ResendWindow})
	if err != nil {
		return fmt.Errorf("WAQ_NATS_URL: %w", err)
	}
	w.ledger = ledger.New(w.fast, ledger.Options{Prefix: w.cfg.KeyPrefix, Retention: w.cfg.SentRetention, ResendWindow: w.cfg.ResendWindow,
		WaitReplicas: w.cfg.RedisWaitReplicas, Bodies: bodies, Buckets: w.cfg.LedgerBuckets, Now: w.now,
		OnBodyError: func(err error) {
			w.log.Warn("sent job recorded without its body: a failure reported later by webhook parks it without one", "error", err)
		}})
	if err := w.ledger.LoadScripts(sctx); err != nil {
		return fmt.Errorf("WAQ_REDIS_URL: %w", err)
	}
	w.dlq = deadletter.New(rdb, deadletter.Options{Prefix: w.cfg.KeyPrefix, Retention: w.cfg.DLQRetention, Now: w.now,
		WaitReplicas: w.cfg.RedisWaitReplicas})
	key, err := recipientKey(sctx, rdb, w.cfg.KeyPrefix)
	if err != nil {
		return fmt.Errorf("WAQ_REDIS_URL: %w", err)
	}
	w.hasher = telemetry.NewRecipientHasher(key)
	return nil
}

// recipientKey is the key of the recipient hash, shared by every worker of
// one Redis: made once at random, so that one recipient has one stand-in
// across processes and nobody without Redis access can reverse it.
func recipientKey(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]byte, error) {
	k := prefix + ":recipient-key"
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := rdb.SetNX(ctx, k, b, 0).Err(); err != nil {
		return nil, fmt.Errorf("recipient hash key: %w", err)
	}
	v, err := rdb.Get(ctx, k).Bytes()
	if err != nil {
		return nil, fmt.Errorf("recipient hash key: %w", err)
	}
	return v, nil
}

func (w *Worker) close() {
	if w.acks != nil {
		w.acks.stop()
	}
	if w.nc != nil {
		_ = w.nc.Drain()
		w.nc.Close()
	}
	if w.rdb != nil {
		_ = w.rdb.Close()
	}
}
