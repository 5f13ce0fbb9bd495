package main

import (
	"context"
	"time"

	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

func init() {
	register("worker", "deliver jobs from the stream to the Graph API", runWorker)
}

func runWorker(ctx context.Context, env *Env, args []string) error {
	var cfg worker.Config
	fs := newFlags(env, "worker", "[flags]  (every flag also reads its WAQ_* variable)")
	cfg.BindFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.FromEnv(env.Getenv); err != nil {
		return err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := telemetry.NewLogger(env.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	gc := tuneGC(env.Getenv, cfg.Concurrency)
	tracing, err := telemetry.SetupTracing(ctx, worker.ServiceName, env.Getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
	}()
	w, err := worker.New(cfg, env.Getenv, worker.Options{Logger: log, TracerProvider: tracing.Provider, StartInfo: []any{"gc", gc}})
	if err != nil {
		return err
	}
	// The webhook is the worker's own (WAQ_APP_SECRET); the admin API and
	// the console are mounted here.
	mountOps(w, cfg)
	return w.Run(ctx)
}
