// Package fleet is the workers' shared account of what they did: each
// worker adds what its counters grew by to a per-minute bucket in Redis, and
// says what it holds now, so that the console and the admin API show the
// whole fleet rather than the process that serves the page.
//
// The counters are the ones /metrics serves (read from the worker's
// registry): a Prometheus scrape of every worker gives the same sums, and
// this is for where there is no Prometheus to ask.
package fleet

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Counts is what workers did, summed: over a minute, or over the minutes
// of a view.
type Counts struct {
	// Sent is the sends Meta accepted (waq_sends_total{outcome="sent"}).
	Sent int64 `json:"sent"`
	// Failed is the sends Meta answered with an error that is not a rate
	// limit (waq_sends_total{outcome="failed"}): retried, parked or paused
	// on.
	Failed int64 `json:"failed"`
	// Retried is the jobs scheduled for another send after a failure
	// (waq_retries_total).
	Retried int64 `json:"retried"`
	// E131000 is the sends answered 131000 (among Failed).
	E131000 int64 `json:"errors_131000"`
	// RateLimited is the sends Meta answered with a rate limit (130429,
	// 131056, 4, 80007: waq_sends_total{outcome="throttled"}). They are
	// not send attempts in Sent+Failed; each also holds its job back.
	RateLimited int64 `json:"rate_limited"`
	// Throttled is the jobs held back by scope (waq_throttled_total): the
	// gate's pacing, pauses and holds, and the rate-limit answers.
	Throttled map[string]int64 `json:"throttled"`
	// Parked is the jobs parked by reason (waq_parked_total).
	Parked map[string]int64 `json:"parked"`
}

// Attempts is the send attempts: sends accepted or answered with an error
// that is not a rate limit.
func (c Counts) Attempts() int64 { return c.Sent + c.Failed }

// ThrottledTotal is the jobs held back, every scope.
func (c Counts) ThrottledTotal() int64 { return sum(c.Throttled) }

// ParkedTotal is the jobs parked, every reason.
func (c Counts) ParkedTotal() int64 { return sum(c.Parked) }

func sum(m map[string]int64) int64 {
	n := int64(0)
	for _, v := range m {
		n += v
	}
	return n
}

// Plus returns c with d added; c is left as it was.
func (c Counts) Plus(d Counts) Counts {
	c.Sent += d.Sent
	c.Failed += d.Failed
	c.Retried += d.Retried
	c.E131000 += d.E131000
	c.RateLimited += d.RateLimited
	c.Throttled = plus(c.Throttled, d.Throttled)
	c.Parked = plus(c.Parked, d.Parked)
	return c
}

// plus is a new map of a's and b's counts added.
func plus(a, b map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(a)+len(b))
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}

// gather reads the counters of a worker's registry, and its sends in
// flight (waq_sends_in_flight). A registry that fails to gather part of its
// metrics still returns the rest.
func gather(g prometheus.Gatherer) (c Counts, inFlight int64) {
	c = Counts{Throttled: map[string]int64{}, Parked: map[string]int64{}}
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := int64(m.GetCounter().GetValue())
			switch mf.GetName() {
			case "waq_sends_total":
				switch label(m, "outcome") {
				case "sent":
					c.Sent += v
				case "failed":
					c.Failed += v
				case "throttled":
					c.RateLimited += v
				}
			case "waq_retries_total":
				c.Retried += v
			case "waq_api_errors_total":
				if label(m, "code") == "131000" {
					c.E131000 += v
				}
			case "waq_throttled_total":
				c.Throttled[label(m, "scope")] += v
			case "waq_parked_total":
				c.Parked[label(m, "reason")] += v
			case "waq_sends_in_flight":
				inFlight = int64(m.GetGauge().GetValue())
			}
		}
	}
	return c, inFlight
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
