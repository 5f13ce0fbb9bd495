package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig names the job stream. The zero value means the defaults.
type StreamConfig struct {
	// Name defaults to "WAQ_SEND".
	Name string
	// SubjectPrefix defaults to "waq.send"; the stream takes prefix + ".>".
	SubjectPrefix string
	// Replicas defaults to 1; use 3 in a cluster.
	Replicas int
	// Duplicates is the de-duplication window. Defaults to 5m; past it the
	// worker's sent records still stop a second send.
	Duplicates time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = 5 * time.Minute
	}
	return c
}

// EnsureStream creates the job stream or brings its settings up to date:
// file storage, work-queue retention (a message is removed once acked), the
// configured replicas and duplicate window.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	cfg = cfg.withDefaults()
	if cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("stream %s: replicas %d: want 1 to 5", cfg.Name, cfg.Replicas)
	}
	s, err := RetryUnanswered(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        cfg.Name,
			Description: "waq " + cfg.SubjectPrefix,
			Subjects:    []string{cfg.SubjectPrefix + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.WorkQueuePolicy,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
			Discard:     jetstream.DiscardOld,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// ConsumerConfig is the durable pull consumer the workers share.
type ConsumerConfig struct {
	// Durable defaults to "waq-worker".
	Durable string
	// FilterSubject defaults to every job subject of the stream.
	FilterSubject string
	// AckWait is how long a delivered job may go unacknowledged before
	// JetStream hands it to another worker. Defaults to 60s; the worker
	// signals progress on longer waits.
	AckWait time.Duration
	// MaxAckPending bounds jobs delivered and not yet acknowledged, retries
	// waiting for their backoff included. Defaults to 20000.
	MaxAckPending int
}

// EnsureConsumer creates the workers' durable consumer or updates it.
func EnsureConsumer(ctx context.Context, s jetstream.Stream, cfg ConsumerConfig) (jetstream.Consumer, error) {
	if cfg.Durable == "" {
		cfg.Durable = DefaultConsumer
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 60 * time.Second
	}
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = 20000
	}
	c, err := RetryUnanswered(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       cfg.Durable,
			Description:   "waq workers",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: cfg.MaxAckPending,
			FilterSubject: cfg.FilterSubject,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// RetryUnanswered runs op, bounding each try, and tries again while the
// JetStream API leaves it unanswered or is briefly unavailable, as long as
// ctx lasts. In a cluster, workers that start together and create the same
// stream or consumer at once can all be left without an answer although it
// was created (nats-server issue 3677); asking again finds it. A leader
// election gives the same silence for a moment.
func RetryUnanswered[T any](ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	for try := 1; ; try++ {
		tctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		v, err := op(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || try == 10 || !unanswered(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(time.Duration(try) * 100 * time.Millisecond):
		}
	}
}

// unanswered tells a JetStream API request that got no answer, or "try
// later", from a refusal.
func unanswered(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.As(err, &apiErr) && apiErr.Code == 503
}
