package throttle

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestRedisClockPlacesSlotsLateNeverEarly: round trips of 1 to 20 ms, Redis
// reading its clock anywhere inside each, its clock drifting at 100 ppm
// and stepping back and forward by 50 ms once each: every slot is placed
// no earlier than it really is and no later than the error said, and
// once many round trips are known the error is near the best of them (the
// round trip's own was up to 20 ms: a slot's slack was lateLimit less it).
func TestRedisClockPlacesSlotsLateNeverEarly(t *testing.T) {
	c := newRedisClock()
	rng := rand.New(rand.NewPCG(1, 2))
	epoch := 1_800_000_000 * time.Second
	offset := -epoch + 3*time.Millisecond // local since t0 − Redis
	local := time.Duration(0)
	var errs []time.Duration
	for i := range 600 {
		switch i {
		case 200:
			offset += 50 * time.Millisecond // Redis's clock stepped back
		case 400:
			offset -= 50 * time.Millisecond // and forward
		}
		local += time.Duration(rng.IntN(5_000)) * time.Microsecond
		offset += time.Duration(float64(5*time.Millisecond) * 100e-6)
		rtt := time.Millisecond + time.Duration(rng.IntN(19_000))*time.Microsecond
		exec := local + time.Duration(rng.Int64N(int64(rtt)))
		redis := exec - offset
		slot := redis + 40*time.Millisecond
		at, late := c.place(c.t0.Add(local), c.t0.Add(local+rtt), redis, slot)
		truly := c.t0.Add(slot + offset)
		if at.Before(truly) {
			t.Fatalf("round trip %d: slot placed %s early", i, truly.Sub(at))
		}
		if at.Sub(truly) > late {
			t.Fatalf("round trip %d: slot placed %s late, said at most %s", i, at.Sub(truly), late)
		}
		if late > rtt {
			t.Fatalf("round trip %d: error %s beyond the round trip %s", i, late, rtt)
		}
		local += rtt
		if i%200 > 100 {
			errs = append(errs, late)
		}
	}
	worst := time.Duration(0)
	for _, e := range errs {
		worst = max(worst, e)
	}
	if worst > 2*time.Millisecond {
		t.Errorf("error up to %s after 100 round trips; want near the best round trip (1 ms)", worst)
	}
	// A first round trip knows only itself.
	c = newRedisClock()
	at, late := c.place(c.t0, c.t0.Add(7*time.Millisecond), epoch, epoch+time.Second)
	if late != 7*time.Millisecond || !at.Equal(c.t0.Add(7*time.Millisecond+time.Second)) {
		t.Errorf("first round trip: at %s, error %s; want t0+1.007s, 7ms", at.Sub(c.t0), late)
	}
}
