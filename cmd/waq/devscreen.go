package main

// What `waq dev` shows: a look at the pipeline (the worker's metrics, the
// consumer, /readyz, the dead-letter store, the simulator) redrawn on a
// terminal, or a plain line a second.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/worker"
)

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
