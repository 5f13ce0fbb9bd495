// Package bench is `waq bench`: a load generator that publishes jobs
// through the producer library and measures what the pipeline makes of
// them: throughput, latency from publish to the Graph API call (the
// simulator reports each call as it arrives, Config.OnSend) and to the
// recorded outcome (Redis keyspace notifications of the ledger's writes),
// CPU time and peak memory of each process.
//
// With Baseline, the same invocation first runs a minimal loop (pull,
// POST, ack: RunBaseline) on the same servers, so that every figure of the
// full pipeline can be read as a ratio to the floor of what any worker
// must do.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

// Config configures a run. Jobs, or Rate and Duration, say how much to
// publish.
type Config struct {
	// Jobs to publish, as fast as the publishers go (or at Rate).
	Jobs int
	// Rate is jobs per second; with Duration it sets Jobs.
	Rate     float64
	Duration time.Duration
	// Numbers is how many business phone numbers the jobs are spread over.
	// The worker paces each at its mps (80 by default), so the pipeline
	// cannot go beyond Numbers × mps. Defaults to 100.
	Numbers int
	// MPS, when set, is written as every number's mps in a phone-number
	// file the workers read; 0 keeps the worker's default (80).
	MPS int
	// Workers is how many worker processes consume. Defaults to 1.
	Workers int
	// H2C has the workers and the baseline speak HTTP/2 to the simulator
	// (WAQ_GRAPH_H2C), as they do to Meta over TLS.
	H2C bool
	// InProcess runs the workers (and the baseline loop) as goroutines of
	// this process instead of child processes: quicker, but their CPU and
	// memory are this process's.
	InProcess bool
	// Concurrency is WAQ_CONCURRENCY of each worker; 0 keeps its default.
	Concurrency int
	// Latency is how long the simulator takes to answer.
	Latency time.Duration
	// Backlog publishes every job first, then starts the workers.
	Backlog bool
	// Baseline runs the minimal loop first, on the same servers.
	Baseline bool
	// Tracing exports the workers' spans (OTLP over HTTP) to a sink in
	// this process that discards them, so that the full pipeline pays for
	// tracing as in production.
	Tracing bool
	// NATSURL and RedisURL name running servers (with a worker already
	// consuming); empty starts everything here.
	NATSURL, RedisURL string
	// Stream is the job stream of running servers. Defaults to WAQ_SEND.
	Stream string
	// GraphAddr, with running servers, serves the simulator on this
	// address so that publish → call can be measured (point the worker's
	// WAQ_GRAPH_URL at it).
	GraphAddr string
	// NATSSyncAlways makes the embedded JetStream sync every write, as
	// SPEC §2 asks of production.
	NATSSyncAlways bool
	// RedisFsync is redis-server's appendfsync ("" turns the append-only
	// file off). Defaults to everysec.
	RedisFsync string
	// Publishers is how many goroutines publish. Defaults to 64.
	Publishers int
	// Exe is the waq binary that child workers run; defaults to this one.
	Exe string
	// ChildEnv is added to the environment of child processes.
	ChildEnv []string
	// Repeat runs the phases (baseline, full, baseline, full, ...) that
	// many times and reports, for each, the run of median throughput: on a
	// machine shared with other work, alternating evens out the noise.
	// Defaults to 1.
	Repeat int
	// Progress receives a progress bar (nil: none).
	Progress io.Writer
	// Getenv reads the environment (OTEL_TRACES_SAMPLER passes through).
	Getenv func(string) string
}

// Result is a run's figures. Ratios are full ÷ baseline.
type Result struct {
	Config   Settings           `json:"config"`
	Baseline *Phase             `json:"baseline,omitempty"`
	Full     *Phase             `json:"full"`
	Ratios   map[string]float64 `json:"ratios,omitempty"`
}

// Settings is what the run was asked to do.
type Settings struct {
	Jobs        int     `json:"jobs"`
	Rate        float64 `json:"rate,omitempty"`
	Numbers     int     `json:"numbers"`
	MPS         int     `json:"mps"`
	Workers     int     `json:"workers"`
	InProcess   bool    `json:"in_process"`
	Concurrency int     `json:"concurrency"`
	LatencyMS   float64 `json:"latency_ms"`
	Backlog     bool    `json:"backlog"`
	Repeat      int     `json:"repeat"`
	Tracing     bool    `json:"tracing"`
	Redis       string  `json:"redis"`
	NATS        string  `json:"nats"`
	NATSSync    bool    `json:"nats_sync_always"`
	RedisFsync  string  `json:"redis_appendfsync"`
	External    bool    `json:"external"`
	CPUs        int     `json:"cpus"`
}

