package worker

import (
	"cmp"
	"context"
	"crypto/rand"
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
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
	"github.com/waqhq/waq/webhook"
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
	// httpAttrs are the attributes of every Graph API CLIENT span, made
	// once: server.address is the host alone, as OTel's HTTP conventions
	// (and a tracing UI's peer grouping) want it, not the base URL.
	httpAttrs []attribute.KeyValue

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
	// pool hands jobs to the goroutines that run them (see startPool);
	// poolDone ends them.
	poolOnce sync.Once
	pool     chan jetstream.Msg
	poolDone chan struct{}
	// startInfo is added to the "worker started" line.
	startInfo []any
	// timers carry on the jobs that wait for their paced slot.
	timers timers
	// active holds the ids of the jobs under way in this process.
	activeMu sync.Mutex
	active   map[string]struct{}
	// kept counts, per number, jobs waiting here for the number's schedule.
	keptMu sync.Mutex
	kept   map[string]int
	// stopping is closed when a graceful stop begins.
	stopping chan struct{}
	inflight sync.WaitGroup
	handlers []route
	// onConnect mount what shares the worker's connections (OnConnect).
	onConnect []func(context.Context, Parts)
	listener  net.Listener
	server    *http.Server
	ready     atomic.Bool // Run finished starting
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
}

// New checks the configuration, reads the policy and phone-number files, and
// returns a worker ready to Run. Every problem is one error naming the
// setting, or the file and line.
func New(cfg Config, getenv func(string) string, opts Options) (*Worker, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, now: opts.Now, stopping: make(chan struct{}), startInfo: opts.StartInfo}
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
	w.httpAttrs = graphSpanAttrs(gc.BaseURL())
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
	w.listener = opts.Listener
	w.gauges = opts.GaugeInterval
	host, _ := os.Hostname()
	w.id = host + "-" + strconv.Itoa(os.Getpid())
	w.slots = make(chan struct{}, cfg.Concurrency)
	w.held = make(chan struct{}, cfg.Concurrency+waitingJobs(cfg.Concurrency))
	w.busy = make(chan struct{}, cfg.Concurrency+max(64, cfg.Concurrency/8))
	w.kept = map[string]int{}
	w.active = map[string]struct{}{}
	return w, nil
}

