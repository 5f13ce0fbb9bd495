package console

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/worker"
)

// overviewData is the overview page.
type overviewData struct {
	Process string
	Started time.Time
	// FleetErr says why the fleet's counts are missing (Redis did not
	// answer, or no reader is configured).
	FleetErr string
	// Collecting: no worker has reported in the hour yet.
	Collecting bool
	From, To   time.Time
	Workers    []fleet.Worker

	Ready *worker.Readiness
	// Holds are the template, quality and account holds (from Ready).
	Holds holdsData

	// Send attempts: sends Meta accepted or answered with an error that is
	// not a rate limit.
	Sends    []legend
	Attempts string
	Retried  string
	// Throttled: jobs held back, by scope; RateLimited of them were
	// answered with a rate limit by Meta.
	Throttled    []legend
	ThrottledSum string
	RateLimited  string
	Parked       []legend
	ParkedSum    string
	E131k        string
	E131kRate    string
	// The consumer's counts, and what the workers hold of them.
	Pending, AckPending, Holding, InFlight, Waiting string
	PendingAt                                       time.Time

	Store      []legend
	StoreTotal string
	StoreErr   string

	SendsChart, ThrottledChart, ParkedChart, E131kChart, PendingChart chart
}

// outcomes are the send attempts' outcomes.
var outcomes = []series{
	{name: "sent", class: "s-sent", value: func(a, b sample) float64 { return delta(a.c.Sent, b.c.Sent) }},
	{name: "failed", class: "s-failed", value: func(a, b sample) float64 { return delta(a.c.Failed, b.c.Failed) }},
}

// reasons are the dead-letter reasons in the order the pages list them.
var reasons = []string{"window", "template", "retries_exhausted", "invalid", "undeliverable", "expired", "account", "unknown"}

// scopes are the scopes a job is held back by (waq_throttled_total), in
// the order the page lists them: the gate's own first, then Meta's.
var scopes = []string{"pace", "paused", "recipient", "number", "waba", "app"}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s session) {
	if len(r.URL.Query()) > 0 {
		c.fail(w, r, s, http.StatusBadRequest, "The overview takes no parameters.")
		return
	}
	d := overviewData{Process: c.opts.Process, Started: c.started}
	if c.opts.Readiness != nil {
		rd := c.opts.Readiness()
		d.Ready = &rd
		d.Holds = c.holdsOf(rd)
	}
	var v fleet.View
	switch {
	case c.opts.Fleet == nil:
		d.FleetErr = "this console reads no fleet counts"
	default:
		var err error
		if v, err = c.opts.Fleet.Read(r.Context(), slotsRead); err != nil {
			d.FleetErr = "Redis did not answer: " + err.Error()
		}
	}
	win := window(v)
	d.Workers = v.Workers
	d.Collecting = d.FleetErr == "" && len(v.Workers) == 0 && !reported(v)
	if len(win) > 0 {
		first, last := win[0], win[len(win)-1]
		d.From, d.To = first.at, last.at
	}
	t := v.Total
	for _, o := range []struct {
		name, class string
		n           int64
	}{{"sent", "s-sent", t.Sent}, {"failed", "s-failed", t.Failed}} {
		d.Sends = append(d.Sends, legend{Class: o.class, Label: o.name, Total: num(float64(o.n))})
	}
	d.Attempts, d.Retried = num(float64(t.Attempts())), num(float64(t.Retried))
	d.E131k = num(float64(t.E131000))
	if t.Attempts() > 0 {
		d.E131kRate = strconv.FormatFloat(100*float64(t.E131000)/float64(t.Attempts()), 'f', 1, 64) + "%"
	}
	for _, sc := range keysOf(t.Throttled, scopes) {
		d.Throttled = append(d.Throttled, legend{Class: "t-" + sc, Label: sc, Total: num(float64(t.Throttled[sc]))})
	}
	d.ThrottledSum, d.RateLimited = num(float64(t.ThrottledTotal())), num(float64(t.RateLimited))
	for _, rs := range keysOf(t.Parked, reasons) {
		d.Parked = append(d.Parked, legend{Class: "r-" + rs, Label: rs, Total: num(float64(t.Parked[rs]))})
	}
	d.ParkedSum = num(float64(t.ParkedTotal()))
	d.Pending, d.AckPending, d.PendingAt = num(float64(v.Pending)), num(float64(v.AckPending)), v.PendingAt
	d.Holding, d.InFlight, d.Waiting = num(float64(v.Holding)), num(float64(v.InFlight)), num(float64(v.Waiting()))

	every := fleet.Bucket
	d.SendsChart = stacked("Send attempts per minute by outcome", every, win, outcomes)
	var ts []series
	for _, sc := range scopes {
		ts = append(ts, series{name: sc, class: "t-" + sc, value: func(a, b sample) float64 { return delta(a.c.Throttled[sc], b.c.Throttled[sc]) }})
	}
	d.ThrottledChart = stacked("Jobs held back per minute by scope", every, win, ts)
	var ps []series
	for _, rs := range reasons {
		ps = append(ps, series{name: rs, class: "r-" + rs, value: func(a, b sample) float64 { return delta(a.c.Parked[rs], b.c.Parked[rs]) }})
	}
	d.ParkedChart = stacked("Jobs parked per minute by reason", every, win, ps)
	d.E131kChart = stacked("131000 errors per minute", every, win, []series{
		{name: "131000", class: "s-failed", value: func(a, b sample) float64 { return delta(a.c.E131000, b.c.E131000) }},
	})
	d.PendingChart = gauge("Jobs pending on the consumer", "g-pending", every, win, func(s sample) float64 { return s.pending })

	// The store's size is shared by all workers: it comes from Redis.
	if c.opts.Store != nil {
		counts, err := c.opts.Store.CountByReason(r.Context())
		if err != nil {
			d.StoreErr = "the dead-letter store did not answer: " + err.Error()
		} else {
			total := int64(0)
			keys := make([]string, 0, len(counts))
			for k, n := range counts {
				keys = append(keys, k)
				total += n
			}
			sort.Slice(keys, func(a, b int) bool {
				return counts[keys[a]] > counts[keys[b]] || counts[keys[a]] == counts[keys[b]] && keys[a] < keys[b]
			})
			for _, k := range keys {
				d.Store = append(d.Store, legend{Class: "r-" + k, Label: k, Total: num(float64(counts[k]))})
			}
			d.StoreTotal = num(float64(total))
		}
	}
	c.render(w, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", CSRF: s.csrf, Refresh: int(c.opts.Refresh / time.Second), Data: d})
}

// reported reports whether any worker reported in the view's minutes.
func reported(v fleet.View) bool {
	for _, m := range v.Minutes {
		if m.Reported {
			return true
		}
	}
	return false
}

// keysOf lists the keys of m with a count, those of order first in that
// order, then any other (a scope or reason added later) by name.
func keysOf(m map[string]int64, order []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range order {
		seen[k] = true
		if m[k] > 0 {
			out = append(out, k)
		}
	}
	var rest []string
	for k, n := range m {
		if !seen[k] && n > 0 {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