// Phase is the figures of one pipeline: "baseline" or "full".
type Phase struct {
	Name      string  `json:"name"`
	Jobs      int     `json:"jobs"`
	Published int64   `json:"published"`
	Completed int64   `json:"completed"`
	Seconds   float64 `json:"seconds"`
	// Throughput is jobs completed per second, from the first publish (the
	// workers' start in backlog mode) to the last acknowledgement.
	Throughput float64 `json:"throughput"`
	// PublishRate is how fast the jobs went onto the stream.
	PublishRate      float64  `json:"publish_rate"`
	PublishToCall    *Latency `json:"publish_to_call,omitempty"`
	PublishToOutcome *Latency `json:"publish_to_outcome,omitempty"`
	// Calls is what the simulator saw; Duplicates the jobs it accepted
	// more than once.
	Calls      int64  `json:"graph_calls"`
	Duplicates int64  `json:"duplicate_sends"`
	Processes  []Proc `json:"processes"`
	// RedisCommands is what Redis ran per job in the full phase, by
	// command (INFO commandstats; a script's own commands are counted as
	// well as the script), when the bench started Redis.
	RedisCommands map[string]float64 `json:"redis_commands_per_job,omitempty"`
	// Runs is the throughput of every repetition (with Repeat > 1); the
	// other figures are those of the median one.
	Runs []float64 `json:"runs,omitempty"`
	// RunsP99 is every repetition's p99 publish → call, in ms.
	RunsP99 []float64 `json:"runs_p99_ms,omitempty"`
}

// median picks the phase of median throughput (of median p99 publish →
// call at a fixed rate, where every run has the same throughput) and lists
// every run's figures.
func median(ps []*Phase, byLatency bool) *Phase {
	if len(ps) == 0 {
		return nil
	}
	p99 := func(p *Phase) float64 {
		if p.PublishToCall == nil {
			return 0
		}
		return p.PublishToCall.P99
	}
	sorted := append([]*Phase(nil), ps...)
	sort.Slice(sorted, func(i, j int) bool {
		if byLatency {
			return p99(sorted[i]) < p99(sorted[j])
		}
		return sorted[i].Throughput < sorted[j].Throughput
	})
	m := sorted[(len(sorted)-1)/2]
	if len(ps) > 1 {
		for _, p := range ps {
			m.Runs = append(m.Runs, p.Throughput)
			m.RunsP99 = append(m.RunsP99, p99(p))
		}
	}
	return m
}

// Proc is one process's CPU and memory over a phase.
type Proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid,omitempty"`
	// CPUSeconds is user + system time spent during the phase;
	// CPUPer10k the same per 10,000 jobs.
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPer10k  float64 `json:"cpu_seconds_per_10k_jobs"`
	// PeakRSSMB is the peak resident memory during the phase (VmHWM), in
	// MiB.
	PeakRSSMB float64 `json:"peak_rss_mb"`
}

// Proc names in Phase.Processes.
const (
	ProcWorkers = "workers" // all worker processes (or the baseline loop) together
	ProcRedis   = "redis"
	ProcNATS    = "nats"  // the NATS server, when it runs as a child process
	ProcBench   = "bench" // this process: publishers, simulator, trace sink (and NATS in process)
)

// Run runs the benchmark and returns its figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	b, err := newBench(cfg)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	res := &Result{Config: b.settings()}
	var bases, fulls []*Phase
	for i := 0; i < b.cfg.Repeat; i++ {
		if b.cfg.Baseline {
			p, err := b.phase(ctx, "baseline")
			if err != nil {
				return nil, fmt.Errorf("baseline: %w", err)
			}
			bases = append(bases, p)
		}
		p, err := b.phase(ctx, "full")
		if err != nil {
			return nil, fmt.Errorf("full pipeline: %w", err)
		}
		fulls = append(fulls, p)
	}
	res.Baseline, res.Full = median(bases, b.cfg.Rate > 0), median(fulls, b.cfg.Rate > 0)
	if res.Baseline != nil {
		res.Ratios = ratios(res.Baseline, res.Full)
	}
	return res, nil
}

// bench is one run's state.
type bench struct {
	cfg      Config
	external bool
	dir      string
	closers  []func()

	nats      *devenv.NATS
	natsChild *child
	natsURL   string
	redis     *devenv.Redis
	redisURL  string
	graph     *devenv.Graph
	sinkURL   string
	numbers   []string
	numbersFn string

	nc   *nats.Conn
	js   jetstream.JetStream
	rdb  redis.UniversalClient
	cur  atomic.Pointer[recorder]
	keys bool // keyspace notifications give outcomes
}