// graphSpanAttrs are the CLIENT span attributes of a send to base.
func graphSpanAttrs(base string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", "POST"),
		attribute.String("url.template", "/{version}/{phone_number_id}/messages"),
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
	bg.Add(4)
	go func() { defer bg.Done(); w.gate.Run(bgCtx) }()
	go func() { defer bg.Done(); w.watchRedis(bgCtx) }()
	go func() { defer bg.Done(); w.watchConsumer(bgCtx) }()
	go func() { defer bg.Done(); w.sweepDeadLetters(bgCtx) }()

	started := []any{"worker", w.id, "stream", w.cfg.Stream, "concurrency", w.cfg.Concurrency,
		"graph_url", w.cfg.GraphURL, "graph_version", w.cfg.GraphVersion, "http_addr", w.Addr(),
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

func (w *Worker) connect(ctx context.Context) error {
	nc, err := conn.NATS(ctx, w.cfg.NATSURL, "waq-worker "+w.id,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			w.health.set("nats", errOr(err, "disconnected"))
			w.metrics.Up.WithLabelValues("nats").Set(0)
			w.log.Warn("nats disconnected", "error", errString(err))
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
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
	w.events, err = queue.EnsureConsumer(sctx, events, queue.ConsumerConfig{Durable: "waq-status", AckWait: 30 * time.Second, MaxAckPending: 10000})
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
	if w.nc != nil {
		_ = w.nc.Drain()
		w.nc.Close()
	}
	if w.rdb != nil {
		_ = w.rdb.Close()
	}
}

// maxPool bounds the goroutines kept to run jobs: each keeps the stack
// its deepest job grew (about 16 KiB), so thousands of them would hold
// memory the runtime could otherwise give back. Past it, a job gets a
// goroutine of its own.
const maxPool = 256

// startPool starts (once) the goroutines that run jobs; they stop when Run
// returns.
func (w *Worker) startPool(work context.Context) (jobs chan<- jetstream.Msg, done <-chan struct{}) {
	w.poolOnce.Do(func() {
		w.pool = make(chan jetstream.Msg)
		w.poolDone = make(chan struct{})
		for range min(cap(w.busy), maxPool) {
			go func() {
				for {
					select {
					case msg := <-w.pool:
						w.handle(work, msg)
					case <-w.poolDone:
						return
					}
				}
			}()
		}
	})
	return w.pool, w.poolDone
}

// consume pulls jobs and hands each to a goroutine until ctx ends. The
// consume callback runs on one goroutine: blocking it (too many jobs held, a
// dependency down) is the back-pressure, and pulls stop once the client's
// buffer is full.
func (w *Worker) consume(ctx, work context.Context) error {
	batch := w.cfg.Concurrency
	if batch > 1000 {
		batch = 1000
	}
	// Jobs run on a pool of goroutines, one per busy place: a goroutine
	// made per job would grow its stack again for every job (the send path
	// is deep), which cost about 5% of the worker's CPU. The pool outlives
	// this call (a callback may still be running when it returns) and ends
	// with Run.
	jobs, poolDone := w.startPool(work)
	callback := func(msg jetstream.Msg) {
		if ctx.Err() != nil {
			// Stopping: hand back what was pulled and not started, so
			// another worker takes it now rather than after the ack wait.
			_ = msg.Nak()
			return
		}
		if w.health.anyDown() {
			// Pulled before a dependency went down: leave it to come back
			// after the ack wait (see below).
			return
		}
		select {
		case w.held <- struct{}{}:
		case <-ctx.Done():
			_ = msg.Nak()
			return
		}
		select {
		case w.busy <- struct{}{}:
		case <-ctx.Done():
			<-w.held
			_ = msg.Nak()
			return
		}
		w.inflight.Add(1)
		select {
		case jobs <- msg: // the goroutine gives back the hold, the busy place and the in-flight count
		case <-poolDone:
			<-w.busy
			<-w.held
			w.inflight.Done()
			_ = msg.Nak()
		default:
			// Every pooled goroutine is busy.
			go w.handle(work, msg)
		}
	}
	for {
		if err := w.health.waitUp(ctx); err != nil {
			return nil
		}
		cc, err := w.cons.Consume(callback,
			jetstream.PullMaxMessages(batch),
			jetstream.PullExpiry(5*time.Second),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if ctx.Err() == nil && !errors.Is(err, nats.ErrConnectionClosed) {
					w.log.Debug("pull", "error", err)
				}
			}))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("could not start pulling; trying again", "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			drain(cc)
			return nil
		case <-w.health.whenDown(ctx):
			// A dependency is down: stop pulling, and drop what was pulled
			// and not started. Those jobs come back after the ack wait. Kept
			// here until the dependency returned, they could be taken up
			// late, while JetStream had already given them to another
			// delivery: two deliveries of one job at once may both send it.
			cc.Stop()
			select {
			case <-cc.Closed():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// drain stops pulling and lets the messages already pulled reach the
// callback (which hands them back), for at most five seconds.
func drain(cc jetstream.ConsumeContext) {
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
		cc.Stop()
	}
}

// watchRedis pings Redis while it is marked down, and marks it up again.
func (w *Worker) watchRedis(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := w.rdb.Ping(pctx).Err()
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.setRedis(err)
	}
}

func (w *Worker) setRedis(err error) {
	was := w.health.get("redis")
	w.health.set("redis", err)
	if err != nil {
		w.metrics.Up.WithLabelValues("redis").Set(0)
		if was == nil {
			w.log.Warn("redis unreachable: taking no new jobs until it answers", "error", err)
		}
	} else {
		w.metrics.Up.WithLabelValues("redis").Set(1)
		if was != nil {
			w.log.Info("redis answers again: taking jobs")
		}
	}
}

// watchConsumer publishes the consumer's pending counts as metrics.
func (w *Worker) watchConsumer(ctx context.Context) {
	t := time.NewTicker(cmp.Or(w.gauges, 5*time.Second))
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := w.cons.Info(ictx)
		cancel()
		if err == nil {
			w.metrics.Pending.Set(float64(info.NumPending))
			w.metrics.AckPending.Set(float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepDeadLetters removes expired entries now and then, and publishes the
// store's size by reason.
func (w *Worker) sweepDeadLetters(ctx context.Context) {
	t := time.NewTicker(cmp.Or(w.gauges, 15*time.Second))
	defer t.Stop()
	last := time.Time{}
	for {
		if time.Since(last) > time.Minute {
			if n, err := w.dlq.Sweep(ctx); err == nil && n > 0 {
				w.log.Info("expired dead-letter entries removed", "count", n, "retention", w.cfg.DLQRetention)
			}
			last = time.Now()
		}
		if counts, err := w.dlq.CountByReason(ctx); err == nil {
			w.metrics.DeadLetter.Reset()
			for r, n := range counts {
				w.metrics.DeadLetter.WithLabelValues(r).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitingJobs is how many jobs a process may hold waiting for their paced
// slot besides those sending: enough to keep every number's schedule
// reserved a couple of seconds ahead at a few thousand sends per second.
func waitingJobs(concurrency int) int {
	return min(max(2048, 2*concurrency), 8192)
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
