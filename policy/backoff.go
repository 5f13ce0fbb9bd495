package policy

import (
	"math"
	"math/rand/v2"
	"time"
)

// MinDelay is the shortest delay Backoff.Delay ever returns, whatever the
// backoff says: a job is never sent again in a tight loop, even under a
// zero or hand-built Backoff.
const MinDelay = 10 * time.Millisecond

// Backoff is an exponential backoff with jitter. Its zero value waits
// MinDelay every time.
type Backoff struct {
	// Initial is the nominal wait after the first failed send, and a floor:
	// no delay is shorter, jitter included.
	Initial time.Duration
	// Multiplier grows the nominal wait after each further failure (>= 1).
	Multiplier float64
	// Max caps every delay, jitter included.
	Max time.Duration
	// Jitter is the fraction (0 to 1) of random spread around the nominal
	// wait, so that jobs that failed together do not come back together.
	Jitter float64
}

// Delay is the wait after the n-th failed send (n >= 1; smaller n counts as
// 1): the nominal Initial*Multiplier^(n-1), capped at Max, spread by
// ±Jitter with rnd (a func returning [0,1); nil means math/rand/v2). The
// result lies in [Initial, Max], never below MinDelay, and for a fixed rnd
// value it never decreases as n grows.
//
// The spread is clipped to [Initial, Max] rather than clamped: a draw is
// uniform over the part of nominal·(1±Jitter) that lies inside, so no
// delays pile up on exactly Initial or exactly Max. Clipping at Initial is
// what makes "wait at least Initial" hold with jitter on: Meta's 131000
// guidance is to wait at least 30 s before the first retry, and a
// symmetric ±20% spread around 30 s would send a fifth of the first
// retries at 24 s. At n = 1 the spread is therefore upward only; from n = 2
// on (with Multiplier >= 1/(1-Jitter)) it is symmetric.
func (b Backoff) Delay(n int, rnd func() float64) time.Duration {
	initial := max(b.Initial, MinDelay)
	ceiling := max(b.Max, initial)
	mult := b.Multiplier
	if !(mult >= 1) || math.IsInf(mult, 0) { // also catches NaN
		mult = 1
	}
	jitter := b.Jitter
	if !(jitter >= 0) {
		jitter = 0
	}
	jitter = min(jitter, 1)
	n = max(n, 1)

	// Work in float64 nanoseconds: Initial*Multiplier^(n-1) overflows an
	// int64 long before n gets large, and float64 saturates to +Inf, which
	// the cap then handles.
	nominal := float64(initial) * math.Pow(mult, float64(n-1))
	nominal = min(nominal, float64(ceiling))
	lo := max(nominal*(1-jitter), float64(initial))
	hi := min(nominal*(1+jitter), float64(ceiling))
	hi = max(hi, lo)

	r := 0.0
	if jitter > 0 && hi > lo {
		if rnd == nil {
			rnd = rand.Float64
		}
		r = rnd()
		if !(r >= 0) { // NaN or negative from a broken source
			r = 0
		}
		r = min(r, math.Nextafter(1, 0))
	}
	d := time.Duration(lo + (hi-lo)*r)
	return min(max(d, initial), ceiling)
}

// bounds is the smallest and largest Delay(n) can return.
func (b Backoff) bounds(n int) (lo, hi time.Duration) {
	return b.Delay(n, func() float64 { return 0 }), b.Delay(n, func() float64 { return math.Nextafter(1, 0) })
}