func newBench(cfg Config) (*bench, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Rate > 0 && cfg.Duration > 0 {
		cfg.Jobs = int(cfg.Rate * cfg.Duration.Seconds())
	}
	switch {
	case cfg.Jobs <= 0:
		return nil, errors.New("give --jobs N, or --rate R with --duration D")
	case cfg.Jobs > 50_000_000:
		return nil, errors.New("at most 50,000,000 jobs")
	case cfg.Rate < 0 || cfg.Latency < 0 || cfg.Concurrency < 0 || cfg.MPS < 0:
		return nil, errors.New("rate, latency, concurrency and mps must not be negative")
	}
	if cfg.Numbers <= 0 {
		cfg.Numbers = 100
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Repeat <= 0 {
		cfg.Repeat = 1
	}
	if cfg.Publishers <= 0 {
		cfg.Publishers = 64
	}
	if cfg.RedisFsync == "" {
		cfg.RedisFsync = "everysec"
	}
	if cfg.Stream == "" {
		cfg.Stream = "WAQ_SEND"
	}
	b := &bench{cfg: cfg, external: cfg.NATSURL != "" || cfg.RedisURL != ""}
	if b.external {
		if cfg.NATSURL == "" || cfg.RedisURL == "" {
			return nil, errors.New("give both --nats-url and --redis-url, or neither (to start everything here)")
		}
		if cfg.Baseline || cfg.Backlog {
			return nil, errors.New("--baseline and --backlog start their own workers: use them without --nats-url and --redis-url")
		}
	}
	for i := 0; i < cfg.Numbers; i++ {
		b.numbers = append(b.numbers, fmt.Sprintf("10654%010d", i))
	}
	return b, nil
}

func (b *bench) settings() Settings {
	s := Settings{Jobs: b.cfg.Jobs, Rate: b.cfg.Rate, Numbers: b.cfg.Numbers, MPS: b.cfg.MPS, Workers: b.cfg.Workers,
		InProcess: b.cfg.InProcess, Concurrency: b.cfg.Concurrency, LatencyMS: float64(b.cfg.Latency) / 1e6,
		Backlog: b.cfg.Backlog, Repeat: b.cfg.Repeat, Tracing: b.cfg.Tracing, NATSSync: b.cfg.NATSSyncAlways, RedisFsync: b.cfg.RedisFsync,
		External: b.external, CPUs: runtime.NumCPU()}
	if s.MPS == 0 {
		s.MPS = 80
	}
	if s.Concurrency == 0 {
		s.Concurrency = 128
	}
	if b.redis != nil {
		s.Redis = b.redis.Describe()
	} else {
		s.Redis = "external"
	}
	switch {
	case b.natsChild != nil:
		s.NATS = fmt.Sprintf("embedded nats-server in a child process (%d)", b.natsChild.cmd.Process.Pid)
	case b.nats != nil:
		s.NATS = "embedded nats-server in this process"
	default:
		s.NATS = "external"
	}
	if b.external {
		s.Workers = 0
		s.NATSSync, s.RedisFsync = false, ""
	}
	return s
}

func (b *bench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// start starts (or connects to) the servers.
func (b *bench) start(ctx context.Context) error {
	var err error
	if b.dir, err = os.MkdirTemp("", "waq-bench-"); err != nil {
		return err
	}
	simCfg := fakegraph.Config{
		Scenario: &fakegraph.Scenario{Latency: fakegraph.Latency{Base: fakegraph.Duration(b.cfg.Latency)}},
		SendsLog: -1,
		OnSend:   b.onSend,
	}
	if b.external {
		b.natsURL, b.redisURL = b.cfg.NATSURL, b.cfg.RedisURL
		if b.cfg.GraphAddr != "" {
			ln, err := net.Listen("tcp", b.cfg.GraphAddr)
			if err != nil {
				return fmt.Errorf("--graph-addr: %w", err)
			}
			b.graph = devenv.ServeGraphOn(ln, simCfg)
			b.closers = append(b.closers, b.graph.Close)
		}
	} else {
		if err := b.startNATS(ctx); err != nil {
			return err
		}
		rdir := filepath.Join(b.dir, "redis")
		if err := os.MkdirAll(rdir, 0o700); err != nil {
			return err
		}
		if b.redis, err = devenv.StartRedis(ctx, devenv.RedisOptions{Dir: rdir, AppendFsync: b.cfg.RedisFsync}); err != nil {
			return err
		}
		b.closers = append(b.closers, b.redis.Close)
		b.redisURL = b.redis.URL
		if b.graph, err = devenv.ServeGraph(0, simCfg); err != nil {
			return err
		}
		b.closers = append(b.closers, b.graph.Close)
		if b.cfg.Tracing {
			if err := b.startSink(); err != nil {
				return err
			}
		}
		if b.cfg.MPS > 0 {
			if err := b.writeNumbers(); err != nil {
				return err
			}
		}
	}
	if b.nc, err = conn.NATS(ctx, b.natsURL, "waq bench"); err != nil {
		return err
	}
	b.closers = append(b.closers, b.nc.Close)
	if b.js, err = jetstream.New(b.nc); err != nil {
		return err
	}
	if b.rdb, err = conn.Redis(b.redisURL); err != nil {
		return err
	}
	b.closers = append(b.closers, func() { _ = b.rdb.Close() })
	// Outcomes come as keyspace notifications of the ledger's hash writes:
	// one small message per job, pushed, no polling.
	b.keys = b.rdb.ConfigSet(ctx, "notify-keyspace-events", "Kh").Err() == nil
	return nil
}

// startSink serves an OTLP/HTTP endpoint that accepts and discards spans.
func (b *bench) startSink() error {
	ln, err := net.Listen("tcp", devenv.Loopback+":0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.sinkURL = "http://" + ln.Addr().String()
	b.closers = append(b.closers, func() { _ = srv.Close() })
	return nil
}

func (b *bench) writeNumbers() error {
	var sb strings.Builder
	sb.WriteString("phone_numbers:\n")
	for _, n := range b.numbers {
		fmt.Fprintf(&sb, "  - phone_number_id: %q\n    waba_id: %q\n    mps: %d\n", n, fakegraph.DefaultWABAID, b.cfg.MPS)
	}
	b.numbersFn = filepath.Join(b.dir, "numbers.yaml")
	return os.WriteFile(b.numbersFn, []byte(sb.String()), 0o600)
}

// recorder holds one phase's publish times and latencies. Job ids are
// nonce + sequence number, so the simulator's callback and the outcome
// listener find a job's publish time by index, without a map.
type recorder struct {
	nonce      string
	t0         time.Time
	pubAt      []atomic.Int64 // ns since t0, before Publish was called
	called     []atomic.Bool
	done       []atomic.Bool
	toCall     histogram
	toOutcome  histogram
	calls      atomic.Int64
	outcomes   atomic.Int64
	published  atomic.Int64
	lastPubAt  atomic.Int64 // ns since t0 of the latest publish that returned
	pubErrs    atomic.Int64
	lastPubErr atomic.Pointer[string]
}

func newRecorder(n int) *recorder {
	return &recorder{
		nonce:  fmt.Sprintf("b%x-", time.Now().UnixNano()),
		t0:     time.Now(),
		pubAt:  make([]atomic.Int64, n),
		called: make([]atomic.Bool, n),
		done:   make([]atomic.Bool, n),
	}
}

func (r *recorder) seq(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, r.nonce)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(r.pubAt) {
		return 0, false
	}
	return i, true
}

// notePublished moves lastPubAt forward.
func (r *recorder) notePublished() {
	now := int64(time.Since(r.t0))
	for {
		v := r.lastPubAt.Load()
		if now <= v || r.lastPubAt.CompareAndSwap(v, now) {
			return
		}
	}
}

// onSend is the simulator's callback: the first call of each job.
func (b *bench) onSend(s fakegraph.Send) {
	r := b.cur.Load()
	if r == nil {
		return
	}
	i, ok := r.seq(s.JobID)
	if !ok || !r.called[i].CompareAndSwap(false, true) {
		return
	}
	r.calls.Add(1)
	r.toCall.add(time.Duration(int64(s.Time.Sub(r.t0)) - r.pubAt[i].Load()))
}

// outcome records the first ledger write of a job: its outcome.
func (r *recorder) outcome(id string) {
	i, ok := r.seq(id)
	if !ok || !r.done[i].CompareAndSwap(false, true) {
		return
	}
	r.outcomes.Add(1)
	r.toOutcome.add(time.Duration(int64(time.Since(r.t0)) - r.pubAt[i].Load()))
}

// phase runs one pipeline over a fresh set of jobs.
func (b *bench) phase(ctx context.Context, name string) (*Phase, error) {
	n := b.cfg.Jobs
	stream, prefix := b.cfg.Stream, queue.DefaultSubjectPrefix
	if name == "baseline" {
		stream, prefix = "WAQ_BENCH_BASELINE", "waqbench.baseline"
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, err := queue.EnsureStream(sctx, b.js, queue.StreamConfig{Name: stream, SubjectPrefix: prefix})
	cancel()
	if err != nil {
		return nil, err
	}
	if b.graph != nil {
		b.graph.Sim.Reset()
	}
	r := newRecorder(n)
	defer b.cur.Store(nil)
	// arm starts the clock of latencies and lets the simulator's callback
	// and the outcome listener see the recorder: right before publishing.
	var stopListen func()
	defer func() {
		if stopListen != nil {
			stopListen()
		}
	}()
	arm := func() error {
		r.t0 = time.Now()
		b.cur.Store(r)
		if name == "full" && b.keys {
			var err error
			stopListen, err = b.listenOutcomes(ctx, r)
			return err
		}
		return nil
	}

	p := &Phase{Name: name, Jobs: n}
	self0, _ := devenv.ReadProc(0)
	_ = devenv.ResetPeak(0)
	var redis0, nats0 devenv.ProcStats
	if b.redis != nil && b.redis.PID > 0 {
		redis0, _ = devenv.ReadProc(b.redis.PID)
		_ = devenv.ResetPeak(b.redis.PID)
	}
	if b.natsChild != nil {
		nats0, _ = devenv.ReadProc(b.natsChild.cmd.Process.Pid)
		_ = devenv.ResetPeak(b.natsChild.cmd.Process.Pid)
	}
	var cmds0 map[string]int64
	if b.redis != nil && name == "full" {
		cmds0, _ = commandCalls(ctx, b.rdb)
	}

	workers := &workerSet{}
	defer workers.stop()
	prod := queue.NewProducer(b.js, queue.ProducerOptions{SubjectPrefix: prefix})
	var start time.Time
	pubDone := make(chan struct{})
	prog := b.progress(name, r, st, n, time.Now())
	defer prog()
	if b.cfg.Backlog {
		if err := arm(); err != nil {
			return nil, err
		}
		b.publish(ctx, r, prod, n)
		close(pubDone)
		if err := b.publishError(r, n); err != nil {
			return nil, err
		}
		start = time.Now()
		if err := b.startWorkers(ctx, name, stream, workers); err != nil {
			return nil, err
		}
	} else {
		if !b.external {
			if err := b.startWorkers(ctx, name, stream, workers); err != nil {
				return nil, err
			}
			if err := b.waitPulling(ctx, st, name, workers); err != nil {
				return nil, err
			}
		}
		workers.markStart()
		if err := arm(); err != nil {
			return nil, err
		}
		start = r.t0
		go func() { defer close(pubDone); b.publish(ctx, r, prod, n) }()
	}
	end, err := b.waitDone(ctx, st, r, n, pubDone, workers)
	prog()
	if err != nil {
		return nil, err
	}
	if err := b.publishError(r, n); err != nil {
		return nil, err
	}
	if name == "full" && b.keys {
		// The last notifications trail the last ack by a little.
		waitFor(ctx, 2*time.Second, func() bool { return r.outcomes.Load() >= int64(n) })
	}
	p.Published = r.published.Load()
	p.Completed = p.Published
	p.Seconds = end.Sub(start).Seconds()
	if p.Seconds > 0 {
		p.Throughput = float64(p.Completed) / p.Seconds
	}
	if d := time.Duration(r.lastPubAt.Load()); d > 0 {
		p.PublishRate = float64(p.Published) / d.Seconds()
	}
	p.PublishToCall = r.toCall.summary()
	p.PublishToOutcome = r.toOutcome.summary()
	if b.graph != nil {
		s := b.graph.Sim.Stats(false)
		p.Calls, p.Duplicates = s.Requests, s.DuplicateSends
	}

	per10k := func(cpu time.Duration) float64 { return cpu.Seconds() / float64(n) * 10000 }
	if ws := workers.usage(); ws != nil {
		ws.CPUPer10k = per10k(time.Duration(ws.CPUSeconds * float64(time.Second)))
		p.Processes = append(p.Processes, *ws)
	}
	if b.redis != nil && b.redis.PID > 0 && name == "full" {
		if r1, err := devenv.ReadProc(b.redis.PID); err == nil {
			cpu := r1.CPU - redis0.CPU
			p.Processes = append(p.Processes, Proc{Name: ProcRedis, PID: b.redis.PID, CPUSeconds: cpu.Seconds(), CPUPer10k: per10k(cpu), PeakRSSMB: mb(r1.PeakRSS)})
		}
	}
	if cmds0 != nil {
		if cmds1, err := commandCalls(ctx, b.rdb); err == nil {
			p.RedisCommands = perJob(cmds0, cmds1, n)
		}
	}
	if b.natsChild != nil {
		pid := b.natsChild.cmd.Process.Pid
		if n1, err := devenv.ReadProc(pid); err == nil {
			cpu := n1.CPU - nats0.CPU
			p.Processes = append(p.Processes, Proc{Name: ProcNATS, PID: pid, CPUSeconds: cpu.Seconds(), CPUPer10k: per10k(cpu), PeakRSSMB: mb(n1.PeakRSS)})
		}
	}
	if s1, err := devenv.ReadProc(0); err == nil {
		cpu := s1.CPU - self0.CPU
		p.Processes = append(p.Processes, Proc{Name: ProcBench, PID: os.Getpid(), CPUSeconds: cpu.Seconds(), CPUPer10k: per10k(cpu), PeakRSSMB: mb(s1.PeakRSS)})
	}
	return p, nil
}

// benchCommands are the bench's own commands to Redis, left out of the
// count.
var benchCommands = map[string]bool{"info": true, "config|set": true, "psubscribe": true, "punsubscribe": true, "ping": true, "hello": true, "client|setinfo": true}

// commandCalls reads how many times Redis ran each command
// (INFO commandstats).
func commandCalls(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info), nil
}

// parseCommandStats reads "cmdstat_NAME:calls=N,usec=..." lines.
func parseCommandStats(info string) map[string]int64 {
	calls := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				if c, err := strconv.ParseInt(v, 10, 64); err == nil {
					calls[strings.TrimPrefix(name, "cmdstat_")] = c
				}
			}
		}
	}
	return calls
}

