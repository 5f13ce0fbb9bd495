package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/waqhq/waq/cmd/waq/internal/bench"
	"github.com/waqhq/waq/internal/testenv"
)

// TestMain lets `waq bench` start this test binary as its worker processes:
// with WAQ_BENCH_CHILD set, the binary is waq.
func TestMain(m *testing.M) {
	if os.Getenv("WAQ_BENCH_CHILD") == "1" {
		ctx, stop := signalContext()
		env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
		code := run(ctx, env, os.Args[1:])
		stop()
		os.Exit(code)
	}
	benchChildEnv = []string{"WAQ_BENCH_CHILD=1"}
	os.Exit(m.Run())
}

func benchJSON(t *testing.T, args ...string) *bench.Result {
	t.Helper()
	testenv.RedisServerPath(t)
	code, stdout, stderr := runCmd(t, nil, "", append([]string{"bench", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Count(strings.TrimSpace(stdout), "\n") != 0 {
		t.Fatalf("want one JSON line, got %q", stdout)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	return &res
}

func proc(p *bench.Phase, name string) *bench.Proc {
	for i := range p.Processes {
		if p.Processes[i].Name == name {
			return &p.Processes[i]
		}
	}
	return nil
}

// TestBenchInProcess: a small run in process, with the baseline, gives
// every figure for every job.
func TestBenchInProcess(t *testing.T) {
	res := benchJSON(t, "--jobs", "500", "--in-process", "--baseline", "--numbers", "10")
	for _, p := range []*bench.Phase{res.Baseline, res.Full} {
		if p == nil {
			t.Fatal("a phase is missing")
		}
		if p.Published != 500 || p.Completed != 500 || p.Throughput <= 0 || p.Calls < 500 || p.Duplicates != 0 {
			t.Errorf("%s: %+v", p.Name, p)
		}
		if p.PublishToCall == nil || p.PublishToCall.Count != 500 || p.PublishToCall.P99 < p.PublishToCall.P50 {
			t.Errorf("%s: publish to call %+v", p.Name, p.PublishToCall)
		}
		if b := proc(p, bench.ProcBench); b == nil || b.CPUSeconds <= 0 || b.PeakRSSMB <= 0 {
			t.Errorf("%s: bench process %+v", p.Name, b)
		}
	}
	if !res.Config.StrictLimits {
		t.Error("the simulator's strict limits are not the default")
	}
	// Jobs sent first time write no key of their own (the compact index),
	// so the keyspace notifications time none of them.
	if l := res.Full.PublishToOutcome; l != nil && l.Count > 500 {
		t.Errorf("publish to outcome %+v", l)
	}
	if res.Baseline.PublishToOutcome != nil {
		t.Errorf("the baseline records no outcome, got %+v", res.Baseline.PublishToOutcome)
	}
	if r := proc(res.Full, bench.ProcRedis); r == nil || r.CPUSeconds <= 0 {
		t.Errorf("redis %+v", r)
	}
	// Per job the worker reads the record and writes the sent record (the
	// job's and the wamid's fields in the compact index, each a plain HSET
	// with the window's PEXPIREAT), and a pace script runs now and then.
	cmds := res.Full.RedisCommands
	if n := total(cmds); cmds["hgetall"] < 0.99 || cmds["hset"] < 1.99 || cmds["pexpireat"] < 1.99 || cmds["evalsha"] <= 0 || n < 3 || n > 20 {
		t.Errorf("redis commands per job %.2f: %v", n, cmds)
	}
	// Measured: at 500 jobs the fixed costs (scripts, the worker's keys and
	// connections) dominate; `waq bench --jobs 20000` gives the per-job figure.
	if b := res.Full.RedisBytesPerJob; b <= 0 {
		t.Errorf("redis bytes per sent job %.1f", b)
	}
	if _, ok := cmds["info"]; ok {
		t.Errorf("the bench's own INFO is counted: %v", cmds)
	}
	if res.Baseline.RedisCommands != nil {
		t.Errorf("the baseline uses no Redis, got %v", res.Baseline.RedisCommands)
	}
	if res.Ratios["throughput"] <= 0 || res.Ratios["publish_to_call_p99"] <= 0 {
		t.Errorf("ratios %v", res.Ratios)
	}
	if !res.Config.InProcess || res.Config.Jobs != 500 || res.Config.MPS != 80 {
		t.Errorf("config %+v", res.Config)
	}
}

// TestBenchProcesses: worker processes (this test binary acting as waq),
// a backlog and two workers; their CPU and memory are measured.
func TestBenchProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	res := benchJSON(t, "--jobs", "400", "--workers", "2", "--backlog", "--baseline", "--mps", "1000", "--concurrency", "64")
	for _, p := range []*bench.Phase{res.Baseline, res.Full} {
		w := proc(p, bench.ProcWorkers)
		if w == nil || w.CPUSeconds <= 0 || w.PeakRSSMB <= 0 || w.PID <= 0 {
			t.Errorf("%s: workers %+v", p.Name, w)
		}
		if n := proc(p, bench.ProcNATS); n == nil || n.CPUSeconds <= 0 || n.PeakRSSMB <= 0 {
			t.Errorf("%s: nats %+v", p.Name, n)
		}
		// The simulator is a child process too: its CPU is its own, and its
		// calls reach the bench (publish → call of every job).
		if s := proc(p, bench.ProcSim); s == nil || s.CPUSeconds <= 0 || s.PeakRSSMB <= 0 || s.PID <= 0 {
			t.Errorf("%s: simulator %+v", p.Name, s)
		}
		if p.PublishToCall == nil || p.PublishToCall.Count != 400 || p.Calls < 400 {
			t.Errorf("%s: publish to call %+v, %d calls", p.Name, p.PublishToCall, p.Calls)
		}
		if r := proc(p, bench.ProcRedis); r == nil {
			t.Errorf("%s: no redis figures", p.Name)
		}
		if p.Completed != 400 {
			t.Errorf("%s: completed %d", p.Name, p.Completed)
		}
	}
	if res.Ratios["workers_cpu_per_10k"] <= 0 || res.Ratios["workers_redis_cpu_per_10k"] <= res.Ratios["workers_cpu_per_10k"] || res.Ratios["total_cpu_per_10k"] <= 0 {
		t.Errorf("ratios %v", res.Ratios)
	}
	// The parking phase (a tenth of the jobs by default) asks the child
	// simulator for its 131026 over the control API.
	if res.Park == nil || res.Park.Parked != 40 || res.Park.Completed != 40 {
		t.Errorf("parking phase %+v", res.Park)
	}
	if !strings.HasPrefix(res.Config.Sim, "child process") || res.Config.FastSim {
		t.Errorf("config %+v", res.Config)
	}
}

// TestBenchFastSim: the lean simulator takes every job and enforces no
// limits, so the unpaced baseline sees no 130429 at a low mps.
func TestBenchFastSim(t *testing.T) {
	res := benchJSON(t, "--jobs", "300", "--in-process", "--baseline", "--numbers", "1", "--mps", "100", "--fast-sim")
	if !res.Config.FastSim || res.Config.StrictLimits {
		t.Errorf("config %+v", res.Config)
	}
	for _, p := range []*bench.Phase{res.Baseline, res.Full} {
		if p.Completed != 300 || p.Throttled != 0 || p.Calls != 300 || p.PublishToCall == nil || p.PublishToCall.Count != 300 {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
}

// TestBenchParked: the parking phase's jobs are answered 131026 (by the
// lean simulator too) and all parked, and Redis's bytes per parked job are
// reported; --parked 0 runs no such phase.
func TestBenchParked(t *testing.T) {
	res := benchJSON(t, "--jobs", "200", "--in-process", "--numbers", "5", "--mps", "1000", "--fast-sim", "--parked", "150")
	p := res.Park
	if p == nil {
		t.Fatal("no parking phase")
	}
	if p.Name != "park" || p.Published != 150 || p.Completed != 150 || p.Parked != 150 || p.Calls != 150 || p.Duplicates != 0 {
		t.Errorf("parking phase %+v", p)
	}
	// Measured: at 150 jobs the fixed costs dominate (see README, Sizing,
	// for the figure at scale); a parked job costs more than a sent one.
	if p.RedisBytesPerParkedJob <= res.Full.RedisBytesPerJob || p.RedisBytesPerJob != 0 {
		t.Errorf("redis bytes per parked job %.1f, per sent job %.1f (full phase) and %.1f (parking phase)",
			p.RedisBytesPerParkedJob, res.Full.RedisBytesPerJob, p.RedisBytesPerJob)
	}
	if res.Full.Parked != 0 || res.Full.RedisBytesPerParkedJob != 0 || res.Full.Calls != 200 {
		t.Errorf("full phase %+v", res.Full)
	}
	if res := benchJSON(t, "--jobs", "100", "--in-process", "--numbers", "5", "--fast-sim", "--parked", "0"); res.Park != nil {
		t.Errorf("--parked 0 ran a parking phase: %+v", res.Park)
	}
}

// TestBenchSentJobBytes: what 20,000 jobs sent through the whole pipeline
// (worker, pacing, the compact index, bodies on JetStream) leave in Redis
// at the default settings, as `waq bench` reports it, is within issue 24's
// budget: at most 150 bytes per sent job everything included, at most 100
// of them kept for the whole retention. The bodies are on JetStream
// (disk), not in Redis.
func TestBenchSentJobBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 20,000 jobs")
	}
	res := benchJSON(t, "--jobs", "20000", "--in-process", "--numbers", "20", "--mps", "1000", "--concurrency", "256",
		"--backlog", "--fast-sim", "--tracing=false", "--parked", "0")
	f := res.Full
	t.Logf("%.1f Redis bytes per sent job, %.1f of them kept for the retention; %.1f bytes of bodies on JetStream",
		f.RedisBytesPerJob, f.RedisRetainedBytesPerJob, f.BodyBytesPerJob)
	if f.Completed != 20000 || f.Duplicates != 0 {
		t.Fatalf("full phase %+v", f)
	}
	if f.RedisBytesPerJob <= 0 || f.RedisBytesPerJob > 150 {
		t.Errorf("%.1f Redis bytes per sent job, want at most 150", f.RedisBytesPerJob)
	}
	if f.RedisRetainedBytesPerJob <= 0 || f.RedisRetainedBytesPerJob > 100 || f.RedisRetainedBytesPerJob > f.RedisBytesPerJob {
		t.Errorf("%.1f Redis bytes per sent job kept for the retention (of %.1f), want at most 100", f.RedisRetainedBytesPerJob, f.RedisBytesPerJob)
	}
	// Each body is kept once, in a batch of bodies.
	if f.BodyBytesPerJob < 200 || f.BodyBytesPerJob > 1000 {
		t.Errorf("%.1f bytes of bodies per sent job", f.BodyBytesPerJob)
	}
}

// TestBenchKeyDump: --keydump prints the keys by pattern, with the sent
// index's buckets, and INFO memory's split, on stderr; stdout keeps the
// one JSON line.
func TestBenchKeyDump(t *testing.T) {
	testenv.RedisServerPath(t)
	code, stdout, stderr := runCmd(t, nil, "", "bench", "--json", "--keydump", "--jobs", "300", "--in-process", "--numbers", "3", "--fast-sim", "--parked", "20")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Count(strings.TrimSpace(stdout), "\n") != 0 || !strings.HasPrefix(stdout, "{") {
		t.Errorf("stdout is not one JSON line: %q", stdout)
	}
	for _, want := range []string{"key dump after the full phase (300 jobs", "key dump after the park phase (20 jobs",
		"waq:lj:N:N", "waq:lw:N:N", "hash/listpack", "mem_clients_normal", "state (less clients"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestBenchRedisFsyncOff: --redis-fsync off runs Redis without an
// append-only file, and the result says so (it said everysec: "off" was
// taken for the default).
func TestBenchRedisFsyncOff(t *testing.T) {
	res := benchJSON(t, "--jobs", "50", "--in-process", "--numbers", "2", "--fast-sim", "--parked", "0", "--redis-fsync", "off")
	if res.Config.RedisFsync != "off" || res.Full.Completed != 50 {
		t.Errorf("config %+v, full %+v", res.Config, res.Full)
	}
}

// TestBenchTable: the readable form names every figure.
func TestBenchTable(t *testing.T) {
	testenv.RedisServerPath(t)
	code, stdout, stderr := runCmd(t, nil, "", "bench", "--jobs", "200", "--in-process", "--numbers", "5", "--tracing=false", "--repeat", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"throughput (jobs/s)", "publish → call p99 (ms)", "publish → outcome p99.9 (ms)", "CPU s/10k jobs: redis", "peak RSS MiB: bench+nats+sim", "run 2 (jobs/s)", "median of 2 runs", "Redis commands per job", "Redis bytes per sent job", "of them kept for the retention", "JetStream body bytes per sent job", "parking phase: 20 jobs answered 131026 and parked", "Redis bytes per parked job"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "--rate", "10"},
		{"bench", "--jobs", "10", "--duration", "1s"},
		{"bench", "--jobs", "10", "--nats-sync", "sometimes"},
		{"bench", "--jobs", "10", "--fast-sim", "--nats-url", "nats://127.0.0.1:1", "--redis-url", "redis://127.0.0.1:1"},
		{"bench", "--jobs", "10", "--parked", "-2"},
		{"bench", "--jobs", "10", "--parked", "many"},
		{"bench", "sim-server", "--latency", "-1s"},
		{"bench", "sim-server", "--mps", "-3"},
		{"bench", "sim-server", "extra"},
	} {
		if code, _, stderr := runCmd(t, nil, "", args...); code != 2 {
			t.Errorf("%v: code %d, %s", args, code, stderr)
		}
	}
}

// TestBenchStrictLimits: by default the simulator holds each number to its
// mps in any one second; the unpaced baseline loop runs into 130429, the
// paced worker completes every job.
func TestBenchStrictLimits(t *testing.T) {
	res := benchJSON(t, "--jobs", "300", "--in-process", "--baseline", "--numbers", "1", "--mps", "100")
	if res.Baseline == nil || res.Full == nil {
		t.Fatal("a phase is missing")
	}
	if res.Baseline.Throttled == 0 {
		t.Errorf("the unpaced baseline saw no 130429 at 100 mps: %+v", res.Baseline)
	}
	if res.Full.Completed != 300 || res.Full.Duplicates != 0 {
		t.Errorf("full: %+v", res.Full)
	}
}
