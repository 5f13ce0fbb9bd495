package devenv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/httpsrv"
)

// Graph is the simulator serving on a loopback listener.
type Graph struct {
	Sim *fakegraph.Server
	// URL is http://127.0.0.1:PORT, what WAQ_GRAPH_URL takes.
	URL    string
	server *http.Server
	served chan error
}

// ServeGraph serves a simulator configured by cfg on port (preferred; 0
// picks a free one).
func ServeGraph(port int, cfg fakegraph.Config) (*Graph, error) {
	ln, err := Listen(port)
	if err != nil {
		return nil, err
	}
	return ServeGraphOn(ln, cfg), nil
}

// ServeGraphOn serves a simulator configured by cfg on ln.
func ServeGraphOn(ln net.Listener, cfg fakegraph.Config) *Graph {
	sim := fakegraph.New(cfg)
	g := &Graph{Sim: sim, URL: "http://" + ln.Addr().String(), served: make(chan error, 1),
		server: httpsrv.New(sim, httpsrv.Timeouts{}, nil)}
	g.server.Protocols = fakegraph.Protocols()
	go func() { g.served <- g.server.Serve(ln) }()
	return g
}

// Close stops the simulator: first its answers left hanging and its
// webhooks, then the HTTP server.
func (g *Graph) Close() {
	if g == nil {
		return
	}
	g.Sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.server.Shutdown(ctx); err != nil {
		_ = g.server.Close()
	}
	if err := <-g.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = err // the listener failed; nothing more to stop
	}
}

// The demo's business numbers.
const (
	// NumberStore sends order updates; most of the demo's traffic.
	NumberStore = "106540352242922"
	// NumberSupport answers customers inside their 24-hour window.
	NumberSupport = "106540352242923"
	// NumberFlash is held to StrictMPS by the simulator, far below the 80
	// messages per second the worker paces it at, so it gets 130429 and
	// the worker slows it down.
	NumberFlash = "106540352242924"
	// DemoWABA owns the three numbers.
	DemoWABA = fakegraph.DefaultWABAID
	// StrictMPS is NumberFlash's rate limit in the simulator.
	StrictMPS = 3
	// DemoTemplate is an approved template without parameters: what a
	// window failure is replayed as.
	DemoTemplate = "hello_world"
)

// OpenWindows is how many of the demo's customers (the first ones) have
// written lately: their 24-hour window is open, free-form messages to them
// go through.
const OpenWindows = 20

// Recipient is the demo's i-th customer number.
func Recipient(i int) string {
	const base = 15550100000
	return strconv.FormatInt(base+int64(i%10000), 10)
}

// DemoScenario is the simulator's behaviour in `waq dev`: three numbers (one
// with a strict rate limit), templates that exist, are paused or are
// missing, the 24-hour window enforced with a few customers inside it, the
// throughput and pair limits on, a realistic latency and a small random
// failure mix.
func DemoScenario() *fakegraph.Scenario {
	sc := &fakegraph.Scenario{
		Latency: fakegraph.Latency{Base: fakegraph.Duration(40 * time.Millisecond), Jitter: fakegraph.Duration(60 * time.Millisecond)},
		PhoneNumbers: []fakegraph.PhoneNumber{
			{PhoneNumberID: NumberStore, WABAID: DemoWABA, VerifiedName: "Acme Store"},
			{PhoneNumberID: NumberSupport, WABAID: DemoWABA, VerifiedName: "Acme Support"},
			{PhoneNumberID: NumberFlash, WABAID: DemoWABA, VerifiedName: "Acme Flash Sales", MPS: StrictMPS},
		},
		Templates: []fakegraph.Template{
			{Name: "order_update", Language: "en_US", BodyParams: 1, Body: "Your order {{1}} is on its way."},
			{Name: DemoTemplate, Language: "en_US"},
			{Name: "flash_sale", Language: "en_US", Category: "MARKETING"},
			{Name: "spring_sale", Language: "en_US", Category: "MARKETING", Status: "PAUSED"},
		},
		Limits: fakegraph.Limits{
			Throughput: fakegraph.Throughput{Enabled: true},
			Pair:       fakegraph.PairLimit{Enabled: true},
		},
		Window: fakegraph.Window{Enforce: true},
		Random: []fakegraph.RandomFailure{
			{Rate: 0.01, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}},
			{Rate: 0.005, PhoneNumberID: NumberStore, Respond: fakegraph.Response{Error: fakegraph.Code(131026)}},
			{Rate: 0.003, Respond: fakegraph.Response{Kind: fakegraph.KindHTML}},
		},
	}
	for i := 0; i < OpenWindows; i++ {
		sc.Window.Open = append(sc.Window.Open, fakegraph.OpenWindow{To: Recipient(i)})
	}
	return sc
}
