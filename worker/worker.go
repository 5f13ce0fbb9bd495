package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
)

// Worker delivers jobs. Create it with New, run it with Run.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	policy  *policy.Policy
	numbers *numbers.Registry
	graph   *graph.Client
	tp      trace.TracerProvider
	tracer  trace.Tracer
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
	gate    *throttle.Gate
	now     func() time.Time
	id      string
	gauges  time.Duration // Options.GaugeInterval
	// httpStart starts every Graph API CLIENT span (its kind and
	// attributes), made once, as options are allocated each time they are
	// made: server.address is the host alone, as OTel's HTTP conventions
	// (and a tracing UI's peer grouping) want it, not the base URL.
	// marketingStart is that of a send to /marketing_messages.
	httpStart, marketingStart []trace.SpanStartOption

	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	cons   jetstream.Consumer
	events jetstream.Consumer
	// producer publishes jobs again (a failure reported by webhook).
	producer *queue.Producer
	rdb      redis.UniversalClient
	fast     redis.Cmdable
	ledger   *ledger.Ledger
	dlq      *deadletter.Store
	hasher   *telemetry.RecipientHasher

	health health
	// acks remembers recent acks, to confirm them after a NATS outage.
	acks *acks
	// graphWatch tells whether the Graph API answers (/readyz "degraded").
	graphWatch graphWatch
	// consumer is the consumer's counts as last read (watchConsumer), for
	// the fleet's view.
	consumer atomic.Pointer[fleet.Consumer]
	// slots bounds sends in flight (WAQ_CONCURRENCY); held bounds the jobs
	// this process holds at all, sending or waiting for a paced slot. A full
	// held stops the pulls: that is the back-pressure that keeps a backlog
	// in the stream rather than churning through naks.
	slots chan struct{}
	held  chan struct{}
	// busy bounds the jobs with a goroutine of their own (all but those
	// waiting on a timer): a job that waits for a send slot waits in its
	// goroutine, and each goroutine's stack costs memory.
	busy chan struct{}
	// pool hands jobs to the goroutines that run them (see startPool),
	// later the jobs whose paced slot has come; poolDone ends them.
	poolOnce sync.Once
	pool     chan pulled
	later    chan func()
	poolDone chan struct{}
	// startInfo is added to the "worker started" line.
	startInfo []any
	// timers carry on the jobs that wait for their paced slot.
	timers timers
	// active holds the ids of the jobs under way in this process.
	activeMu sync.Mutex
	active   map[string]struct{}
	// lines hold, per number, the jobs waiting here for the number's
	// schedule to come within the horizon (line.go).
	lines lines
	// stall, set by tests only, runs at the start of the consume callback
	// (stage "pulled") and before a job waits for its send slot
	// ("waiting"): a test holds it to stand the worker still there.
	stall func(stage string)
	// stopping is closed when a graceful stop begins.
	stopping chan struct{}
	inflight sync.WaitGroup
	handlers []route
	// onConnect mount what shares the worker's connections (OnConnect).
	onConnect []func(context.Context, Parts)
	listener  net.Listener
	server    *http.Server
	// webhookListener and webhookServer serve /webhook alone when
	// WAQ_WEBHOOK_ADDR is set; nil otherwise.
	webhookListener net.Listener
	webhookServer   *http.Server
	ready           atomic.Bool // Run finished starting
}

// route is an extra HTTP handler mounted on the worker's listener.
type route struct {
	pattern string
	handler http.Handler
}

