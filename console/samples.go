package console

import (
	"time"

	"github.com/waqhq/waq/fleet"
)

// The overview reads the fleet's per-minute buckets (package fleet: every
// worker adds what its counters grew by), so that it shows every worker,
// whichever one serves the page, and keeps its hour across restarts. The
// charts draw samples: the counts summed up to a moment.

// slotsRead is the minutes an overview reads: the chart's 60 slots, the
// last the minute in progress.
const slotsRead = slots

// sample is the fleet's counts summed from the first minute shown up to a
// moment, and the consumer's pending count then.
type sample struct {
	at      time.Time
	c       fleet.Counts
	pending float64
}

// window turns the minutes of a view into samples: n minutes are n+1
// samples, from the first minute's start to the view's time.
func window(v fleet.View) []sample {
	if len(v.Minutes) == 0 {
		return nil
	}
	out := make([]sample, 0, len(v.Minutes)+1)
	cum := fleet.Counts{}
	out = append(out, sample{at: v.Minutes[0].Start, c: cum, pending: float64(v.Minutes[0].Pending)})
	for i, m := range v.Minutes {
		cum = cum.Plus(m.Counts)
		end := m.Start.Add(fleet.Bucket)
		if i == len(v.Minutes)-1 && v.At.Before(end) {
			end = v.At
		}
		out = append(out, sample{at: end, c: cum, pending: float64(m.Pending)})
	}
	return out
}

// delta is how much a count grew between two samples.
func delta(a, b int64) float64 {
	if b < a {
		return 0
	}
	return float64(b - a)
}