// perJob is each command's calls between two readings, per job, without
// the bench's own.
func perJob(before, after map[string]int64, jobs int) map[string]float64 {
	out := map[string]float64{}
	if jobs <= 0 {
		return out
	}
	for name, c := range after {
		if d := c - before[name]; d > 0 && !benchCommands[name] {
			out[name] = float64(d) / float64(jobs)
		}
	}
	return out
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func (b *bench) publishError(r *recorder, n int) error {
	if r.pubErrs.Load() == 0 {
		return nil
	}
	msg := ""
	if p := r.lastPubErr.Load(); p != nil {
		msg = *p
	}
	return fmt.Errorf("%d of %d publishes failed; the last: %s", r.pubErrs.Load(), n, msg)
}

// listenOutcomes subscribes to the ledger's job hashes. The first write of
// a job's hash is its outcome: "sent" (RecordSent) or "parked"
// (MarkParked); retries only increment counters, which are other events.
func (b *bench) listenOutcomes(ctx context.Context, r *recorder) (func(), error) {
	ps := b.rdb.PSubscribe(ctx, "__keyspace@*__:waq:j:{*}")
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("redis keyspace notifications: %w", err)
	}
	ch := ps.Channel(redis.WithChannelSize(1 << 16))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			if m.Payload != "hset" {
				continue
			}
			i := strings.Index(m.Channel, ":waq:j:{")
			if i < 0 || !strings.HasSuffix(m.Channel, "}") {
				continue
			}
			r.outcome(m.Channel[i+len(":waq:j:{") : len(m.Channel)-1])
		}
	}()
	return func() { ps.Close(); <-done }, nil
}

