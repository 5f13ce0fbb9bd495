package throttle

import (
	"sync"
	"time"
)

// redisClock places Redis's clock on this process's monotonic clock, from
// the round trips of the lease script (which answers Redis's TIME), so that
// a leased slot's local time errs late by how well the two clocks are
// known rather than by the round trip that leased it.
//
// A round trip sent at s and answered at g (local) during which Redis read
// its clock as r bounds offset = local − Redis to [s − r, g − r]. The
// bounds of every round trip are kept, the tightest of each: hi, the least
// upper bound, and lo, the greatest lower bound. A slot at Redis's time T is
// placed at T + hi (never before it really is) and errs late by at most
// hi − lo: on a loaded box the best of many round trips, well under the
// worst one. Each bound loosens by clockDrift of its age (the two clocks'
// rates may differ by that much), and bounds that no longer agree (lo above
// hi: a clock stepped) are dropped for the round trip's own.
type redisClock struct {
	mu     sync.Mutex
	t0     time.Time     // local origin, with its monotonic reading
	ok     bool          // lo and hi are set
	lo, hi time.Duration // offset bounds (local since t0 − Redis since the epoch)
	loAt   time.Duration // local time (since t0) of the round trip that set lo
	hiAt   time.Duration // and hi
}

// clockDrift bounds how fast Redis's clock may run apart from this process's
// monotonic clock: 500 ppm, the most NTP slews a clock by.
const clockDrift = 500e-6

func newRedisClock() *redisClock { return &redisClock{t0: time.Now()} }

// hiNow is hi loosened to local time at (since t0).
func (c *redisClock) hiNow(at time.Duration) time.Duration {
	return c.hi + time.Duration(float64(at-c.hiAt)*clockDrift)
}

// loNow is lo loosened to local time at (since t0).
func (c *redisClock) loNow(at time.Duration) time.Duration {
	return c.lo - time.Duration(float64(at-c.loAt)*clockDrift)
}

// place notes a round trip sent at sent and answered at got during which
// Redis's clock read redis (since the Unix epoch), and returns where
// Redis's time slot (since the epoch) is on the local clock, and by how
// much that errs late at most.
func (c *redisClock) place(sent, got time.Time, redis, slot time.Duration) (at time.Time, err time.Duration) {
	s, g := sent.Sub(c.t0), got.Sub(c.t0)
	lo, hi := s-redis, g-redis
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok {
		c.ok, c.lo, c.loAt, c.hi, c.hiAt = true, lo, g, hi, g
	} else {
		if hi < c.hiNow(g) {
			c.hi, c.hiAt = hi, g
		}
		if lo > c.loNow(g) {
			c.lo, c.loAt = lo, g
		}
		if c.loNow(g) > c.hiNow(g) {
			// The bounds contradict each other: one clock stepped. Only
			// this round trip is known to hold.
			c.lo, c.loAt, c.hi, c.hiAt = lo, g, hi, g
		}
	}
	h, l := c.hiNow(g), c.loNow(g)
	return c.t0.Add(slot + h), h - l
}
