package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/throttle"
	"github.com/waqhq/waq/worker"
)

// lowQuality starts a worker with WAQ_LOW_QUALITY_MARKETING=policy whose
// marketing template spring_sale is RED (red) or whose number is FLAGGED
// (!red), both learned from the simulator's webhooks, beside a utility
// template receipt.
func lowQuality(t *testing.T, policy string, red bool) *holdEnv {
	t.Helper()
	h := setupHolds(t, []fakegraph.Template{
		{Name: "spring_sale", Language: "en_US", Category: "MARKETING", WABAID: holdWABA},
		{Name: "receipt", Language: "en_US", Category: "UTILITY", WABAID: holdWABA},
	}, func(c *worker.Config) { c.LowQualityMarketing = policy })
	// The category comes with the template's status webhook.
	for _, name := range []string{"spring_sale", "receipt"} {
		if err := h.fake.UpdateTemplate(name, "en_US", fakegraph.TemplateUpdate{Status: "APPROVED"}); err != nil {
			t.Fatal(err)
		}
	}
	// The worker learns the number's display number with its level.
	h.publish(t, tmplJob("first", "15550009999", "receipt"))
	h.waitSent(t, 10*time.Second, "first")
	if red {
		if err := h.fake.UpdateTemplate("spring_sale", "en_US", fakegraph.TemplateUpdate{Quality: "RED"}); err != nil {
			t.Fatal(err)
		}
	} else if err := h.fake.UpdateNumber(pn, fakegraph.NumberUpdate{Event: "FLAGGED", CurrentLimit: "TIER_1K"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		rt := getReadyTemplates(t, h.r.url)
		if red {
			for _, tp := range rt.Templates {
				if tp.Name == "spring_sale" && tp.Quality == "RED" && tp.Category == "MARKETING" {
					return nil
				}
			}
			return fmt.Errorf("templates = %+v", rt.Templates)
		}
		if len(rt.NumberQuality) == 1 && rt.NumberQuality[0].PhoneNumberID == pn && rt.NumberQuality[0].Event == "FLAGGED" {
			return nil
		}
		return fmt.Errorf("number_quality = %+v", rt.NumberQuality)
	})
	return h
}

// sentTimes are the jobs' sent times, earliest first.
func (h *holdEnv) sentTimes(t *testing.T, ids []string) []time.Time {
	t.Helper()
	states, err := h.ledger.LoadMany(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	for _, s := range states {
		at = append(at, s.SentAt)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	return at
}

// heldForQuality is waq_held_total{scope="quality"} (0 when absent).
func heldForQuality(t *testing.T, url string) float64 {
	t.Helper()
	for _, l := range strings.Split(scrape(t, url), "\n") {
		if v, ok := strings.CutPrefix(l, `waq_held_total{scope="quality"} `); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// TestLowQualitySlowPacesMarketing: with WAQ_LOW_QUALITY_MARKETING=slow,
// marketing sends on a RED template, or on a FLAGGED number, go one a
// second (the gate's shared slot), while utility sends go at the number's
// pace; nothing is parked, every job is sent once.
func TestLowQualitySlowPacesMarketing(t *testing.T) {
	for _, red := range []bool{true, false} {
		t.Run(map[bool]string{true: "red template", false: "flagged number"}[red], func(t *testing.T) {
			h := lowQuality(t, throttle.LowQualitySlow, red)
			marketing := h.publishN(t, "sale", "spring_sale", 4)
			utility := h.publishN(t, "receipt", "receipt", 5)
			h.waitSent(t, 30*time.Second, append(slices.Clone(marketing), utility...)...)
			m, u := h.sentTimes(t, marketing), h.sentTimes(t, utility)
			// One a second: the slot is a Redis key that lives 1 s; a
			// send's record lands a few ms after the send, so each gap
			// is at least 1 s less that jitter.
			for i := 1; i < len(m); i++ {
				if gap := m[i].Sub(m[i-1]); gap < 900*time.Millisecond {
					t.Errorf("marketing sends %d and %d %v apart, want about 1s or more (all: %v)", i-1, i, gap, m)
				}
			}
			// Utility is not slowed: all of it went before the third
			// marketing send (at 80 mps, in some tens of ms).
			if last := u[len(u)-1]; !last.Before(m[2]) {
				t.Errorf("utility sends slowed: last at %v, marketing at %v", last, m)
			}
			if n := h.sendsOf(t, append(marketing, utility...)); n != int64(len(marketing)+len(utility)) {
				t.Errorf("%d sends of %d jobs", n, len(marketing)+len(utility))
			}
			if heldForQuality(t, h.r.url) < 1 {
				t.Error("no marketing job was slowed (waq_held_total{scope=\"quality\"})")
			}
			h.streamEmpty(t, 10*time.Second)
			h.noneParked(t)
		})
	}
}

// TestLowQualitySendLetsMarketingThrough: with
// WAQ_LOW_QUALITY_MARKETING=send, marketing sends on a RED template or a
// FLAGGED number go as if all were well: none held, none slowed.
func TestLowQualitySendLetsMarketingThrough(t *testing.T) {
	for _, red := range []bool{true, false} {
		t.Run(map[bool]string{true: "red template", false: "flagged number"}[red], func(t *testing.T) {
			h := lowQuality(t, throttle.LowQualitySend, red)
			marketing := h.publishN(t, "sale", "spring_sale", 5)
			utility := h.publishN(t, "receipt", "receipt", 5)
			h.waitSent(t, 20*time.Second, append(slices.Clone(marketing), utility...)...)
			if n := heldForQuality(t, h.r.url); n != 0 {
				t.Errorf("waq_held_total{scope=\"quality\"} = %v, want 0", n)
			}
			if n := h.sendsOf(t, append(marketing, utility...)); n != 10 {
				t.Errorf("%d sends of 10 jobs", n)
			}
			h.streamEmpty(t, 10*time.Second)
			h.noneParked(t)
		})
	}
}
