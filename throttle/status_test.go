package throttle_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/throttle"
)

// TestRateLoweredSinceUntil: a number whose rate a 130429 lowered is listed
// throttled with the time of that first 130429 and when its rate is back at
// mps; a second 130429 keeps the start and moves the end; one after the
// rate came back starts anew.
func TestRateLoweredSinceUntil(t *testing.T) {
	f := setup(t)
	// Pacing runs on Redis's clock: this gate reads the real one too.
	g := throttle.New(f.redis.Client(t), f.reg, f.gc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), throttle.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	rdb := f.redis.Client(t)
	n := f.num(t, "1002") // mps 10
	lowered := func(cond func(s throttle.State) error) throttle.State {
		t.Helper()
		var got throttle.State
		testenv.Eventually(t, 10*time.Second, func() error {
			for _, s := range g.Status().Throttled {
				if s.Key == "rate" && s.PhoneNumberID == "1002" {
					got = s
					return cond(s)
				}
			}
			return fmt.Errorf("1002 not listed throttled: %+v", g.Status().Throttled)
		})
		return got
	}
	before := time.Now().Add(-time.Second) // Redis's clock and ours, a little apart
	g.Throttled(ctx, n, "15551234567", policy.ScopeNumber, nil, time.Minute)
	first := lowered(func(s throttle.State) error {
		if s.Since.IsZero() || s.Until.IsZero() {
			return fmt.Errorf("no since or until: %+v", s)
		}
		return nil
	})
	// 10 × 0.8 = 8 climbs back to 10 at 5% of 10 a second: 4 s.
	if first.Since.Before(before) || first.Since.After(time.Now().Add(time.Second)) || first.Until.Sub(first.Since) != 4*time.Second {
		t.Errorf("first 130429: since %s, until %s", first.Since, first.Until)
	}
	// A second 130429 a second later (the last cut moved back rather than
	// waiting): lower again, the episode's start kept, its end later.
	key := "waq:rl:{1002}"
	cut, err := rdb.HGet(ctx, key, "cut").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "cut", cut-1500).Err(); err != nil {
		t.Fatal(err)
	}
	g.Throttled(ctx, n, "15551234567", policy.ScopeNumber, nil, time.Minute)
	second := lowered(func(s throttle.State) error {
		if !s.Until.After(first.Until) {
			return fmt.Errorf("until %s, not after %s", s.Until, first.Until)
		}
		return nil
	})
	if !second.Since.Equal(first.Since) {
		t.Errorf("second 130429: since %s, was %s", second.Since, first.Since)
	}
	// Long after (the rate is back at mps, the fields still there), a new
	// 130429 starts a new episode.
	old := time.Now().Add(-time.Minute).UnixMilli()
	if err := rdb.HSet(ctx, key, "dec", old, "cut", old, "since", old-1000).Err(); err != nil {
		t.Fatal(err)
	}
	g.Throttled(ctx, n, "15551234567", policy.ScopeNumber, nil, time.Minute)
	lowered(func(s throttle.State) error {
		if s.Since.Before(before) {
			return fmt.Errorf("since %s: the old episode's", s.Since)
		}
		return nil
	})
}
