package bench

// The workers a phase starts: waq worker child processes (or goroutines
// with InProcess), or the baseline loop, and their CPU and memory.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/worker"
)

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
				// The phase's name labels its goroutines' samples in a CPU
				// profile (--cpuprofile), those they start included (the
				// HTTP/2 and NATS clients'): go tool pprof -tagfocus
				// phase=full.
				pprof.Do(wctx, pprof.Labels("phase", name), func(wctx context.Context) {
					if err := run(wctx); err != nil && wctx.Err() == nil {
						ws.errs <- fmt.Errorf("%s worker: %w", name, err)
					}
				})
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
		"WAQ_GRAPH_URL=" + b.sim.url(),
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
			return RunBaseline(ctx, BaselineConfig{NATSURL: b.natsURL, GraphURL: b.sim.url(), H2C: b.cfg.H2C, Stream: stream, Token: "bench-token", Concurrency: b.cfg.Concurrency})
		}, nil
	}
	var cfg worker.Config
	if err := cfg.FromEnv(getenv); err != nil {
		return nil, err
	}
	cfg.HTTPAddr = devenv.Loopback + ":0"
	return func(ctx context.Context) error {
		tr, err := telemetry.SetupTracing(ctx, worker.ServiceName, getenv)
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