// job builds job i: a template message, as most production traffic is.
func (b *bench) job(r *recorder, i int) *queue.Job {
	msg := fmt.Appendf(nil, `{"messaging_product":"whatsapp","recipient_type":"individual","to":"1555%07d","type":"template","template":{"name":"order_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"%d"}]}]}}`, i%10_000_000, i)
	return &queue.Job{ID: r.nonce + strconv.Itoa(i), PhoneNumberID: b.numbers[i%len(b.numbers)], Message: msg}
}

// publish publishes n jobs with the configured publishers, at Rate when
// set. It returns when all are published or ctx ends.
func (b *bench) publish(ctx context.Context, r *recorder, prod *queue.Producer, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	interval := time.Duration(0)
	if b.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / b.cfg.Rate)
	}
	for p := 0; p < b.cfg.Publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if interval > 0 {
					if d := time.Until(r.t0.Add(time.Duration(i) * interval)); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-ctx.Done():
							t.Stop()
							return
						case <-t.C:
						}
					}
				}
				job := b.job(r, i)
				r.pubAt[i].Store(int64(time.Since(r.t0)))
				var err error
				for try := 0; try < 3; try++ {
					pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, err = prod.Publish(pctx, job)
					cancel()
					if err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					r.pubErrs.Add(1)
					s := err.Error()
					r.lastPubErr.Store(&s)
					continue
				}
				r.published.Add(1)
				r.notePublished()
			}
		}()
	}
	wg.Wait()
}

