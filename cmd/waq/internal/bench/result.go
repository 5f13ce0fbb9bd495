package bench

// A run's figures: the phases, the processes' CPU and memory, the median of
// repetitions and the ratios of the full pipeline to the baseline.

import (
	"slices"
	"sort"
)

// Result is a run's figures. Ratios are full ÷ baseline.
type Result struct {
	Config   Settings `json:"config"`
	Baseline *Phase   `json:"baseline,omitempty"`
	Full     *Phase   `json:"full"`
	// Park is the parking phase (Config.Parked): jobs the simulator
	// answers 131026, parked by the workers.
	Park   *Phase             `json:"park,omitempty"`
	Ratios map[string]float64 `json:"ratios,omitempty"`
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
	// StrictLimits says the simulator enforced each number's mps as a
	// sliding one-second window (Config.NoLimits unset).
	StrictLimits bool `json:"strict_limits"`
	// FastSim says the simulator ran in its lean mode.
	FastSim bool `json:"fast_sim"`
	// Sim says where the simulator ran.
	Sim string `json:"sim"`
}

// Phase is the figures of one pipeline: "baseline", "full" or "park".
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
	Calls      int64 `json:"graph_calls"`
	Duplicates int64 `json:"duplicate_sends"`
	// Throttled counts the sends the simulator answered 130429.
	Throttled int64  `json:"throttled_130429"`
	Processes []Proc `json:"processes"`
	// RedisCommands is what Redis ran per job in the full phase, by
	// command (INFO commandstats; a script's own commands are counted as
	// well as the script), when the bench started Redis.
	RedisCommands map[string]float64 `json:"redis_commands_per_job,omitempty"`
	// RedisBytesPerJob is what the full phase left in Redis, per job
	// (every job of the phase is sent: bytes per sent job), when the bench
	// started Redis (so nothing else is in it): used_memory after the phase
	// less before it, without what Redis holds whatever the jobs
	// (connections' buffers, the append-only file's buffer, script caches,
	// its per-command latency histograms). Everything included: what is
	// kept for the whole retention and what expires sooner.
	RedisBytesPerJob float64 `json:"redis_bytes_per_sent_job,omitempty"`
	// RedisRetainedBytesPerJob is the part of RedisBytesPerJob kept for
	// the whole retention: less the keys that expire within 25 hours
	// (MEMORY USAGE of a sample of each key pattern).
	RedisRetainedBytesPerJob float64 `json:"redis_bytes_per_sent_job_retained,omitempty"`
	// BodyBytesPerJob is what the full phase added to the workers' stream
	// of bodies (WAQ_BODIES, on disk, kept for the resend window), per job.
	BodyBytesPerJob float64 `json:"jetstream_body_bytes_per_sent_job,omitempty"`
	// Parked is how many jobs the parking phase's simulator answered 131026
	// (each then parked); RedisBytesPerParkedJob is what the phase left in
	// Redis (measured as RedisBytesPerJob), divided by them.
	Parked                 int64   `json:"parked,omitempty"`
	RedisBytesPerParkedJob float64 `json:"redis_bytes_per_parked_job,omitempty"`
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
	ProcSim     = "sim"   // the simulator, when it runs as a child process
	ProcBench   = "bench" // this process: publishers, trace sink (and NATS and the simulator in process)
)

// CPU adds the CPU seconds per 10,000 jobs of the named processes (of all
// without names).
func (p *Phase) CPU(names ...string) float64 {
	t := 0.0
	for _, pr := range p.Processes {
		if len(names) == 0 || slices.Contains(names, pr.Name) {
			t += pr.CPUPer10k
		}
	}
	return t
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

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
	// What the worker costs with the Redis it needs, against the loop
	// (whose Redis is idle); and every process of the run together.
	div("workers_redis_cpu_per_10k", full.CPU(ProcWorkers, ProcRedis), base.CPU(ProcWorkers, ProcRedis))
	div("total_cpu_per_10k", full.CPU(), base.CPU())
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
