package bench

// The simulator of a run: in this process (in-process runs, and beside
// running servers), or a child process (`waq bench sim-server`) whose CPU
// and memory are measured apart from the bench's. The child reports every
// call on its standard output ("c JOB_ID UNIX_NANOS", buffered, flushed
// every few milliseconds), which the bench reads as the in-process
// simulator's callback.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/waqhq/waq/cmd/waq/internal/devenv"
	"github.com/waqhq/waq/fakegraph"
)

// SimReady is the line the simulator child prints, followed by its URL,
// once it accepts requests.
const SimReady = "sim ready "

// SimOptions is the simulator of a run, as the child gets it in flags.
type SimOptions struct {
	// Fast is fakegraph's lean mode (Config.Fast): no limits, rules or
	// webhooks.
	Fast bool
	// Latency is how long it takes to answer.
	Latency time.Duration
	// Limits enforces each number's mps (MPS, or 80) as a strict sliding
	// one-second window.
	Limits bool
	MPS    int
}

// Args are the flags of `waq bench sim-server`.
func (o SimOptions) Args() []string {
	a := []string{"sim-server", "--latency", o.Latency.String(), "--mps", strconv.Itoa(o.MPS)}
	if o.Fast {
		a = append(a, "--fast")
	}
	if o.Limits {
		a = append(a, "--limits")
	}
	return a
}

// config is the simulator's configuration; onSend receives every call.
func (o SimOptions) config(onSend func(fakegraph.Send)) fakegraph.Config {
	return fakegraph.Config{
		Scenario: &fakegraph.Scenario{Latency: fakegraph.Latency{Base: fakegraph.Duration(o.Latency)},
			Limits: fakegraph.Limits{Throughput: fakegraph.Throughput{Enabled: o.Limits && !o.Fast, Strict: true, MPS: o.MPS}}},
		SendsLog: -1,
		OnSend:   onSend,
		Fast:     o.Fast,
	}
}

// simulator is the Graph API of a run.
type simulator interface {
	url() string
	reset(ctx context.Context) error
	// addRules adds rules until the next reset.
	addRules(ctx context.Context, rules ...fakegraph.Rule) error
	stats(ctx context.Context) (*fakegraph.Stats, error)
	// pid is the child's process id; 0 in this process.
	pid() int
}

// localSim is the simulator in this process.
type localSim struct{ g *devenv.Graph }

func (s localSim) url() string                 { return s.g.URL }
func (s localSim) reset(context.Context) error { s.g.Sim.Reset(); return nil }
func (s localSim) pid() int                    { return 0 }
func (s localSim) addRules(_ context.Context, rules ...fakegraph.Rule) error {
	_, err := s.g.Sim.AddRules(rules...)
	return err
}
func (s localSim) stats(context.Context) (*fakegraph.Stats, error) {
	st := s.g.Sim.Stats(false)
	return &st, nil
}

// childSim is the simulator in a child process, driven by its control API.
type childSim struct {
	c    *child
	u    string
	ctrl *fakegraph.Control
}

func (s *childSim) url() string                     { return s.u }
func (s *childSim) reset(ctx context.Context) error { return s.ctrl.Reset(ctx) }
func (s *childSim) pid() int                        { return s.c.pid() }
func (s *childSim) addRules(ctx context.Context, rules ...fakegraph.Rule) error {
	_, err := s.ctrl.AddRules(ctx, rules...)
	return err
}
func (s *childSim) stats(ctx context.Context) (*fakegraph.Stats, error) {
	return s.ctrl.Stats(ctx, false)
}

// startSim starts the simulator child and feeds its calls to onCall.
func (b *bench) startSim(ctx context.Context, o SimOptions) (*childSim, error) {
	c, u, err := b.startServerChild(ctx, "sim", o.Args(), SimReady, func(line []byte) {
		if id, at, ok := parseCall(line); ok {
			b.onCall(id, at)
		}
	})
	if err != nil {
		return nil, err
	}
	return &childSim{c: c, u: u, ctrl: &fakegraph.Control{BaseURL: u, HTTPClient: &http.Client{Timeout: 10 * time.Second}}}, nil
}

// parseCall reads a "c JOB_ID UNIX_NANOS" line.
func parseCall(line []byte) (id string, at time.Time, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("c "))
	if !found {
		return "", time.Time{}, false
	}
	i := bytes.LastIndexByte(rest, ' ')
	if i <= 0 {
		return "", time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(rest[i+1:]), 10, 64)
	if err != nil || ns <= 0 {
		return "", time.Time{}, false
	}
	return string(rest[:i]), time.Unix(0, ns), true
}

// ServeSim runs the simulator on a free loopback port until ctx ends: the
// bench's simulator child. It prints SimReady and its URL, then a line per
// call of the messages endpoint (see the file comment) to out.
func ServeSim(ctx context.Context, o SimOptions, out io.Writer) error {
	w := &callWriter{w: bufio.NewWriterSize(out, 64<<10)}
	g, err := devenv.ServeGraph(0, o.config(w.send))
	if err != nil {
		return err
	}
	defer g.Close()
	w.mu.Lock()
	fmt.Fprintf(w.w, "%s%s\n", SimReady, g.URL)
	err = w.w.Flush()
	w.mu.Unlock()
	if err != nil {
		return err
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.flush()
			return nil
		case <-t.C:
			w.flush()
		}
	}
}

// callWriter writes a line per call, buffered.
type callWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	num [20]byte
}

func (c *callWriter) send(s fakegraph.Send) {
	if s.JobID == "" || strings.ContainsAny(s.JobID, " \n") {
		return
	}
	c.mu.Lock()
	c.w.WriteString("c ")
	c.w.WriteString(s.JobID)
	c.w.WriteByte(' ')
	c.w.Write(strconv.AppendInt(c.num[:0], s.Time.UnixNano(), 10))
	c.w.WriteByte('\n')
	c.mu.Unlock()
}

func (c *callWriter) flush() {
	c.mu.Lock()
	_ = c.w.Flush()
	c.mu.Unlock()
}
