package console

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The worker keeps no time series, so the console keeps a small ring of
// samples of the worker's own counters, read from its registry (what
// /metrics serves): enough for the overview's hour, gone with the process.

// ringSize is the samples kept: 60 intervals need 61 points.
const ringSize = 61

// sample is the worker's counters and gauges at one moment.
type sample struct {
	at time.Time
	// Counters since the process started.
	sends  map[string]float64 // waq_sends_total by outcome
	parked map[string]float64 // waq_parked_total by reason
	e131k  float64            // waq_api_errors_total{code="131000"}
	// Gauges.
	pending    float64 // waq_consumer_pending
	ackPending float64 // waq_consumer_ack_pending
	paused     float64 // numbers with waq_paused 1
	throttled  float64 // numbers with waq_number_throttled 1
	inFlight   float64 // waq_sends_in_flight
}

// sampler keeps the ring.
type sampler struct {
	g     prometheus.Gatherer
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	ring []sample // oldest first, at most ringSize
}

func newSampler(g prometheus.Gatherer, every time.Duration, now func() time.Time) *sampler {
	return &sampler{g: g, every: every, now: now}
}

// run records a sample now and every interval until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.record()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// record takes a sample into the ring, dropping the oldest past ringSize.
func (s *sampler) record() {
	sm, ok := s.take()
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ring) == ringSize {
		copy(s.ring, s.ring[1:])
		s.ring = s.ring[:ringSize-1]
	}
	s.ring = append(s.ring, sm)
}

// window returns the ring followed by a live sample taken now, oldest
// first: the last interval is the one in progress.
func (s *sampler) window() []sample {
	s.mu.Lock()
	out := append([]sample(nil), s.ring...)
	s.mu.Unlock()
	if live, ok := s.take(); ok {
		out = append(out, live)
	}
	return out
}

// take reads the registry. A registry that fails to gather part of its
// metrics still returns the rest, which is what the console shows.
func (s *sampler) take() (sample, bool) {
	sm := sample{at: s.now(), sends: map[string]float64{}, parked: map[string]float64{}}
	if s.g == nil {
		return sm, false
	}
	mfs, _ := s.g.Gather()
	if len(mfs) == 0 {
		return sm, false
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "waq_sends_total":
				sm.sends[label(m, "outcome")] += m.GetCounter().GetValue()
			case "waq_parked_total":
				sm.parked[label(m, "reason")] += m.GetCounter().GetValue()
			case "waq_api_errors_total":
				if label(m, "code") == "131000" {
					sm.e131k += m.GetCounter().GetValue()
				}
			case "waq_consumer_pending":
				sm.pending = m.GetGauge().GetValue()
			case "waq_consumer_ack_pending":
				sm.ackPending = m.GetGauge().GetValue()
			case "waq_paused":
				if m.GetGauge().GetValue() > 0 {
					sm.paused++
				}
			case "waq_number_throttled":
				if m.GetGauge().GetValue() > 0 {
					sm.throttled++
				}
			case "waq_sends_in_flight":
				sm.inFlight = m.GetGauge().GetValue()
			}
		}
	}
	return sm, true
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// delta is how much a counter grew between two samples; a counter that
// went down (it cannot, within one process) counts as zero.
func delta(a, b float64) float64 {
	if b < a {
		return 0
	}
	return b - a
}
