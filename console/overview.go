package console

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/waqhq/waq/worker"
)

// overviewData is the overview page.
type overviewData struct {
	Process    string
	Started    time.Time
	Per, Span  string
	Collecting bool
	From, To   time.Time

	Ready *worker.Readiness

	Sends      []legend
	Attempts   string
	Parked     []legend
	ParkedSum  string
	E131k      string
	E131kRate  string
	Pending    string
	AckPending string
	InFlight   string

	Store      []legend
	StoreTotal string
	StoreErr   string

	SendsChart, ParkedChart, E131kChart, PendingChart chart
}

// outcomes are the values of waq_sends_total's outcome label.
var outcomes = []series{
	{name: "sent", class: "s-sent", value: func(a, b sample) float64 { return delta(a.sends["sent"], b.sends["sent"]) }},
	{name: "failed", class: "s-failed", value: func(a, b sample) float64 { return delta(a.sends["failed"], b.sends["failed"]) }},
	{name: "throttled", class: "s-throttled", value: func(a, b sample) float64 { return delta(a.sends["throttled"], b.sends["throttled"]) }},
}

// reasons are the dead-letter reasons in the order the pages list them.
var reasons = []string{"window", "template", "retries_exhausted", "invalid", "undeliverable", "expired", "account", "unknown"}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s session) {
	if len(r.URL.Query()) > 0 {
		c.fail(w, r, s, http.StatusBadRequest, "The overview takes no parameters.")
		return
	}
	every := c.opts.SampleEvery
	win := c.samples.window()
	d := overviewData{Process: c.opts.Process, Started: c.started, Per: per(every), Span: span(every), Collecting: len(win) < 3}
	if c.opts.Readiness != nil {
		rd := c.opts.Readiness()
		d.Ready = &rd
	}
	if len(win) > slots+1 {
		win = win[len(win)-slots-1:]
	}
	if len(win) > 0 {
		first, last := win[0], win[len(win)-1]
		d.From, d.To = first.at, last.at
		attempts := 0.0
		for _, o := range outcomes {
			v := o.value(first, last)
			attempts += v
			d.Sends = append(d.Sends, legend{Class: o.class, Label: o.name, Total: num(v)})
		}
		d.Attempts = num(attempts)
		e := delta(first.e131k, last.e131k)
		d.E131k = num(e)
		if attempts > 0 {
			d.E131kRate = strconv.FormatFloat(100*e/attempts, 'f', 1, 64) + "%"
		}
		sum := 0.0
		for _, rs := range reasons {
			v := delta(first.parked[rs], last.parked[rs])
			sum += v
			if v > 0 {
				d.Parked = append(d.Parked, legend{Class: "r-" + rs, Label: rs, Total: num(v)})
			}
		}
		d.ParkedSum = num(sum)
		d.Pending, d.AckPending, d.InFlight = num(last.pending), num(last.ackPending), num(last.inFlight)
	}
	d.SendsChart = stacked("Send attempts per "+d.Per+" by outcome", every, win, outcomes)
	var ps []series
	for _, rs := range reasons {
		ps = append(ps, series{name: rs, class: "r-" + rs, value: func(a, b sample) float64 { return delta(a.parked[rs], b.parked[rs]) }})
	}
	d.ParkedChart = stacked("Jobs parked per "+d.Per+" by reason", every, win, ps)
	d.E131kChart = stacked("131000 errors per "+d.Per, every, win, []series{
		{name: "131000", class: "s-failed", value: func(a, b sample) float64 { return delta(a.e131k, b.e131k) }},
	})
	d.PendingChart = gauge("Jobs pending on the consumer", "g-pending", every, win, func(s sample) float64 { return s.pending })

	// The store's size is shared by all workers: it comes from Redis, not
	// from this process's counters.
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
