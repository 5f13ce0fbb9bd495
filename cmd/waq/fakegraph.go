package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/httpsrv"
)

func init() {
	register("fakegraph", "simulate Meta's Graph API (sends, errors, limits, webhooks) on a local port", runFakegraph)
}

const fakegraphUsage = `[--addr 127.0.0.1:8090] [--scenario FILE] [--token T]... [--latency D] [--jitter D]
       [--limits [--strict]] [--fast] [--webhook-url URL] [--app-secret S] [--verbose]

Serves the Graph API endpoints waq uses (POST /{version}/{phone_number_id}/messages
and /marketing_messages, GET debug_token, phone numbers and message_templates) and
the control API under /_fake/ (stats, sends, rules, scenario, reset, tokens, inbound,
accounts, limits, numbers, webhooks) until interrupted. It has no authentication: keep it on loopback.

--fast is the lean mode for benchmarks: a well-formed send is accepted with
almost no CPU (its body read only for "to"), without the scenario's rules,
limits, windows, templates or webhooks; latency, tokens and the phone-number
registry still apply, and a send it cannot accept gets Meta's error.`

func runFakegraph(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "fakegraph", fakegraphUsage)
	addr := fs.String("addr", "127.0.0.1:8090", "listen `address`")
	scenarioFile := fs.String("scenario", "", "scenario `file` (YAML or JSON)")
	var tokens stringList
	fs.Var(&tokens, "token", "accepted access `token` (repeatable; without any, every non-empty token is accepted)")
	latency := fs.Duration("latency", 0, "base latency of every send (overrides the scenario's)")
	jitter := fs.Duration("jitter", 0, "random latency added to --latency (overrides the scenario's)")
	limits := fs.Bool("limits", false, "enforce Meta's per-number throughput (80 mps) and pair (1 per 6s) limits")
	strict := fs.Bool("strict", false, "with --limits, enforce each number's mps as a sliding one-second window with no burst")
	fast := fs.Bool("fast", false, "lean mode: accept well-formed sends spending almost no CPU (no rules, limits or webhooks)")
	webhookURL := fs.String("webhook-url", "", "`URL` that receives status webhooks")
	appSecret := fs.String("app-secret", "", "app secret that signs webhooks (default $WAQ_APP_SECRET)")
	verbose := fs.Bool("verbose", false, "log every request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (waq fakegraph -h lists the flags)", fs.Arg(0))
	}
	if *latency < 0 || *jitter < 0 {
		return usagef("--latency and --jitter must not be negative")
	}
	sc := &fakegraph.Scenario{}
	if *scenarioFile != "" {
		var err error
		if sc, err = fakegraph.LoadScenario(*scenarioFile); err != nil {
			return usagef("%v", err)
		}
	}
	if *latency > 0 || *jitter > 0 {
		sc.Latency = fakegraph.Latency{Base: fakegraph.Duration(*latency), Jitter: fakegraph.Duration(*jitter)}
	}
	if *fast && (*limits || *webhookURL != "") {
		return usagef("--fast makes no scenario decisions and sends no webhooks: leave out --limits and --webhook-url")
	}
	if *strict && !*limits {
		return usagef("--strict needs --limits")
	}
	if *limits {
		sc.Limits.Throughput.Enabled = true
		sc.Limits.Pair.Enabled = true
	}
	if *strict {
		sc.Limits.Throughput.Strict = true
		sc.Limits.Throughput.Burst = 0
	}
	secret := *appSecret
	if secret == "" && env.Getenv != nil {
		secret = env.Getenv("WAQ_APP_SECRET")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		log.Warn("fakegraph listens on a non-loopback address; its control API has no authentication", "addr", ln.Addr().String())
	}
	sim := fakegraph.New(fakegraph.Config{
		Tokens:     tokens,
		Scenario:   sc,
		Logger:     log,
		WebhookURL: *webhookURL,
		AppSecret:  secret,
		Fast:       *fast,
	})
	hs := httpsrv.New(sim, httpsrv.Timeouts{}, slog.NewLogLogger(log.Handler(), slog.LevelDebug))
	hs.Protocols = fakegraph.Protocols()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(env.Stdout, "fakegraph listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		sim.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Close first: it ends the answers left hanging on purpose, which
	// Shutdown would otherwise wait for.
	sim.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