// waitDone waits until every job is published and acknowledged (the
// work-queue stream is empty) and returns when that was first seen.
func (b *bench) waitDone(ctx context.Context, st jetstream.Stream, r *recorder, n int, pubDone <-chan struct{}, ws *workerSet) (time.Time, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	lastMsgs, lastChange, lastInfo := uint64(0), time.Now(), time.Time{}
	const stall = 60 * time.Second
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case err := <-ws.exited():
			return time.Time{}, err
		case <-t.C:
		}
		published := false
		select {
		case <-pubDone:
			published = true
		default:
		}
		// A stream info request costs the server more than a job does:
		// ask every 5ms only once every job has reached the Graph API (or
		// has its outcome), and twice a second before, to see stalls.
		pub := r.published.Load()
		near := published && (r.calls.Load() >= pub || (b.keys && r.outcomes.Load() >= pub) || (b.graph == nil && !b.keys))
		if !near && time.Since(lastInfo) < 500*time.Millisecond {
			continue
		}
		lastInfo = time.Now()
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := st.Info(ictx)
		cancel()
		if err != nil {
			continue
		}
		msgs := info.State.Msgs
		if published && msgs == 0 {
			return time.Now(), nil
		}
		if msgs != lastMsgs {
			lastMsgs, lastChange = msgs, time.Now()
		} else if time.Since(lastChange) > stall && r.published.Load() > 0 {
			return time.Time{}, fmt.Errorf("stalled: %d jobs left in the stream for %s (%s)", msgs, stall, ws.logHint())
		}
	}
}

