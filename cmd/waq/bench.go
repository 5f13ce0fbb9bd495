package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/waqhq/waq/cmd/waq/internal/bench"
)

func init() {
	register("bench", "load generator: throughput, latency, CPU and memory of the pipeline", runBench)
}

const benchUsage = `(--jobs N | --rate R --duration D) [flags]

Publishes jobs through the producer library and reports throughput, latency from
publish to the Graph API call and to the recorded outcome (p50, p99, p99.9), CPU
seconds per 10,000 jobs and peak memory of each process. Without --nats-url and
--redis-url it starts everything itself: an embedded NATS server, a redis-server
child, the simulator (in this process) and --workers worker processes.
--baseline first runs a minimal pull-POST-ack loop on the same servers and gives
every figure of the full pipeline as a ratio to it.`

func runBench(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "baseline-worker" {
		return runBaselineWorker(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "nats-server" {
		return runBenchNATS(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "sim-server" {
		return runBenchSim(ctx, env, args[1:])
	}
	fs := newFlags(env, "bench", benchUsage)
	var cfg bench.Config
	fs.IntVar(&cfg.Jobs, "jobs", 0, "jobs to publish (as fast as possible, or at --rate)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "jobs per second (with --duration: the number of jobs)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to publish at --rate")
	fs.IntVar(&cfg.Numbers, "numbers", 100, "business phone numbers the jobs are spread over (each is paced at its mps)")
	fs.IntVar(&cfg.MPS, "mps", 0, "every number's rate in a phone-number file for the workers (0: the worker's default, 80)")
	fs.BoolVar(&cfg.NoLimits, "no-limits", false, "the simulator does not enforce each number's mps (by default: at most mps sends in any one second, 130429 past it)")
	fs.BoolVar(&cfg.FastSim, "fast-sim", false, "the simulator's lean mode (waq fakegraph --fast): almost no CPU per send, as Meta's servers cost the sender none; no limits")
	fs.IntVar(&cfg.Workers, "workers", 1, "worker processes")
	fs.BoolVar(&cfg.InProcess, "in-process", false, "run the workers in this process (quick; their CPU and memory are not separated)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "WAQ_CONCURRENCY of each worker (0: its default)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "how long the simulator takes to answer")
	fs.BoolVar(&cfg.Backlog, "backlog", false, "publish every job first, then start the workers (draining a backlog)")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "first run a minimal pull-POST-ack loop on the same servers, and give ratios to it")
	fs.BoolVar(&cfg.Tracing, "tracing", true, "workers export spans (to a sink here that discards them), as in production")
	fs.BoolVar(&cfg.H2C, "h2c", true, "workers (and the baseline) speak HTTP/2 to the simulator, as they do to Meta over TLS; false: HTTP/1.1, a connection per send in flight")
	// JetStream syncing every write caps the embedded server at about 1,000
	// publishes per second on a small VM's disk: it would measure the disk,
	// not the pipeline. Production should sync always (SPEC §2).
	natsSync := fs.String("nats-sync", "default", "JetStream sync of the embedded server: default (every 2 minutes) or always (as production should: README, Durability; slow disks cap the stream)")
	fs.StringVar(&cfg.RedisFsync, "redis-fsync", "everysec", "appendfsync of the redis-server child: always, everysec, no, or off (no append-only file)")
	fs.IntVar(&cfg.Publishers, "publishers", 64, "goroutines publishing")
	parked := fs.Int("parked", -1, "jobs of a last phase the simulator answers 131026, parked, for Redis bytes per parked job (-1: a tenth of the jobs; 0: none)")
	fs.IntVar(&cfg.Repeat, "repeat", 1, "run the phases N times, alternating, and report the median run of each (for a noisy machine)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "NATS of a running worker ($WAQ_NATS_URL with --redis-url; empty: start everything)")
	fs.StringVar(&cfg.RedisURL, "redis-url", "", "Redis of a running worker ($WAQ_REDIS_URL)")
	fs.StringVar(&cfg.GraphAddr, "graph-addr", "", "with a running worker: serve the simulator on this address (point its WAQ_GRAPH_URL here) to measure publish → call")
	keyDump := fs.Bool("keydump", false, "after the full and parking phases, print to stderr every Redis key grouped by pattern (count, sampled MEMORY USAGE, TTLs) and INFO memory's split of used_memory")
	start := fs.Bool("start", false, "start everything here (the default when no URLs are given)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (publishers, embedded NATS, simulator) to `file`")
	memProfile := fs.String("memprofile", "", "write a heap profile of this process, taken when its heap was largest, to `file` (with --in-process: the workers' too)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch *natsSync {
	case "always":
		cfg.NATSSyncAlways = true
	case "default":
	default:
		return usagef("--nats-sync %q: want always or default", *natsSync)
	}
	switch cfg.RedisFsync {
	case "always", "everysec", "no", "off":
	default:
		return usagef("--redis-fsync %q: want always, everysec, no or off", cfg.RedisFsync)
	}
	if !*start && cfg.NATSURL == "" && cfg.RedisURL == "" && env.Getenv("WAQ_NATS_URL") != "" && env.Getenv("WAQ_REDIS_URL") != "" {
		cfg.NATSURL, cfg.RedisURL = env.Getenv("WAQ_NATS_URL"), env.Getenv("WAQ_REDIS_URL")
	}
	if *start {
		cfg.NATSURL, cfg.RedisURL = "", ""
	}
	// Bad values are bad usage (exit status 2), as with every command;
	// bench.Run would refuse them too, as a failure.
	if cfg.Jobs < 0 || cfg.Rate < 0 || cfg.Duration < 0 || cfg.Latency < 0 || cfg.Concurrency < 0 || cfg.MPS < 0 {
		return usagef("--jobs, --rate, --duration, --latency, --concurrency and --mps must not be negative")
	}
	switch {
	case *parked < -1:
		return usagef("--parked %d: want a number of jobs, 0 for none, or -1 for a tenth of the jobs", *parked)
	case *parked == -1:
		cfg.Parked = max(max(cfg.Jobs, int(cfg.Rate*cfg.Duration.Seconds()))/10, 1)
	default:
		cfg.Parked = *parked
	}
	if (cfg.NATSURL == "") != (cfg.RedisURL == "") {
		return usagef("give both --nats-url and --redis-url, or neither (to start everything here)")
	}
	if cfg.Jobs == 0 && (cfg.Rate == 0 || cfg.Duration == 0) {
		return usagef("give --jobs N, or --rate R with --duration D")
	}
	if cfg.Jobs > 0 && cfg.Duration > 0 {
		return usagef("give --jobs or --duration, not both")
	}
	if cfg.FastSim && cfg.NATSURL != "" && cfg.GraphAddr == "" {
		return usagef("--fast-sim with running servers needs --graph-addr (the simulator the worker calls)")
	}
	cfg.Stream = env.Getenv("WAQ_STREAM")
	cfg.Getenv = env.Getenv
	cfg.ChildEnv = benchChildEnv
	if *keyDump {
		cfg.KeyDump = env.Stderr
	}
	if isTerminal(env.Stderr) {
		cfg.Progress = env.Stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		stop := peakHeapProfile(*memProfile)
		defer stop()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		return enc.Encode(res)
	}
	printBench(env.Stdout, res)
	return nil
}

// benchChildEnv is added to the environment of the bench's child processes
// (tests set it to make their test binary act as waq).
var benchChildEnv []string

// runBaselineWorker is the baseline loop as a process of its own, so that
// its CPU and memory are measured like a worker's. It reads the worker's
// variables.
func runBaselineWorker(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return usagef("bench baseline-worker takes no arguments")
	}
	conc, _ := strconv.Atoi(env.Getenv("WAQ_CONCURRENCY"))
	return bench.RunBaseline(ctx, bench.BaselineConfig{
		NATSURL:     env.Getenv("WAQ_NATS_URL"),
		GraphURL:    env.Getenv("WAQ_GRAPH_URL"),
		H2C:         env.Getenv("WAQ_GRAPH_H2C") == "true",
		Stream:      env.Getenv("WAQ_STREAM"),
		Token:       env.Getenv("WAQ_ACCESS_TOKEN"),
		Concurrency: conc,
	})
}

// runBenchNATS is the bench's NATS server as a process of its own, so that
// its CPU and memory are measured apart from the bench's.
func runBenchNATS(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench nats-server", "--store DIR [--sync-always]")
	store := fs.String("store", "", "JetStream store `directory`")
	syncAlways := fs.Bool("sync-always", false, "sync every write")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *store == "" {
		return usagef("--store is required")
	}
	return bench.ServeNATS(ctx, *store, *syncAlways, func(url string) {
		fmt.Fprintln(env.Stdout, bench.NATSReady+url)
	})
}

// runBenchSim is the bench's simulator as a process of its own, so that its
// CPU and memory are measured apart from the bench's.
func runBenchSim(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "bench sim-server", "[--fast] [--latency D] [--limits] [--mps N]")
	var o bench.SimOptions
	fs.BoolVar(&o.Fast, "fast", false, "lean mode")
	fs.DurationVar(&o.Latency, "latency", 0, "how long to take to answer")
	fs.BoolVar(&o.Limits, "limits", false, "enforce each number's mps as a strict sliding one-second window")
	fs.IntVar(&o.MPS, "mps", 0, "every number's mps (0: 80)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if o.Latency < 0 || o.MPS < 0 {
		return usagef("--latency and --mps must not be negative")
	}
	return bench.ServeSim(ctx, o, env.Stdout)
}

// printBench prints the result as a table: one column per phase, and the
// ratio full ÷ baseline.
func printBench(w io.Writer, r *bench.Result) {
	c := r.Config
	what := fmt.Sprintf("%d jobs", c.Jobs)
	if c.Rate > 0 {
		what += fmt.Sprintf(" at %.0f/s", c.Rate)
	}
	if c.Backlog {
		what += " (backlog: published first)"
	}
	if c.Repeat > 1 {
		what += fmt.Sprintf(", median of %d runs", c.Repeat)
		if c.Rate > 0 {
			what += " by p99 publish → call"
		}
	}
	if c.External {
		fmt.Fprintf(w, "waq bench: %s over %d numbers against running servers\n", what, c.Numbers)
	} else {
		mode := "processes"
		if c.InProcess {
			mode = "in process"
		}
		fmt.Fprintf(w, "waq bench: %s over %d numbers (%d msg/s each), %d worker %s, concurrency %d, simulator latency %s, tracing %t, %d CPUs\n",
			what, c.Numbers, c.MPS, c.Workers, mode, c.Concurrency, time.Duration(c.LatencyMS*1e6), c.Tracing, c.CPUs)
		fmt.Fprintf(w, "           redis: %s, appendfsync %q\n           nats: %s, sync always %t\n", c.Redis, c.RedisFsync, c.NATS, c.NATSSync)
		sim := "full"
		if c.FastSim {
			sim = "lean (--fast-sim)"
		}
		fmt.Fprintf(w, "           simulator: %s, %s, strict limits %t\n", c.Sim, sim, c.StrictLimits)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	phases := []*bench.Phase{r.Full}
	head := "\tfull\t"
	if r.Baseline != nil {
		phases = []*bench.Phase{r.Baseline, r.Full}
		head = "\tbaseline\tfull\tfull/baseline\t"
	}
	fmt.Fprintln(tw, head)
	row := func(label string, ratioKey string, val func(p *bench.Phase) (float64, bool), format string) {
		var b strings.Builder
		b.WriteString(label + "\t")
		for _, p := range phases {
			if v, ok := val(p); ok {
				fmt.Fprintf(&b, format+"\t", v)
			} else {
				b.WriteString("-\t")
			}
		}
		if r.Baseline != nil {
			if v, ok := r.Ratios[ratioKey]; ok {
				fmt.Fprintf(&b, "%.2f\t", v)
			} else {
				b.WriteString("-\t")
			}
		}
		fmt.Fprintln(tw, b.String())
	}
	row("throughput (jobs/s)", "throughput", func(p *bench.Phase) (float64, bool) { return p.Throughput, true }, "%.0f")
	row("publish rate (jobs/s)", "", func(p *bench.Phase) (float64, bool) { return p.PublishRate, p.PublishRate > 0 }, "%.0f")
	row("seconds", "", func(p *bench.Phase) (float64, bool) { return p.Seconds, true }, "%.2f")
	if len(r.Full.Runs) > 1 {
		for i := range r.Full.Runs {
			row(fmt.Sprintf("  run %d (jobs/s)", i+1), "", func(p *bench.Phase) (float64, bool) {
				if i < len(p.Runs) {
					return p.Runs[i], true
				}
				return 0, false
			}, "%.0f")
			row(fmt.Sprintf("  run %d p99 call (ms)", i+1), "", func(p *bench.Phase) (float64, bool) {
				if i < len(p.RunsP99) {
					return p.RunsP99[i], true
				}
				return 0, false
			}, "%.2f")
		}
	}
	lat := func(get func(p *bench.Phase) *bench.Latency, q func(l *bench.Latency) float64) func(p *bench.Phase) (float64, bool) {
		return func(p *bench.Phase) (float64, bool) {
			l := get(p)
			if l == nil {
				return 0, false
			}
			return q(l), true
		}
	}
	call := func(p *bench.Phase) *bench.Latency { return p.PublishToCall }
	outcome := func(p *bench.Phase) *bench.Latency { return p.PublishToOutcome }
	p50 := func(l *bench.Latency) float64 { return l.P50 }
	p99 := func(l *bench.Latency) float64 { return l.P99 }
	p999 := func(l *bench.Latency) float64 { return l.P999 }
	row("publish → call p50 (ms)", "publish_to_call_p50", lat(call, p50), "%.2f")
	row("publish → call p99 (ms)", "publish_to_call_p99", lat(call, p99), "%.2f")
	row("publish → call p99.9 (ms)", "publish_to_call_p99_9", lat(call, p999), "%.2f")
	row("publish → outcome p50 (ms)", "", lat(outcome, p50), "%.2f")
	row("publish → outcome p99 (ms)", "", lat(outcome, p99), "%.2f")
	row("publish → outcome p99.9 (ms)", "", lat(outcome, p999), "%.2f")
	for _, name := range []string{bench.ProcWorkers, bench.ProcRedis, bench.ProcNATS, bench.ProcSim, bench.ProcBench} {
		get := func(p *bench.Phase) *bench.Proc {
			for i := range p.Processes {
				if p.Processes[i].Name == name {
					return &p.Processes[i]
				}
			}
			return nil
		}
		label := name
		if name == bench.ProcBench {
			switch {
			case c.InProcess:
				label = "bench+nats+sim"
			case !strings.HasPrefix(c.Sim, "child"):
				label = "bench+sim"
			}
		}
		row("CPU s/10k jobs: "+label, name+"_cpu_per_10k", func(p *bench.Phase) (float64, bool) {
			if pr := get(p); pr != nil {
				return pr.CPUPer10k, true
			}
			return 0, false
		}, "%.3f")
		row("peak RSS MiB: "+label, name+"_peak_rss", func(p *bench.Phase) (float64, bool) {
			if pr := get(p); pr != nil {
				return pr.PeakRSSMB, true
			}
			return 0, false
		}, "%.1f")
	}
	row("CPU s/10k jobs: workers+redis", "workers_redis_cpu_per_10k", func(p *bench.Phase) (float64, bool) {
		return p.CPU(bench.ProcWorkers, bench.ProcRedis), true
	}, "%.3f")
	row("CPU s/10k jobs: all processes", "total_cpu_per_10k", func(p *bench.Phase) (float64, bool) {
		return p.CPU(), true
	}, "%.3f")
	row("Redis commands per job", "", func(p *bench.Phase) (float64, bool) {
		return total(p.RedisCommands), len(p.RedisCommands) > 0
	}, "%.2f")
	row("Redis bytes per sent job", "", func(p *bench.Phase) (float64, bool) {
		return p.RedisBytesPerJob, p.RedisBytesPerJob != 0
	}, "%.1f")
	row("  of them kept for the retention", "", func(p *bench.Phase) (float64, bool) {
		return p.RedisRetainedBytesPerJob, p.RedisBytesPerJob != 0
	}, "%.1f")
	row("JetStream body bytes per sent job", "", func(p *bench.Phase) (float64, bool) {
		return p.BodyBytesPerJob, p.BodyBytesPerJob != 0
	}, "%.1f")
	row("duplicate sends", "", func(p *bench.Phase) (float64, bool) { return float64(p.Duplicates), true }, "%.0f")
	row("130429 answers", "", func(p *bench.Phase) (float64, bool) { return float64(p.Throttled), true }, "%.0f")
	tw.Flush()
	if p := r.Park; p != nil {
		fmt.Fprintf(w, "parking phase: %d jobs answered 131026 and parked (%.0f jobs/s), %.1f Redis commands and %.1f Redis bytes per parked job\n",
			p.Parked, p.Throughput, total(p.RedisCommands), p.RedisBytesPerParkedJob)
	}
}

// peakHeapProfile writes a heap profile to path each time the heap in use
// reaches a new high, checking every 250ms, until stop is called.
func peakHeapProfile(path string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var peak uint64
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse <= peak {
				continue
			}
			peak = ms.HeapInuse
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}()
	return func() { close(done); <-finished }
}
