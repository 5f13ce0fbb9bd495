package bench

// The CPU time and peak memory of the servers of a phase, each process
// apart: Redis, the NATS child, the simulator child and this process.

import (
	"os"
	"time"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
)

// serverProcs is the processes measured over a phase besides the workers.
type serverProcs []*serverProc

type serverProc struct {
	name string
	pid  int // 0: this process
	cpu0 time.Duration
}

// servers lists the processes this run started, and this one.
func (b *bench) servers() serverProcs {
	var ps serverProcs
	if b.redis != nil && b.redis.PID > 0 {
		ps = append(ps, &serverProc{name: ProcRedis, pid: b.redis.PID})
	}
	if b.natsChild != nil {
		ps = append(ps, &serverProc{name: ProcNATS, pid: b.natsChild.pid()})
	}
	if b.sim != nil && b.sim.pid() > 0 {
		ps = append(ps, &serverProc{name: ProcSim, pid: b.sim.pid()})
	}
	return append(ps, &serverProc{name: ProcBench})
}

// mark notes each process's CPU time so far and resets its peak memory.
func (ps serverProcs) mark() {
	for _, p := range ps {
		if s, err := devenv.ReadProc(p.pid); err == nil {
			p.cpu0 = s.CPU
		}
		_ = devenv.ResetPeak(p.pid)
	}
}

// usage is each process's CPU since mark (also per 10,000 of n jobs) and
// peak memory.
func (ps serverProcs) usage(n int) []Proc {
	var out []Proc
	for _, p := range ps {
		s, err := devenv.ReadProc(p.pid)
		if err != nil {
			continue
		}
		pid := p.pid
		if pid == 0 {
			pid = os.Getpid()
		}
		cpu := s.CPU - p.cpu0
		out = append(out, Proc{Name: p.name, PID: pid, CPUSeconds: cpu.Seconds(), CPUPer10k: per10k(cpu, n), PeakRSSMB: mb(s.PeakRSS)})
	}
	return out
}

func per10k(cpu time.Duration, n int) float64 {
	if n <= 0 {
		return 0
	}
	return cpu.Seconds() / float64(n) * 10000
}
