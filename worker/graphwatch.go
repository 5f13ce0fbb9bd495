package worker

import (
	"sync"
	"time"

	"github.com/waqhq/waq/graph"
)

// graphFailuresInRow is how many sends in a row must get no usable answer
// before the Graph API counts as failing: a few timeouts of concurrent
// sends in one blip should not, an API that fails or hangs for every send
// is seen within seconds at any volume that matters.
const graphFailuresInRow = 5

// graphAPI is the name of the Graph API in /readyz and waq_dependency_up.
const graphAPI = "graph_api"

// graphWatch tells whether the Graph API answers: failing once the last
// graphFailuresInRow sends got no usable answer (a transport error, a
// timeout, an HTTP 5xx), answering again at the first send that got one
// (a success, or an error of Meta's about the message: the API works).
type graphWatch struct {
	mu      sync.Mutex
	inRow   int
	since   time.Time // the first failure of the row
	last    string    // the last failure, in words (never the token: graph's errors do not carry it)
	failing bool
}

// graphState is the Graph API's state for /readyz.
type graphState struct {
	Failing bool
	InRow   int
	Since   time.Time
	Last    string
}

// observe records one send's answer and reports whether the state changed.
func (g *graphWatch) observe(f graph.Failure, failed bool, err error, now time.Time) (changed bool, st graphState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !failed || !(f.Transport || f.HTTPStatus >= 500) {
		changed = g.failing
		g.inRow, g.failing, g.last = 0, false, ""
		return changed, g.state()
	}
	if g.inRow == 0 {
		g.since = now
	}
	g.inRow++
	g.last = shortError(err)
	if !g.failing && g.inRow >= graphFailuresInRow {
		g.failing = true
		changed = true
	}
	return changed, g.state()
}

func (g *graphWatch) state() graphState {
	return graphState{Failing: g.failing, InRow: g.inRow, Since: g.since, Last: g.last}
}

// snapshot is the state now.
func (g *graphWatch) snapshot() graphState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state()
}

// graphAnswered records a send's outcome: err nil for an answer of
// success, else the send's error classified as f. A change is logged (at
// WARN with the error when the API starts failing) and shown by
// waq_dependency_up{dependency="graph_api"}.
func (w *Worker) graphAnswered(f graph.Failure, err error) {
	changed, st := w.graphWatch.observe(f, err != nil, err, w.now())
	if !changed {
		return
	}
	if st.Failing {
		w.metrics.Up.WithLabelValues(graphAPI).Set(0)
		w.log.Warn("the Graph API fails every send: jobs are retried with backoff, nothing is lost",
			"error", st.Last, "sends_failed_in_row", st.InRow, "since", st.Since.UTC().Format(time.RFC3339))
		return
	}
	w.metrics.Up.WithLabelValues(graphAPI).Set(1)
	w.log.Info("the Graph API answers again")
}