// Options are what a caller (a test, `waq dev`) injects into a worker.
type Options struct {
	// Logger defaults to a logger built from the config's format and level,
	// writing to stderr.
	Logger *slog.Logger
	// TracerProvider defaults to none (no spans).
	TracerProvider trace.TracerProvider
	// Registry collects the metrics; defaults to a new one with Go and
	// process collectors.
	Registry *prometheus.Registry
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Listener, when set, serves HTTP instead of listening on HTTPAddr.
	Listener net.Listener
	// GaugeInterval is how often the gauges read from NATS and Redis are
	// refreshed (the consumer's pending counts, the dead-letter store's size
	// by reason). Defaults to 5s for the consumer and 15s for the store.
	GaugeInterval time.Duration
	// StartInfo is added to the "worker started" line (key, value pairs):
	// what the command set up around the worker, such as the garbage
	// collector's settings.
	StartInfo []any
	// stall: see Worker.stall (export_test.go sets it).
	stall func(stage string)
}

// New checks the configuration, reads the policy and phone-number files, and
// returns a worker ready to Run. Every problem is one error naming the
// setting, or the file and line.
func New(cfg Config, getenv func(string) string, opts Options) (*Worker, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, now: opts.Now, stopping: make(chan struct{}), startInfo: opts.StartInfo, stall: opts.stall}
	if w.now == nil {
		w.now = time.Now
	}
	w.log = opts.Logger
	if w.log == nil {
		l, err := telemetry.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
		if err != nil {
			return nil, &ConfigError{Setting: "WAQ_LOG_LEVEL", Problem: err.Error()}
		}
		w.log = l
	}
	w.policy = policy.Default()
	if cfg.PolicyFile != "" {
		p, err := policy.Load(cfg.PolicyFile)
		if err != nil {
			return nil, fmt.Errorf("WAQ_POLICY_FILE: %w", err)
		}
		w.policy = p
	}
	env := func(k string) string {
		if k == numbers.DefaultTokenEnv && cfg.AccessToken != "" {
			return cfg.AccessToken
		}
		return getenv(k)
	}
	reg, err := numbers.Load(cfg.PhoneNumbersFile, env)
	if err != nil {
		return nil, fmt.Errorf("WAQ_PHONE_NUMBERS_FILE: %w", err)
	}
	w.numbers = reg
	gc, err := graph.New(graph.Options{BaseURL: cfg.GraphURL, Version: cfg.GraphVersion, Timeout: cfg.GraphTimeout, H2C: cfg.GraphH2C})
	if err != nil {
		return nil, &ConfigError{Setting: "WAQ_GRAPH_URL", Problem: err.Error()}
	}
	w.graph = gc
	w.httpStart = graphSpanStart(gc.BaseURL(), graph.EdgeMessages)
	w.marketingStart = graphSpanStart(gc.BaseURL(), graph.EdgeMarketingMessages)
	tp := opts.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	w.tp = tp
	w.tracer = tp.Tracer("github.com/waqhq/waq/worker")
	w.reg = opts.Registry
	if w.reg == nil {
		w.reg = prometheus.NewRegistry()
		w.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	w.metrics = telemetry.NewMetrics(w.reg)
	for _, stage := range []string{lapsedPulled, lapsedWaiting} {
		w.metrics.Lapsed.WithLabelValues(stage) // at 0 from the start, for alerts
	}
	w.listener = opts.Listener
	w.gauges = opts.GaugeInterval
	host, _ := os.Hostname()
	w.id = host + "-" + strconv.Itoa(os.Getpid())
	w.slots = make(chan struct{}, cfg.Concurrency)
	w.held = make(chan struct{}, cfg.Concurrency+waitingJobs(cfg.Concurrency))
	w.busy = make(chan struct{}, cfg.Concurrency+max(64, cfg.Concurrency/8))
	w.active = map[string]struct{}{}
	return w, nil
}

// graphSpanAttrs are the CLIENT span attributes of a send to base's edge.
// graphSpanStart is the start options of a Graph API CLIENT span.
func graphSpanStart(base, edge string) []trace.SpanStartOption {
	return []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(graphSpanAttrs(base, edge)...)}
}