// progress draws a bar on Progress until the returned func is called.
func (b *bench) progress(name string, r *recorder, st jetstream.Stream, n int, start time.Time) func() {
	if b.cfg.Progress == nil {
		return func() {}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var left uint64
			ictx, cancel := context.WithTimeout(context.Background(), time.Second)
			if info, err := st.Info(ictx); err == nil {
				left = info.State.Msgs
			}
			cancel()
			pub := r.published.Load()
			completed := max(pub-int64(left), 0)
			const width = 30
			fill := int(float64(width) * float64(completed) / float64(n))
			el := time.Since(start).Seconds()
			rate := 0.0
			if el > 0 {
				rate = float64(completed) / el
			}
			fmt.Fprintf(b.cfg.Progress, "\r%-8s [%s%s] %d/%d done, %d published, %.0f jobs/s ",
				name, strings.Repeat("#", min(fill, width)), strings.Repeat(".", width-min(fill, width)), completed, n, pub, rate)
			select {
			case <-stop:
				fmt.Fprintln(b.cfg.Progress)
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPulling waits until every worker has a pull request waiting on its
// consumer: then the first job published is taken at once.
func (b *bench) waitPulling(ctx context.Context, st jetstream.Stream, name string, ws *workerSet) error {
	durable := "waq-worker"
	if name == "baseline" {
		durable = BaselineDurable
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := st.Consumer(ictx, durable)
		if err == nil {
			var info *jetstream.ConsumerInfo
			if info, err = c.Info(ictx); err == nil && info.NumWaiting >= b.cfg.Workers {
				cancel()
				return nil
			}
		}
		cancel()
		select {
		case err := <-ws.exited():
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workers not pulling after 60s (%s)", ws.logHint())
		}
	}
}

// ratios divides the full pipeline's figures by the baseline's.
func ratios(base, full *Phase) map[string]float64 {
	out := map[string]float64{}
	div := func(k string, a, b float64) {
		if b > 0 {
			out[k] = a / b
		}
	}
	div("throughput", full.Throughput, base.Throughput)
	if base.PublishToCall != nil && full.PublishToCall != nil {
		div("publish_to_call_p50", full.PublishToCall.P50, base.PublishToCall.P50)
		div("publish_to_call_p99", full.PublishToCall.P99, base.PublishToCall.P99)
		div("publish_to_call_p99_9", full.PublishToCall.P999, base.PublishToCall.P999)
	}
	for _, bp := range base.Processes {
		for _, fp := range full.Processes {
			if bp.Name == fp.Name {
				div(fp.Name+"_cpu_per_10k", fp.CPUPer10k, bp.CPUPer10k)
				div(fp.Name+"_peak_rss", fp.PeakRSSMB, bp.PeakRSSMB)
			}
		}
	}
	return out
}

// workerSet is the workers of one phase, child processes or goroutines.
type workerSet struct {
	procs    []*child
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
	cpu0     map[int]time.Duration
	inProc   bool
	stopping atomic.Bool
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (ws *workerSet) exited() <-chan error {
	if ws.errs == nil {
		ws.errs = make(chan error, 16)
	}
	return ws.errs
}

func (ws *workerSet) logHint() string {
	if len(ws.procs) == 0 {
		return "workers in process"
	}
	return "worker log: " + ws.procs[0].log
}

// markStart notes the workers' CPU time so far (their start-up), which the
// phase does not count.
func (ws *workerSet) markStart() {
	ws.cpu0 = map[int]time.Duration{}
	for _, c := range ws.procs {
		if s, err := devenv.ReadProc(c.cmd.Process.Pid); err == nil {
			ws.cpu0[c.cmd.Process.Pid] = s.CPU
		}
	}
}

// usage sums the workers' CPU since markStart and their peak memory; nil
// for workers in process.
func (ws *workerSet) usage() *Proc {
	if ws.inProc || len(ws.procs) == 0 {
		return nil
	}
	p := &Proc{Name: ProcWorkers}
	for _, c := range ws.procs {
		pid := c.cmd.Process.Pid
		s, err := devenv.ReadProc(pid)
		if err != nil {
			continue
		}
		if p.PID == 0 {
			p.PID = pid
		}
		p.CPUSeconds += (s.CPU - ws.cpu0[pid]).Seconds()
		p.PeakRSSMB = max(p.PeakRSSMB, mb(s.PeakRSS))
	}
	return p
}

// stop stops the workers gracefully (SIGTERM, or their context), bounded.
func (ws *workerSet) stop() {
	ws.stopping.Store(true)
	for _, c := range ws.procs {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range ws.procs {
		devenv.AwaitOrKill(c.cmd.Process, c.done, 30*time.Second)
	}
	ws.procs = nil
	if ws.cancel != nil {
		ws.cancel()
		ws.wg.Wait()
		ws.cancel = nil
	}
}

// startWorkers starts the phase's workers: waq worker processes (or
// goroutines) for the full pipeline, the baseline loop for the baseline.
func (b *bench) startWorkers(ctx context.Context, name, stream string, ws *workerSet) error {
	ws.exited()
	ws.markStart()
	if b.cfg.InProcess {
		ws.inProc = true
		wctx, cancel := context.WithCancel(ctx)
		ws.cancel = cancel
		for i := 0; i < b.cfg.Workers; i++ {
			run, err := b.inProcessWorker(name, stream)
			if err != nil {
				cancel()
				return err
			}
			ws.wg.Add(1)
			go func() {
				defer ws.wg.Done()
				if err := run(wctx); err != nil && wctx.Err() == nil {
					ws.errs <- fmt.Errorf("%s worker: %w", name, err)
				}
			}()
		}
		return nil
	}
	exe, err := b.exe()
	if err != nil {
		return err
	}
	for i := 0; i < b.cfg.Workers; i++ {
		args := []string{"worker"}
		if name == "baseline" {
			args = []string{"bench", "baseline-worker"}
		}
		env, err := b.childEnv(stream)
		if err != nil {
			return err
		}
		logPath := filepath.Join(b.dir, fmt.Sprintf("%s-worker-%d.log", name, i))
		logf, err := os.Create(logPath)
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = logf, logf
		// Their own process group (a Ctrl-C reaches the bench, which stops
		// them gracefully); killed if the bench dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start %s %s: %w", exe, strings.Join(args, " "), err)
		}
		c := &child{cmd: cmd, done: make(chan struct{}), log: logPath}
		go func() {
			err := cmd.Wait()
			logf.Close()
			close(c.done)
			if !ws.stopping.Load() {
				tail, _ := os.ReadFile(logPath)
				if len(tail) > 2000 {
					tail = tail[len(tail)-2000:]
				}
				select {
				case ws.errs <- fmt.Errorf("%s worker exited: %v: %s", name, err, strings.TrimSpace(string(tail))):
				default:
				}
			}
		}()
		ws.procs = append(ws.procs, c)
	}
	return nil
}

// childEnv is a worker's environment: this one's, less waq's and
// OpenTelemetry's settings (the sampler excepted), plus the bench's.
func (b *bench) childEnv(stream string) ([]string, error) {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "WAQ_") || (strings.HasPrefix(k, "OTEL_") && !strings.HasPrefix(k, "OTEL_TRACES_SAMPLER")) {
			continue
		}
		env = append(env, kv)
	}
	port, err := devenv.PickPort(0)
	if err != nil {
		return nil, err
	}
	env = append(env, b.workerVars(stream, port)...)
	return append(env, b.cfg.ChildEnv...), nil
}

// workerVars are the WAQ_* (and OTEL_*) settings of a worker.
func (b *bench) workerVars(stream string, port int) []string {
	v := []string{
		"WAQ_NATS_URL=" + b.natsURL,
		"WAQ_REDIS_URL=" + b.redisURL,
		"WAQ_GRAPH_URL=" + b.graph.URL,
		"WAQ_ACCESS_TOKEN=bench-token",
		"WAQ_HTTP_ADDR=" + net.JoinHostPort(devenv.Loopback, strconv.Itoa(port)),
		"WAQ_STREAM=" + stream,
		"WAQ_LOG_LEVEL=warn",
		"WAQ_KEY_PREFIX=waq",
	}
	if b.cfg.H2C {
		v = append(v, "WAQ_GRAPH_H2C=true")
	}
	if b.cfg.Getenv != nil && b.cfg.Getenv("WAQ_PPROF") != "" {
		// Profiles of the workers themselves, taken from their listeners.
		v = append(v, "WAQ_PPROF="+b.cfg.Getenv("WAQ_PPROF"))
	}
	if b.cfg.Concurrency > 0 {
		v = append(v, "WAQ_CONCURRENCY="+strconv.Itoa(b.cfg.Concurrency))
		if mp := 2 * b.cfg.Concurrency * b.cfg.Workers; mp > 20000 {
			v = append(v, "WAQ_MAX_ACK_PENDING="+strconv.Itoa(mp))
		}
	}
	if b.numbersFn != "" {
		v = append(v, "WAQ_PHONE_NUMBERS_FILE="+b.numbersFn)
	}
	if b.sinkURL != "" {
		v = append(v, "OTEL_EXPORTER_OTLP_ENDPOINT="+b.sinkURL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_TRACES_EXPORTER=otlp")
	} else {
		v = append(v, "OTEL_TRACES_EXPORTER=none")
	}
	return v
}

// inProcessWorker returns a worker (or the baseline loop) to run in this
// process.
func (b *bench) inProcessWorker(name, stream string) (func(context.Context) error, error) {
	vars := map[string]string{}
	for _, kv := range b.workerVars(stream, 0) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "OTEL_TRACES_SAMPLER") {
			return b.cfg.Getenv(k)
		}
		return ""
	}
	if name == "baseline" {
		return func(ctx context.Context) error {
			return RunBaseline(ctx, BaselineConfig{NATSURL: b.natsURL, GraphURL: b.graph.URL, H2C: b.cfg.H2C, Stream: stream, Token: "bench-token", Concurrency: b.cfg.Concurrency})
		}, nil
	}
	var cfg worker.Config
	if err := cfg.FromEnv(getenv); err != nil {
		return nil, err
	}
	cfg.HTTPAddr = devenv.Loopback + ":0"
	return func(ctx context.Context) error {
		tr, err := telemetry.SetupTracing(ctx, "waq-worker", getenv)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tr.Shutdown(sctx)
		}()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		w, err := worker.New(cfg, getenv, worker.Options{Logger: log, TracerProvider: tr.Provider, Registry: prometheus.NewRegistry()})
		if err != nil {
			return err
		}
		return w.Run(ctx)
	}, nil
}
