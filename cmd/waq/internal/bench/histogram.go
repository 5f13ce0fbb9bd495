package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets (a power of two split
// in 64 linear steps: under 1.6% error) with atomic counters, so that the
// simulator's handlers and the outcome listener record without a lock and
// without allocating, whatever the number of jobs.
type histogram struct {
	counts [64 * subBuckets]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
}

const (
	subBits    = 6
	subBuckets = 1 << subBits
)

// bucketOf maps microseconds to a bucket index.
func bucketOf(us int64) int {
	if us < subBuckets {
		return int(max(us, 0))
	}
	exp := bits.Len64(uint64(us)) - subBits // >= 1
	sub := int(us>>uint(exp-1)) - subBuckets
	return exp*subBuckets + sub
}

// bucketValue is the upper bound (microseconds) of a bucket.
func bucketValue(i int) int64 {
	exp, sub := i/subBuckets, i%subBuckets
	if exp == 0 {
		return int64(sub)
	}
	return (int64(sub+subBuckets+1) << uint(exp-1)) - 1
}

func (h *histogram) add(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	i := bucketOf(us)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// summary reads the quantiles; nil when nothing was recorded.
func (h *histogram) summary() *Latency {
	n := h.n.Load()
	if n == 0 {
		return nil
	}
	l := &Latency{Count: n, Max: float64(h.max.Load()) / 1000}
	qs := []struct {
		q float64
		p *float64
	}{{0.5, &l.P50}, {0.99, &l.P99}, {0.999, &l.P999}}
	var seen int64
	qi := 0
	for i := range h.counts {
		seen += h.counts[i].Load()
		for qi < len(qs) && float64(seen) >= math.Ceil(qs[qi].q*float64(n)) {
			v := float64(bucketValue(i)) / 1000
			*qs[qi].p = math.Min(v, l.Max)
			qi++
		}
		if qi == len(qs) {
			break
		}
	}
	return l
}
