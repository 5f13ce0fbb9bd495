package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
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
	nats, err := devenv.StartNATS(devenv.NATSOptions{Port: port(devNATSPort), StoreDir: filepath.Join(dir, "jetstream"), SyncAlways: true})
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
	}
	if err := writeDevState(statePath, state); err != nil {
		return err
	}
	closers = append(closers, func() { removeDevState(statePath) })

	nc, err := conn.NATS(ctx, nats.URL, "waq dev demo")
	if err != nil {
		return err
	}
	closers = append(closers, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
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

// writeDevState writes the state file atomically (a reader never sees half
// of it), readable by this user only.
func writeDevState(path string, m map[string]string) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// removeDevState removes the state file if it is still this process's.
func removeDevState(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var m map[string]string
	if json.Unmarshal(data, &m) == nil && m["pid"] != strconv.Itoa(os.Getpid()) {
		return
	}
	os.Remove(path)
}

// isTerminal reports whether w is a terminal (redrawing makes sense).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progName is how the user runs waq: "waq" when that is on PATH, "go run
// ./cmd/waq" under go run, else the path it was started as.
func progName() string {
	exe, err := os.Executable()
	if err != nil {
		return "waq"
	}
	if strings.Contains(exe, "go-build") || strings.HasSuffix(exe, ".test") {
		return "go run ./cmd/waq"
	}
	if p, err := exec.LookPath("waq"); err == nil {
		if a, err1 := os.Stat(p); err1 == nil {
			if b, err2 := os.Stat(exe); err2 == nil && os.SameFile(a, b) {
				return "waq"
			}
		}
	}
	return os.Args[0]
}

// devScreen gathers what becomes of the demo's jobs and shows it.
type devScreen struct {
	started   time.Time
	demo      *devenv.Demo
	reg       *prometheus.Registry
	cons      jetstream.Consumer
	dlq       *deadletter.Store
	sim       *fakegraph.Server
	readyURL  string
	http      *http.Client
	prog      string
	redis     string
	nats      string
	graph     string
	workerURL string
	logPath   string
	statePath string
	tracing   bool
	traceURL  string
	console   bool // WAQ_ADMIN_TOKEN is set: the worker serves /admin/ui/
}

// devView is one look at the pipeline.
type devView struct {
	at          time.Duration
	demo        devenv.DemoCounts
	sent        float64
	parked      map[string]float64
	retries     map[string]float64
	throttled   map[string]float64
	inFlight    float64
	pending     uint64
	ackPending  int
	ready       *worker.Readiness
	dlq         map[string]int64
	dlqErr      string
	sim         fakegraph.Stats
	failedID    string
	failedTrace string
}

func (s *devScreen) look(ctx context.Context) devView {
	v := devView{at: time.Since(s.started).Round(time.Second), demo: s.demo.Counts(),
		parked: map[string]float64{}, retries: map[string]float64{}, throttled: map[string]float64{}}
	if mfs, err := s.reg.Gather(); err == nil {
		for _, mf := range mfs {
			switch mf.GetName() {
			case "waq_sends_total":
				for _, m := range mf.GetMetric() {
					if label(m, "outcome") == "sent" {
						v.sent += m.GetCounter().GetValue()
					}
				}
			case "waq_parked_total":
				sumBy(mf, "reason", v.parked)
			case "waq_retries_total":
				sumBy(mf, "code", v.retries)
			case "waq_throttled_total":
				sumBy(mf, "scope", v.throttled)
			case "waq_sends_in_flight":
				for _, m := range mf.GetMetric() {
					v.inFlight += m.GetGauge().GetValue()
				}
			}
		}
	}
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if info, err := s.cons.Info(ictx); err == nil {
		v.pending, v.ackPending = info.NumPending, info.NumAckPending
	}
	if req, err := http.NewRequestWithContext(ictx, http.MethodGet, s.readyURL, nil); err == nil {
		if resp, err := s.http.Do(req); err == nil {
			var r worker.Readiness
			if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r) == nil {
				v.ready = &r
			}
			resp.Body.Close()
		}
	}
	if m, err := s.dlq.CountByReason(ictx); err == nil {
		v.dlq = m
	} else {
		v.dlqErr = err.Error()
	}
	if v.dlq["window"] > 0 {
		if page, err := s.dlq.List(ictx, deadletter.Filter{Reason: "window"}, "", 1); err == nil && len(page.Entries) > 0 {
			v.failedID, v.failedTrace = page.Entries[0].ID, page.Entries[0].TraceID
		}
	}
	v.sim = s.sim.Stats(false)
	return v
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func sumBy(mf *dto.MetricFamily, name string, into map[string]float64) {
	for _, m := range mf.GetMetric() {
		into[label(m, name)] += m.GetCounter().GetValue()
	}
}

// loop shows the pipeline until ctx ends or the worker stops: a redrawn
// screen four times a second on a terminal, a plain line a second
// otherwise.
func (s *devScreen) loop(ctx context.Context, out io.Writer, tty bool, workerDone <-chan error) error {
	every := time.Second
	if tty {
		every = 250 * time.Millisecond
		fmt.Fprint(out, "\x1b[2J")
	} else {
		s.header(out)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v := s.look(ctx)
		if tty {
			var b strings.Builder
			b.WriteString("\x1b[H")
			s.header(&b)
			s.body(&b, v)
			fmt.Fprint(out, strings.ReplaceAll(b.String(), "\n", "\x1b[K\n")+"\x1b[J")
		} else {
			fmt.Fprintln(out, s.line(v))
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(out)
			}
			// The last look, as things stand when the demo stops.
			final := s.look(context.WithoutCancel(ctx))
			fmt.Fprintln(out, "final: "+s.line(final))
			return ctx.Err()
		case err := <-workerDone:
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("worker: %w (log: %s)", err, s.logPath)
		case <-t.C:
		}
	}
}