func graphSpanAttrs(base, edge string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", "POST"),
		attribute.String("url.template", "/{version}/{phone_number_id}/"+edge),
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" {
		return attrs
	}
	attrs = append(attrs, attribute.String("server.address", u.Hostname()))
	port := u.Port()
	switch {
	case port == "" && u.Scheme == "https":
		port = "443"
	case port == "":
		port = "80"
	}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	return attrs
}

// Handle mounts an extra handler on the worker's listener: before Run, or
// from a function given to OnConnect.
func (w *Worker) Handle(pattern string, h http.Handler) {
	w.handlers = append(w.handlers, route{pattern, h})
}

// Metrics returns the worker's metrics.
func (w *Worker) Metrics() *telemetry.Metrics { return w.metrics }

// Addr is the address the HTTP listener serves on, once Run has started it.
func (w *Worker) Addr() string {
	if w.listener == nil {
		return ""
	}
	return w.listener.Addr().String()
}

// WebhookAddr is the address of the webhook's own listener
// (WAQ_WEBHOOK_ADDR) once Run has started it; "" when there is none
// (/webhook, if on, is served on Addr).
func (w *Worker) WebhookAddr() string {
	if w.webhookListener == nil {
		return ""
	}
	return w.webhookListener.Addr().String()
}

// Ready reports whether Run has connected and begun consuming.
func (w *Worker) Ready() bool { return w.ready.Load() }

// Run connects to NATS and Redis, serves HTTP and delivers jobs until ctx
// ends, then stops gracefully within the shutdown timeout: it stops
// pulling, hands back jobs it has not started, and lets sends in flight
// finish and record their outcome.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.connect(ctx); err != nil {
		return err
	}
	defer w.close()
	// The gate before the listener: /readyz reads it from the first request.
	w.gate = newGate(w)
	// What is mounted beside the worker lives until its graceful stop.
	mounted, stopMounted := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMounted()
	w.connected(mounted)
	if err := w.serveHTTP(); err != nil {
		return err
	}
	defer w.stopHTTP()

	// work is the context of sends in flight: it outlives ctx by the
	// shutdown bound, so a send that has begun can finish and record its
	// outcome.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	bg.Add(6)
	go func() { defer bg.Done(); w.releaseHeld(bgCtx) }()
	go func() { defer bg.Done(); w.gate.Run(bgCtx) }()
	go func() { defer bg.Done(); w.publishCounts(bgCtx) }()
	go func() { defer bg.Done(); w.watchRedis(bgCtx) }()
	go func() { defer bg.Done(); w.watchConsumer(bgCtx) }()
	go func() { defer bg.Done(); w.sweepDeadLetters(bgCtx) }()

	started := []any{"worker", w.id, "stream", w.cfg.Stream, "concurrency", w.cfg.Concurrency,
		"graph_url", w.cfg.GraphURL, "graph_version", w.cfg.GraphVersion, "http_addr", w.Addr(), "webhook_addr", w.WebhookAddr(),
		"policy_file", w.cfg.PolicyFile, "phone_numbers", len(w.numbers.Listed())}
	w.log.Info("worker started", append(started, w.startInfo...)...)
	w.ready.Store(true)
	evDone := make(chan error, 1)
	go func() { evDone <- w.consumeEvents(ctx, work) }()
	err := w.consume(ctx, work)
	if evErr := <-evDone; err == nil {
		err = evErr
	}

	close(w.stopping)
	stopMounted()
	w.stopLines()
	w.timers.stop()
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.log.Warn("shutdown bound passed with sends in flight; their jobs will be redelivered", "bound", w.cfg.ShutdownTimeout)
		cancelWork()
		<-done
	}
	stopBG()
	bg.Wait()
	if w.poolDone != nil {
		close(w.poolDone)
	}
	w.log.Info("worker stopped", "worker", w.id)
	return err
}

// jitter spreads a delay by ±10% so that jobs held back together do not come
// back together.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	f := 0.9 + 0.2*mrand.Float64()
	return time.Duration(math.Round(float64(d) * f))
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
