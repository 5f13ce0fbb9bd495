package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

func init() {
	register("dev", "run NATS, Redis, the simulator, a worker and a demo load on this machine, and watch", runDev)
}

const devUsage = `[--rate N] [--jobs N] [--duration D] [--no-tty] [--redis auto|redis-server|in-process] [--any-port]

Starts, on loopback: an embedded NATS server with JetStream, a Redis (redis-server
from PATH as a child process, or an in-process one), the Graph API simulator with a
demo scenario, one worker (its log goes to a file), and a demo that publishes a mix
of jobs; then shows live what becomes of them. Other commands (waq send, waq dlq)
find it from a second terminal without flags. Ctrl-C stops everything.`

// The ports waq dev prefers, so that the commands it prints are the
// defaults; any that is taken is replaced by a free one.
const (
	devNATSPort   = 4222
	devRedisPort  = 6379
	devGraphPort  = 8090
	devWorkerPort = 8080
)

func runDev(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "dev", devUsage)
	rate := fs.Float64("rate", 20, "demo jobs published per second")
	jobs := fs.Int("jobs", 0, "stop publishing after N jobs (0: until stopped)")
	duration := fs.Duration("duration", 0, "stop everything after D (0: at Ctrl-C)")
	noTTY := fs.Bool("no-tty", false, "print plain lines once a second instead of redrawing the screen")
	redisMode := fs.String("redis", devenv.RedisAuto, "which Redis: auto (redis-server when on PATH), redis-server or in-process")
	anyPort := fs.Bool("any-port", false, "listen on free ports rather than 4222, 6379, 8090 and 8080")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *rate <= 0 || *rate > 10000 {
		return usagef("--rate %v: want more than 0 and at most 10000 jobs per second", *rate)
	}
	if *jobs < 0 || *duration < 0 {
		return usagef("--jobs and --duration must not be negative")
	}
	statePath := devStatePath(env)
	if m := readDevState(statePath); m != nil {
		return fmt.Errorf("another waq dev (pid %s) is running; its addresses are in %s", m["pid"], statePath)
	}
	port := func(p int) int {
		if *anyPort {
			return 0
		}
		return p
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	dir, err := os.MkdirTemp("", "waq-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Closers run in reverse order of start, also when a start fails.
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	// Servers start on a context of their own: a Ctrl-C during start-up
	// still gets the clean stop below.
	nats, err := devenv.StartNATS(devenv.NATSOptions{Port: port(devNATSPort), StoreDir: filepath.Join(dir, "jetstream"), SyncAlways: true, Monitor: true})
	if err != nil {
		return err
	}
	closers = append(closers, nats.Close)
	redisDir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(redisDir, 0o700); err != nil {
		return err
	}
	rds, err := devenv.StartRedis(context.WithoutCancel(ctx), devenv.RedisOptions{Mode: *redisMode, Port: port(devRedisPort), Dir: redisDir, AppendFsync: "everysec"})
	if err != nil {
		return err
	}
	closers = append(closers, rds.Close)

	logPath := filepath.Join(dir, "worker.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	closers = append(closers, func() { logFile.Close() })
	log, _ := telemetry.NewLogger(logFile, "text", "info")
	graph, err := devenv.ServeGraph(port(devGraphPort), fakegraph.Config{Scenario: devenv.DemoScenario(), Logger: log.With("component", "fakegraph")})
	if err != nil {
		return err
	}
	closers = append(closers, graph.Close)

	ln, err := devenv.Listen(port(devWorkerPort))
	if err != nil {
		return err
	}
	tracing, err := telemetry.SetupTracing(ctx, "waq-dev", env.Getenv)
	if err != nil {
		ln.Close()
		return err
	}
	closers = append(closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(sctx)
	})
	cfg := worker.Config{
		NATSURL:         nats.URL,
		RedisURL:        rds.URL,
		GraphURL:        graph.URL,
		AccessToken:     "dev-token",
		HTTPAddr:        ln.Addr().String(),
		LogFormat:       "text",
		ShutdownTimeout: 10 * time.Second,
		TraceURL:        env.Getenv("WAQ_TRACE_URL"),
		AdminToken:      env.Getenv("WAQ_ADMIN_TOKEN"),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := worker.New(cfg, env.Getenv, worker.Options{Logger: log, Listener: ln, TracerProvider: tracing.Provider, Registry: reg})
	if err != nil {
		ln.Close()
		return err
	}
	mountOps(w, cfg)
	// The worker stops when ctx ends (Ctrl-C, --duration) or when waq dev
	// stops it first; its graceful stop is waited for before the servers
	// it needs go away.
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	closers = append(closers, func() {
		stopWorker()
		<-workerDone
	})
	if err := waitReady(ctx, w, workerDone); err != nil {
		return err
	}

	workerURL := "http://" + w.Addr()
	state := map[string]string{
		"pid":             strconv.Itoa(os.Getpid()),
		natsSetting.dev:   nats.URL,
		redisSetting.dev:  rds.URL,
		graphSetting.dev:  graph.URL,
		"http_addr":       w.Addr(),
		streamSetting.dev: queue.DefaultStream,
		"log":             logPath,
		// What waq doctor checks, so that it runs beside waq dev without
		// flags: the demo's token (a simulator's, not a secret), its first
		// number and that number's WABA.
		tokenSetting.dev:  cfg.AccessToken,
		"phone_number_id": devenv.NumberStore,
		"waba_id":         devenv.DemoWABA,
		// Where doctor reads the embedded NATS server's sync setting.
		"nats_monitor_url": nats.MonitorURL,
	}
	if err := writeDevState(statePath, state); err != nil {
		return err
	}
	closers = append(closers, func() { removeDevState(statePath) })

	nc, js, err := conn.JetStream(ctx, nats.URL, "waq dev demo")
	if err != nil {
		return err
	}
	closers = append(closers, nc.Close)
	demo := &devenv.Demo{
		Producer: queue.NewProducer(js, queue.ProducerOptions{TracerProvider: tracing.Provider}),
		Sim:      graph.Sim,
		Rate:     *rate,
		Jobs:     *jobs,
	}
	demoCtx, stopDemo := context.WithCancel(ctx)
	demoDone := make(chan struct{})
	go func() { defer close(demoDone); demo.Run(demoCtx) }()
	closers = append(closers, func() { stopDemo(); <-demoDone })

	cons, err := js.Consumer(ctx, queue.DefaultStream, queue.DefaultConsumer)
	if err != nil {
		return fmt.Errorf("the worker's consumer: %w", err)
	}
	rdb, err := conn.Redis(rds.URL)
	if err != nil {
		return err
	}
	closers = append(closers, func() { _ = rdb.Close() })
	sc := &devScreen{
		started:   time.Now(),
		demo:      demo,
		reg:       reg,
		cons:      cons,
		dlq:       deadletter.New(rdb, deadletter.Options{}),
		sim:       graph.Sim,
		readyURL:  workerURL + "/readyz",
		http:      &http.Client{Timeout: time.Second},
		prog:      progName(),
		redis:     rds.Describe(),
		nats:      nats.URL,
		graph:     graph.URL,
		console:   cfg.AdminToken != "",
		workerURL: workerURL,
		logPath:   logPath,
		statePath: statePath,
		tracing:   tracing.Exporting,
		traceURL:  cfg.TraceURL,
	}
	tty := !*noTTY && isTerminal(env.Stdout)
	err = sc.loop(ctx, env.Stdout, tty, workerDone)
	// A stop by Ctrl-C or --duration is the normal end.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	stopDemo()
	<-demoDone
	fmt.Fprintln(env.Stdout, "stopping: the worker finishes its sends in flight, then NATS, Redis and the simulator stop")
	return err
}

// waitReady waits until the worker consumes, or fails.
func waitReady(ctx context.Context, w *worker.Worker, done <-chan error) error {
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !w.Ready() {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("stopped at start")
			}
			return fmt.Errorf("worker: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("worker: not ready after 30s")
		case <-tick.C:
		}
	}
	return nil
}
