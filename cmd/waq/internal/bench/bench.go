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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
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
	// NoLimits turns off the simulator's per-number throughput limit. It is
	// on by default at Meta's strictest reading: at most each number's mps
	// (MPS, or 80) accepted sends in any sliding one-second window, no
	// burst, 130429 past it (Phase.Throttled counts them).
	NoLimits bool
	// FastSim runs the simulator in its lean mode (fakegraph Config.Fast):
	// it spends almost no CPU per send, as Meta's servers spend none of
	// the sender's, and enforces no limits (NoLimits is implied).
	FastSim bool
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
	// RedisFsync is redis-server's appendfsync: always, everysec or no;
	// "off" turns the append-only file off. Defaults to everysec.
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
	// Parked is how many jobs a last phase publishes that the simulator
	// answers 131026 (undeliverable), so that the workers park them:
	// Result.Park gives Redis's bytes per parked job. It runs only when
	// the bench started Redis and the simulator. 0: no parking phase.
	Parked int
	// KeyDump, when set, receives after the full and parking phases every
	// Redis key grouped by pattern, with sampled MEMORY USAGE and TTLs, and
	// INFO memory's split of used_memory (a diagnostic of where the bytes
	// per job go).
	KeyDump io.Writer
	// Progress receives a progress bar (nil: none).
	Progress io.Writer
	// Getenv reads the environment (OTEL_TRACES_SAMPLER passes through).
	Getenv func(string) string
}

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
	if b.cfg.Parked > 0 && b.redis != nil && b.sim != nil {
		p, err := b.phase(ctx, "park")
		if err != nil {
			return nil, fmt.Errorf("parking phase: %w", err)
		}
		res.Park = p
	}
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
	sim       simulator
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
	case cfg.Rate < 0 || cfg.Latency < 0 || cfg.Concurrency < 0 || cfg.MPS < 0 || cfg.Parked < 0:
		return nil, errors.New("rate, latency, concurrency, mps and parked must not be negative")
	case cfg.Parked > 50_000_000:
		return nil, errors.New("at most 50,000,000 parked jobs")
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
		cfg.Stream = queue.DefaultStream
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
		External: b.external, CPUs: runtime.NumCPU(), StrictLimits: !b.cfg.NoLimits && !b.cfg.FastSim, FastSim: b.cfg.FastSim}
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
	switch {
	case b.sim == nil:
		s.Sim = "none (external worker)"
	case b.sim.pid() > 0:
		s.Sim = fmt.Sprintf("child process (%d)", b.sim.pid())
	default:
		s.Sim = "in this process"
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
	simOpts := SimOptions{Fast: b.cfg.FastSim, Latency: b.cfg.Latency, Limits: !b.cfg.NoLimits, MPS: b.cfg.MPS}
	onSend := func(s fakegraph.Send) { b.onCall(s.JobID, s.Time) }
	if b.external {
		b.natsURL, b.redisURL = b.cfg.NATSURL, b.cfg.RedisURL
		if b.cfg.GraphAddr != "" {
			ln, err := net.Listen("tcp", b.cfg.GraphAddr)
			if err != nil {
				return fmt.Errorf("--graph-addr: %w", err)
			}
			g := devenv.ServeGraphOn(ln, simOpts.config(onSend))
			b.closers = append(b.closers, g.Close)
			b.sim = localSim{g}
		}
	} else {
		if err := b.startNATS(ctx); err != nil {
			return err
		}
		rdir := filepath.Join(b.dir, "redis")
		if err := os.MkdirAll(rdir, 0o700); err != nil {
			return err
		}
		fsync := b.cfg.RedisFsync
		if fsync == "off" {
			fsync = "" // no append-only file
		}
		if b.redis, err = devenv.StartRedis(ctx, devenv.RedisOptions{Dir: rdir, AppendFsync: fsync}); err != nil {
			return err
		}
		b.closers = append(b.closers, b.redis.Close)
		b.redisURL = b.redis.URL
		if b.cfg.InProcess {
			g, err := devenv.ServeGraph(0, simOpts.config(onSend))
			if err != nil {
				return err
			}
			b.closers = append(b.closers, g.Close)
			b.sim = localSim{g}
		} else if b.sim, err = b.startSim(ctx, simOpts); err != nil {
			return err
		}
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
	if b.nc, b.js, err = conn.JetStream(ctx, b.natsURL, "waq bench"); err != nil {
		return err
	}
	b.closers = append(b.closers, b.nc.Close)
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
