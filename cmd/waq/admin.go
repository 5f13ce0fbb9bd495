package main

// The admin API on the worker's listener: mounted when WAQ_ADMIN_TOKEN is
// set, with its own Redis client and a NATS connection made on the first
// replay, so that the worker's own start-up is unchanged.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/admin"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/worker"
)

func init() {
	// Chain, so that other files mounting their own extras (console,
	// webhook) do not replace this one, whatever the order of init.
	prev := mountExtras
	mountExtras = func(w *worker.Worker, cfg worker.Config, env *Env) {
		prev(w, cfg, env)
		mountAdmin(w, cfg)
	}
}

// mountAdmin mounts /admin/ when the token is configured; without it the
// worker's mux answers 404 there, which is "off".
func mountAdmin(w *worker.Worker, cfg worker.Config) {
	if cfg.AdminToken == "" {
		return
	}
	rdb, err := conn.Redis(cfg.RedisURL)
	if err != nil {
		// The worker validated the URL and reports it at start.
		return
	}
	store := deadletter.New(rdb, deadletter.Options{Prefix: cfg.KeyPrefix, Retention: cfg.DLQRetention})
	pub := &lazyPublisher{url: cfg.NATSURL}
	w.Handle("/admin/", admin.New(admin.Options{Token: cfg.AdminToken, Store: store, Publisher: pub, Logger: slog.Default()}))
}

// lazyPublisher connects to NATS on its first publish (and again after a
// failed connect), so that mounting does not wait for NATS before the
// worker's own connect reports it.
type lazyPublisher struct {
	url  string
	mu   sync.Mutex
	nc   *nats.Conn
	prod *queue.Producer
}

func (p *lazyPublisher) PublishWith(ctx context.Context, job *queue.Job, opts queue.PublishOptions) (string, error) {
	prod, err := p.producer(ctx)
	if err != nil {
		return "", err
	}
	return prod.PublishWith(ctx, job, opts)
}

func (p *lazyPublisher) producer(ctx context.Context) (*queue.Producer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prod != nil {
		return p.prod, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := conn.NATS(cctx, p.url, "waq admin")
	if err != nil {
		return nil, fmt.Errorf("admin replay: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("admin replay: %w", err)
	}
	p.nc, p.prod = nc, queue.NewProducer(js, queue.ProducerOptions{})
	return p.prod, nil
}
