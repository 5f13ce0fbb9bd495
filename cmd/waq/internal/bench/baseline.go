package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
)

// BaselineConfig configures the baseline loop.
type BaselineConfig struct {
	NATSURL  string
	GraphURL string
	// H2C speaks HTTP/2 without TLS to the simulator, as the workers do.
	H2C bool
	// Stream holds the jobs; its consumer is BaselineDurable.
	Stream string
	Token  string
	// Concurrency is the sends in flight. Defaults to 128, as the worker's.
	Concurrency int
}

// BaselineDurable is the durable consumer of the baseline loop.
const BaselineDurable = "waq-bench-baseline"

// RunBaseline is the floor of what any worker must do with a job: pull it
// from JetStream, decode it, POST it to the Graph API and acknowledge it.
// No policy, no Redis, no tracing, no metrics. It consumes the way the
// worker does (one pull subscription, a slot per send in flight, a
// goroutine per send), so that the ratio of the two measures what the
// worker adds, not a different way of pulling. It runs until ctx ends.
func RunBaseline(ctx context.Context, cfg BaselineConfig) error {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 128
	}
	nc, js, err := conn.JetStream(ctx, cfg.NATSURL, "waq bench baseline")
	if err != nil {
		return err
	}
	defer nc.Close()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	stream, err := js.Stream(sctx, cfg.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	cons, err := queue.EnsureConsumer(sctx, stream, queue.ConsumerConfig{Durable: BaselineDurable, MaxAckPending: max(20000, cfg.Concurrency)})
	if err != nil {
		return err
	}
	gc, err := graph.New(graph.Options{BaseURL: cfg.GraphURL, H2C: cfg.H2C})
	if err != nil {
		return err
	}
	slots := make(chan struct{}, cfg.Concurrency)
	var inflight sync.WaitGroup
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			_ = msg.Nak()
			return
		}
		inflight.Add(1)
		go func() {
			defer func() { <-slots; inflight.Done() }()
			job, _, err := queue.Decode(msg.Data())
			if err != nil {
				_ = msg.Term()
				return
			}
			if _, err := gc.Send(ctx, graph.SendRequest{PhoneNumberID: job.PhoneNumberID, Token: cfg.Token, Message: job.Message, JobID: job.ID}); err != nil {
				_ = msg.Nak()
				return
			}
			_ = msg.Ack()
		}()
	}, jetstream.PullMaxMessages(min(cfg.Concurrency, 1000)), jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
		cc.Stop()
	}
	inflight.Wait()
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return err
	}
	return nil
}