// header is what does not change: where everything runs and what to try.
func (s *devScreen) header(w io.Writer) {
	p := s.prog
	fmt.Fprintf(w, "waq dev: a worker, the Graph API simulator and a demo load on this machine (Ctrl-C stops all)\n")
	fmt.Fprintf(w, "  nats    %s (embedded, JetStream)\n", s.nats)
	fmt.Fprintf(w, "  redis   %s\n", s.redis)
	fmt.Fprintf(w, "  graph   %s (simulator: numbers %s store, %s support, %s flash sale at %d msg/s)\n",
		s.graph, devenv.NumberStore, devenv.NumberSupport, devenv.NumberFlash, devenv.StrictMPS)
	fmt.Fprintf(w, "  worker  %s (log: %s)\n", s.workerURL, s.logPath)
	fmt.Fprintf(w, "  state   %s (lets commands in another terminal find these)\n", s.statePath)
	fmt.Fprintf(w, "Try, from a second terminal:\n")
	fmt.Fprintf(w, "  %s dlq list --reason window\n", p)
	fmt.Fprintf(w, "  %s dlq stats\n", p)
	fmt.Fprintf(w, "  %s dlq replay --reason window --as-template %s --language en_US\n", p, devenv.DemoTemplate)
	fmt.Fprintf(w, "  %s doctor --template %s --language en_US   (the 131000 guide, against the simulator)\n", p, devenv.DemoTemplate)
	fmt.Fprintf(w, "  %s send --phone-number-id %s --to %s --template order_update --language en_US --param 42\n", p, devenv.NumberStore, devenv.Recipient(1))
	fmt.Fprintf(w, "  curl -s %s/readyz\n", s.workerURL)
	fmt.Fprintf(w, "  curl -s %s/metrics | grep ^waq_\n", s.workerURL)
	fmt.Fprintf(w, "  curl -s %s/_fake/stats\n", s.graph)
	if s.console {
		fmt.Fprintf(w, "Console       %s/admin/ui/ (sign in with $WAQ_ADMIN_TOKEN)\n", s.workerURL)
	} else {
		fmt.Fprintf(w, "Console       off: start with WAQ_ADMIN_TOKEN set (16+ characters) to serve it at %s/admin/ui/ (sign in with the token)\n", s.workerURL)
	}
}

