package main

// The ops console on the worker's listener under /admin/ui/: mounted when
// WAQ_ADMIN_TOKEN is set, beside the admin API, with its own Redis client
// and a NATS connection made on the first replay, like the admin API's.

import (
	"context"

	"github.com/waqhq/waq/console"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

func init() {
	// Chain, as admin.go does, so that neither replaces the other.
	prev := mountExtras
	mountExtras = func(w *worker.Worker, cfg worker.Config, env *Env) {
		prev(w, cfg, env)
		mountConsole(w, cfg, env)
	}
}

// mountConsole mounts /admin/ui/ when the token is configured, and samples
// the worker's metrics for the overview until the worker stops.
func mountConsole(w *worker.Worker, cfg worker.Config, env *Env) {
	if cfg.AdminToken == "" {
		return
	}
	// Sign-ins and changes are logged where the worker logs, as it does.
	log, err := telemetry.NewLogger(env.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return // the worker refused this setting already
	}
	rdb, err := conn.Redis(cfg.RedisURL)
	if err != nil {
		// The worker validated the URL and reports it at start.
		return
	}
	pub := &lazyPublisher{url: cfg.NATSURL}
	c := console.New(console.Options{
		Token:     cfg.AdminToken,
		Store:     deadletter.New(rdb, deadletter.Options{Prefix: cfg.KeyPrefix, Retention: cfg.DLQRetention}),
		Publisher: pub,
		Gatherer:  w.Registry(),
		Readiness: w.Readiness,
		TraceURL:  cfg.TraceURL,
		Logger:    log,
	})
	w.Handle(console.Prefix, c)
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-w.Stopping(); cancel() }()
		c.Run(ctx)
		// The worker is stopping: let go of the console's connections.
		_ = rdb.Close()
		pub.close()
	}()
}

// close closes the publisher's NATS connection, if it made one.
func (p *lazyPublisher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nc != nil {
		p.nc.Close()
	}
}
