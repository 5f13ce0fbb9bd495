package main

// The admin API (/admin/) and the ops console (/admin/ui/) on the worker's
// listener, mounted by `waq worker` and `waq dev` when WAQ_ADMIN_TOKEN is
// set. They use the worker's own Redis client, dead-letter store and
// producer (worker.Parts), which the worker closes when it stops: no second
// connection to Redis or NATS.

import (
	"context"

	"github.com/waqhq/waq/admin"
	"github.com/waqhq/waq/console"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/authlimit"
	"github.com/waqhq/waq/worker"
)

// mountOps mounts the admin API and the console once the worker has
// connected; without the token the worker's mux answers 404 there, which
// is "off". The console's overview reads the fleet's counts, which every
// worker adds to Redis.
func mountOps(w *worker.Worker, cfg worker.Config) {
	if cfg.AdminToken == "" {
		return
	}
	// One budget of wrong tokens per client address for both: guesses
	// do not get twice the rate by alternating between them.
	limiter := authlimit.New(authlimit.Options{Count: func(surface, result string) {
		w.Metrics().AuthFailures.WithLabelValues(surface, result).Inc()
	}})
	w.OnConnect(func(ctx context.Context, p worker.Parts) {
		counts := fleet.NewReader(p.Redis, cfg.KeyPrefix, nil)
		w.Handle("/admin/", admin.New(admin.Options{Token: cfg.AdminToken, Store: p.DeadLetters, Publisher: p.Producer, Fleet: counts, Logger: p.Logger, Limiter: limiter}))
		// Sign-ins and changes are logged where the worker logs.
		c := console.New(console.Options{
			Token:               cfg.AdminToken,
			Store:               p.DeadLetters,
			Publisher:           p.Producer,
			Fleet:               counts,
			Ledger:              p.Ledger,
			HashRecipient:       p.HashRecipient,
			Readiness:           w.Readiness,
			LowQualityMarketing: cfg.LowQualityMarketing,
			TemplateHoldMax:     cfg.TemplateHoldMax,
			TraceURL:            cfg.TraceURL,
			Logger:              p.Logger,
			Limiter:             limiter,
			Redis:               p.Redis,
			KeyPrefix:           cfg.KeyPrefix,
		})
		w.Handle(console.Prefix, c)
	})
}
