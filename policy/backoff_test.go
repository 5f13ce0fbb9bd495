package policy

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var backoffs = []Backoff{
	defaultBackoff,
	{Initial: time.Minute, Multiplier: 2, Max: 15 * time.Minute, Jitter: 0.2},
	{Initial: time.Second, Multiplier: 2, Max: 10 * time.Second, Jitter: 0},
	{Initial: time.Second, Multiplier: 1.5, Max: time.Hour, Jitter: 1},
	{Initial: 5 * time.Second, Multiplier: 1, Max: 5 * time.Second, Jitter: 0.5},
	{Initial: 100 * time.Millisecond, Multiplier: 100, Max: 24 * time.Hour, Jitter: 0.9},
}

// nominal is Initial*Multiplier^(n-1) capped at Max, the centre of the
// spread.
func nominal(b Backoff, n int) float64 {
	return math.Min(float64(b.Initial)*math.Pow(b.Multiplier, float64(n-1)), float64(b.Max))
}

func TestBackoffMonotoneUpToTheCap(t *testing.T) {
	t.Parallel()
	for _, b := range backoffs {
		for _, r := range []float64{0, 0.25, 0.5, 0.75, math.Nextafter(1, 0)} {
			prev := time.Duration(0)
			for n := 1; n <= 80; n++ {
				d := b.Delay(n, func() float64 { return r })
				if d < prev {
					t.Fatalf("%+v r=%g: Delay(%d) = %v < Delay(%d) = %v", b, r, n, d, n-1, prev)
				}
				if d > b.Max {
					t.Fatalf("%+v r=%g: Delay(%d) = %v past Max", b, r, n, d)
				}
				prev = d
			}
			// Far past the cap (where Multiplier^n overflows) it stays at
			// the cap's spread.
			if d := b.Delay(1<<30, func() float64 { return r }); d > b.Max || d < b.Initial {
				t.Errorf("%+v: Delay(2^30) = %v", b, d)
			}
		}
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, b := range backoffs {
		for n := 1; n <= 30; n++ {
			mid := nominal(b, n)
			lo := time.Duration(math.Max(mid*(1-b.Jitter), float64(b.Initial)))
			hi := time.Duration(math.Min(mid*(1+b.Jitter), float64(b.Max)))
			var seenLow, seenHigh bool
			for range 2000 {
				d := b.Delay(n, rng.Float64)
				if d < lo || d > hi {
					t.Fatalf("%+v: Delay(%d) = %v outside [%v, %v]", b, n, d, lo, hi)
				}
				// The spread is used, not collapsed onto one end.
				seenLow = seenLow || float64(d) < float64(lo)+0.25*float64(hi-lo)
				seenHigh = seenHigh || float64(d) > float64(lo)+0.75*float64(hi-lo)
			}
			if hi-lo > time.Millisecond && (!seenLow || !seenHigh) {
				t.Errorf("%+v: Delay(%d) does not spread over [%v, %v]", b, n, lo, hi)
			}
		}
	}
}

// Meta's 131000 guidance: at least 30 s before the first retry, whatever
// the jitter draws.
func TestBackoffFirstRetryOf131000(t *testing.T) {
	t.Parallel()
	b := *Default().Lookup(code(131000)).Backoff
	rng := rand.New(rand.NewPCG(7, 8))
	var sum time.Duration
	const draws = 100000
	for range draws {
		d := b.Delay(1, rng.Float64)
		if d < 30*time.Second {
			t.Fatalf("first 131000 delay %v < 30s", d)
		}
		sum += d
	}
	// And the draws do spread (jitter is not switched off).
	if mean := sum / draws; mean < 32*time.Second || mean > 34*time.Second {
		t.Errorf("mean first delay %v, want about 33s", mean)
	}
	if got := b.Delay(1, nil); got < 30*time.Second {
		t.Errorf("Delay(1, nil) = %v", got)
	}
}

func TestBackoffNeverATightLoop(t *testing.T) {
	t.Parallel()
	broken := []func() float64{
		func() float64 { return 0 },
		func() float64 { return 1 },
		func() float64 { return -1 },
		func() float64 { return 7 },
		func() float64 { return math.NaN() },
		func() float64 { return math.Inf(-1) },
	}
	odd := []Backoff{
		{},
		{Initial: -time.Second, Multiplier: -2, Max: -time.Second, Jitter: -1},
		{Initial: time.Nanosecond, Multiplier: math.NaN(), Max: time.Nanosecond, Jitter: math.NaN()},
		{Initial: time.Second, Multiplier: math.Inf(1), Max: time.Minute, Jitter: 5},
		{Initial: time.Hour, Multiplier: 2, Max: time.Second, Jitter: 0.2}, // Max below Initial
	}
	for _, b := range append(odd, backoffs...) {
		for _, rnd := range broken {
			for _, n := range []int{-1, 0, 1, 2, 10, 1000, math.MaxInt} {
				d := b.Delay(n, rnd)
				if d < MinDelay {
					t.Fatalf("%+v: Delay(%d) = %v, below MinDelay", b, n, d)
				}
				if ceiling := max(b.Max, b.Initial, MinDelay); d > ceiling {
					t.Fatalf("%+v: Delay(%d) = %v, past %v", b, n, d, ceiling)
				}
			}
		}
	}
}

func TestBackoffWithoutJitterIsExact(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: time.Second, Multiplier: 2, Max: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := b.Delay(i+1, func() float64 { return 0.9 }); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
}