func (s *devScreen) body(w io.Writer, v devView) {
	fmt.Fprintf(w, "\n%s  published %d", v.at, v.demo.Published)
	if v.demo.Failed > 0 {
		fmt.Fprintf(w, " (%d publishes failed: %s)", v.demo.Failed, v.demo.LastError)
	}
	fmt.Fprintf(w, ", 131000 bursts %d\n", v.demo.Bursts)
	fmt.Fprintf(w, "Outcomes      sent %.0f   parked %.0f  %s\n", v.sent, total(v.parked), counts(v.parked))
	fmt.Fprintf(w, "Retries       scheduled %.0f  %s   waiting (delivered, not yet acked) %d   in flight %.0f   in the stream %d\n",
		total(v.retries), counts(v.retries), v.ackPending, v.inFlight, v.pending)
	fmt.Fprintf(w, "Held back     %.0f times  %s\n", total(v.throttled), counts(v.throttled))
	if v.ready != nil {
		fmt.Fprintf(w, "Numbers       ready %t   throttled %s   paused %s\n", v.ready.Ready, states(v.ready.Throttled), states(v.ready.Paused))
	}
	if v.dlqErr != "" {
		fmt.Fprintf(w, "Dead letters  (%s)\n", v.dlqErr)
	} else {
		fmt.Fprintf(w, "Dead letters  %s\n", countsInt(v.dlq))
	}
	fmt.Fprintf(w, "Simulator     requests %d   accepted %d   errors %s\n", v.sim.Requests, v.sim.Accepted, codes(v.sim.ByCode))
	if v.failedID != "" {
		fmt.Fprintf(w, "A failed send %s dlq show %s\n", s.prog, v.failedID)
		fmt.Fprintf(w, "  its trace   %s\n", s.traceLine(v.failedTrace))
	}
}

// traceLine says where the trace of a failed send is.
func (s *devScreen) traceLine(traceID string) string {
	switch {
	case !s.tracing:
		return "tracing is off: start waq dev with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (Jaeger, Tempo, ...) to export spans"
	case traceID == "":
		return "(no trace id recorded)"
	case s.traceURL != "":
		return strings.ReplaceAll(s.traceURL, "{trace_id}", traceID)
	}
	return "trace_id " + traceID + " in your tracing UI"
}

// line is one plain line: for --no-tty and for the end.
func (s *devScreen) line(v devView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s published=%d sent=%.0f parked=%.0f", v.at, v.demo.Published, v.sent, total(v.parked))
	for _, k := range sortedKeys(v.parked) {
		fmt.Fprintf(&b, " parked_%s=%.0f", k, v.parked[k])
	}
	fmt.Fprintf(&b, " retries=%.0f ack_pending=%d in_flight=%.0f stream_pending=%d held_back=%.0f", total(v.retries), v.ackPending, v.inFlight, v.pending, total(v.throttled))
	if v.ready != nil {
		fmt.Fprintf(&b, " throttled_numbers=%d paused_numbers=%d", len(v.ready.Throttled), len(v.ready.Paused))
	}
	var dlq int64
	for _, n := range v.dlq {
		dlq += n
	}
	fmt.Fprintf(&b, " dlq=%d", dlq)
	for _, k := range sortedKeys(v.dlq) {
		fmt.Fprintf(&b, " dlq_%s=%d", k, v.dlq[k])
	}
	fmt.Fprintf(&b, " graph_requests=%d", v.sim.Requests)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func total(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func counts(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func countsInt(m map[string]int64) string {
	if len(m) == 0 {
		return "empty"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func codes(m map[int]int64) string {
	if len(m) == 0 {
		return "none"
	}
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func states(ss []throttle.State) string {
	if len(ss) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(ss))
	for _, st := range ss {
		name := st.PhoneNumberID
		if name == "" {
			name = st.Key
		}
		switch {
		case st.Rate > 0 && st.MPS > 0:
			parts = append(parts, fmt.Sprintf("%s at %.0f/%d msg/s (%s)", name, st.Rate, st.MPS, st.Reason))
		default:
			parts = append(parts, fmt.Sprintf("%s (%s)", name, st.Reason))
		}
	}
	return strings.Join(parts, ", ")
}
