package policy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/waqhq/waq/graph"
)

func code(c int) graph.Failure { return graph.Failure{HTTPStatus: 400, HasCode: true, Code: c} }

// appendixA is SPEC Appendix A, code by code: the action on the first
// failure, the reason the job is parked with (at once for park, once the
// attempts are spent otherwise), and the scope.
var appendixA = []struct {
	name   string
	f      graph.Failure
	action Action
	reason string
	scope  Scope
}{
	// retry, then retries_exhausted
	{"131000", code(131000), Retry, ReasonRetriesExhausted, ScopeJob},
	{"1", code(1), Retry, ReasonRetriesExhausted, ScopeJob},
	{"2", code(2), Retry, ReasonRetriesExhausted, ScopeJob},
	{"131016", code(131016), Retry, ReasonRetriesExhausted, ScopeJob},
	{"133004", code(133004), Retry, ReasonRetriesExhausted, ScopeJob},
	{"http 500", graph.Failure{HTTPStatus: 500}, Retry, ReasonRetriesExhausted, ScopeJob},
	{"http 502", graph.Failure{HTTPStatus: 502}, Retry, ReasonRetriesExhausted, ScopeJob},
	{"http 503", graph.Failure{HTTPStatus: 503}, Retry, ReasonRetriesExhausted, ScopeJob},
	{"http 599", graph.Failure{HTTPStatus: 599}, Retry, ReasonRetriesExhausted, ScopeJob},
	{"timeout", graph.Failure{Transport: true}, Retry, ReasonRetriesExhausted, ScopeJob},
	{"html 502 page", graph.Failure{Transport: true, HTTPStatus: 502}, Retry, ReasonRetriesExhausted, ScopeJob},
	{"html 200 page", graph.Failure{Transport: true, HTTPStatus: 200}, Retry, ReasonRetriesExhausted, ScopeJob},
	// maintenance: retry after about a minute
	{"131057", code(131057), Retry, ReasonRetriesExhausted, ScopeJob},
	{"2494100", code(2494100), Retry, ReasonRetriesExhausted, ScopeJob},
	// throttle
	{"130429", code(130429), Throttle, ReasonRetriesExhausted, ScopeNumber},
	{"4", code(4), Throttle, ReasonRetriesExhausted, ScopeApp},
	{"80007", code(80007), Throttle, ReasonRetriesExhausted, ScopeWABA},
	{"131056", code(131056), Throttle, ReasonRetriesExhausted, ScopeRecipient},
	// park
	{"131047", code(131047), Park, ReasonWindow, ScopeJob},
	{"132000", code(132000), Park, ReasonTemplate, ScopeJob},
	{"132001", code(132001), Park, ReasonTemplate, ScopeJob},
	{"132005", code(132005), Park, ReasonTemplate, ScopeJob},
	{"132007", code(132007), Park, ReasonTemplate, ScopeJob},
	{"132012", code(132012), Park, ReasonTemplate, ScopeJob},
	{"132015", code(132015), Pause, ReasonTemplate, ScopeTemplate},
	{"132016", code(132016), Pause, ReasonTemplate, ScopeTemplate},
	{"132018", code(132018), Park, ReasonTemplate, ScopeJob},
	{"132068", code(132068), Park, ReasonTemplate, ScopeJob},
	{"132069", code(132069), Park, ReasonTemplate, ScopeJob},
	{"131026", code(131026), Park, ReasonUndeliverable, ScopeJob},
	{"130472", code(130472), Park, ReasonUndeliverable, ScopeJob},
	{"130497", code(130497), Park, ReasonUndeliverable, ScopeJob},
	{"131049", code(131049), Park, ReasonUndeliverable, ScopeJob},
	{"131050", code(131050), Park, ReasonUndeliverable, ScopeJob},
	{"100", code(100), Park, ReasonInvalid, ScopeJob},
	{"131008", code(131008), Park, ReasonInvalid, ScopeJob},
	{"131009", code(131009), Park, ReasonInvalid, ScopeJob},
	{"131021", code(131021), Park, ReasonInvalid, ScopeJob},
	{"131030 recipient not in allowed list", code(131030), Park, ReasonInvalid, ScopeJob},
	{"131051", code(131051), Park, ReasonInvalid, ScopeJob},
	{"131053", code(131053), Park, ReasonInvalid, ScopeJob},
	{"131055", code(131055), Park, ReasonInvalid, ScopeJob},
	{"131062 BSUID not supported", code(131062), Park, ReasonInvalid, ScopeJob},
	{"135000", code(135000), Park, ReasonInvalid, ScopeJob},
	// pause: credentials (every number on the token)
	{"0 AuthException", code(0), Pause, ReasonAccount, ScopeToken},
	{"3", code(3), Pause, ReasonAccount, ScopeToken},
	{"10", code(10), Pause, ReasonAccount, ScopeToken},
	{"190", code(190), Pause, ReasonAccount, ScopeToken},
	{"200", code(200), Pause, ReasonAccount, ScopeToken},
	{"250", code(250), Pause, ReasonAccount, ScopeToken},
	{"299", code(299), Pause, ReasonAccount, ScopeToken},
	{"131005", code(131005), Pause, ReasonAccount, ScopeToken},
	// pause: the phone number
	{"33", code(33), Pause, ReasonAccount, ScopeNumber},
	{"131037", code(131037), Pause, ReasonAccount, ScopeNumber},
	{"131045", code(131045), Pause, ReasonAccount, ScopeNumber},
	{"131048", code(131048), Pause, ReasonAccount, ScopeNumber},
	{"133010", code(133010), Pause, ReasonAccount, ScopeNumber},
	// pause: the WABA
	{"368", code(368), Pause, ReasonAccount, ScopeWABA},
	{"131031", code(131031), Pause, ReasonAccount, ScopeWABA},
	{"131042", code(131042), Pause, ReasonAccount, ScopeWABA},
	{"131064", code(131064), Pause, ReasonAccount, ScopeWABA},
	// any other code: retry with the defaults, then unknown
	{"199 (just below 200-299)", code(199), Retry, ReasonUnknown, ScopeJob},
	{"300 (just above 200-299)", code(300), Retry, ReasonUnknown, ScopeJob},
	{"131999", code(131999), Retry, ReasonUnknown, ScopeJob},
	{"code 503 is a code, not a status", code(503), Retry, ReasonUnknown, ScopeJob},
	{"http 429 without a code", graph.Failure{HTTPStatus: 429}, Retry, ReasonUnknown, ScopeJob},
	{"http 400 without a code", graph.Failure{HTTPStatus: 400}, Retry, ReasonUnknown, ScopeJob},
	{"nothing at all", graph.Failure{}, Retry, ReasonUnknown, ScopeJob},
}

func TestDefaultTable(t *testing.T) {
	t.Parallel()
	p := Default()
	for _, tc := range appendixA {
		t.Run(tc.name, func(t *testing.T) {
			r := p.Lookup(tc.f)
			if r.Action != tc.action || r.Reason != tc.reason || r.Scope != tc.scope {
				t.Fatalf("Lookup = %s/%s/%q, want %s/%s/%q", r.Action, r.Reason, r.Scope, tc.action, tc.reason, tc.scope)
			}
			if r.Source != SourceDefault {
				t.Errorf("Source = %q, want %q", r.Source, SourceDefault)
			}

			first := p.Decide(tc.f, 1)
			if first.Action != tc.action || first.Rule != r || first.Exhausted {
				t.Fatalf("Decide(1) = %+v, want %s by the same rule", first, tc.action)
			}
			checkDecision(t, first)
			if tc.action == Park {
				if first.Reason != tc.reason {
					t.Errorf("Decide(1).Reason = %q, want %q", first.Reason, tc.reason)
				}
				return
			}
			if first.Scope != tc.scope {
				t.Errorf("Decide(1).Scope = %q, want %q", first.Scope, tc.scope)
			}
			last := p.Decide(tc.f, p.MaxAttemptsOf(r))
			if last.Action != Park || !last.Exhausted || last.Reason != tc.reason {
				t.Errorf("Decide(%d) = %+v, want park %s, exhausted", p.MaxAttemptsOf(r), last, tc.reason)
			}
		})
	}
}

// checkDecision asserts what holds of every decision.
func checkDecision(t *testing.T, d Decision) {
	t.Helper()
	if d.Rule == nil {
		t.Fatalf("%+v: no rule", d)
	}
	if (d.Action == Park) != (d.Reason != "") {
		t.Errorf("%+v: Reason must be set exactly when parking", d)
	}
	if d.Reason != "" && !ValidReason(d.Reason) {
		t.Errorf("%+v: reason %q is not a stable reason", d, d.Reason)
	}
	switch d.Action {
	case Park:
		if d.Delay != 0 || d.Scope != ScopeJob {
			t.Errorf("%+v: park has no delay and no scope", d)
		}
	case Retry:
		if d.Delay < MinDelay || d.Scope != ScopeJob {
			t.Errorf("%+v: retry needs a delay and no scope", d)
		}
	case Throttle, Pause:
		if d.Delay < MinDelay || d.Scope == ScopeJob {
			t.Errorf("%+v: %s needs a fallback delay and a scope", d, d.Action)
		}
	default:
		t.Errorf("%+v: unknown action", d)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	p := Default()
	n, b := p.Defaults()
	if n != 8 || b != (Backoff{Initial: 30 * time.Second, Multiplier: 2, Max: 15 * time.Minute, Jitter: 0.2}) {
		t.Errorf("Defaults() = %d, %+v; want SPEC's 8, {30s 2 15m 0.2}", n, b)
	}
	if p.MaxSends() != 50 {
		t.Errorf("MaxSends() = %d, want 50", p.MaxSends())
	}
	if p.Name() != "" || p.FileRules() != 0 {
		t.Errorf("Name, FileRules = %q, %d; want none", p.Name(), p.FileRules())
	}
	// Default returns a fresh table: changing one does not change another.
	p.Lookup(code(131047)).Reason = "changed"
	if got := Default().Lookup(code(131047)).Reason; got != ReasonWindow {
		t.Errorf("a second Default() saw the change: %q", got)
	}
}

func TestNilPolicyIsTheDefaultTable(t *testing.T) {
	t.Parallel()
	var p *Policy
	if d := p.Decide(code(131047), 1); d.Action != Park || d.Reason != ReasonWindow {
		t.Errorf("nil policy, 131047: %+v", d)
	}
	if n, _ := p.Defaults(); n != DefaultMaxAttempts || p.MaxSends() != DefaultMaxSends || p.Name() != "" || len(p.Rules()) != len(Default().Rules()) {
		t.Errorf("nil policy: defaults %d, max sends %d", n, p.MaxSends())
	}
}

func TestRetryExhaustion(t *testing.T) {
	t.Parallel()
	p := Default()
	for attempt := 1; attempt <= 7; attempt++ {
		if d := p.Decide(code(131000), attempt); d.Action != Retry {
			t.Fatalf("attempt %d: %v, want retry", attempt, d)
		}
	}
	// max_attempts counts every send, the first included: the 8th failed
	// send is the last.
	d := p.Decide(code(131000), 8)
	if d.Action != Park || d.Reason != ReasonRetriesExhausted || !d.Exhausted || d.MaxAttempts != 8 {
		t.Fatalf("attempt 8: %+v, want park retries_exhausted", d)
	}
	if d := p.Decide(code(424242), 8); d.Reason != ReasonUnknown || !d.Exhausted {
		t.Errorf("unnamed code at 8: %+v, want park unknown", d)
	}
	if d := p.Decide(graph.Failure{Transport: true}, 100); d.Reason != ReasonRetriesExhausted {
		t.Errorf("transport at 100: %+v", d)
	}
	// Nonsense counts are read as the first send.
	for _, n := range []int{0, -5} {
		if d := p.Decide(code(131000), n); d.Action != Retry || d.Delay < 30*time.Second {
			t.Errorf("attempt %d: %+v, want a first retry", n, d)
		}
	}
}

func TestThrottleAndPauseBounds(t *testing.T) {
	t.Parallel()
	p := Default()
	// Throttle does not use up max_attempts: still throttling well past 8.
	for _, attempt := range []int{1, 8, 9, 30, 49} {
		if d := p.Decide(code(130429), attempt); d.Action != Throttle || d.Scope != ScopeNumber {
			t.Errorf("130429 at %d: %v, want throttle number", attempt, d)
		}
		if d := p.Decide(code(190), attempt); d.Action != Pause || d.Scope != ScopeToken {
			t.Errorf("190 at %d: %v, want pause token", attempt, d)
		}
	}
	if d := p.Decide(code(130429), 50); d.Action != Park || d.Reason != ReasonRetriesExhausted || !d.Exhausted || d.MaxAttempts != 50 {
		t.Errorf("130429 at 50: %+v, want park retries_exhausted", d)
	}
	if d := p.Decide(code(131031), 50); d.Action != Park || d.Reason != ReasonAccount || !d.Exhausted {
		t.Errorf("131031 at 50: %+v, want park account", d)
	}
	// Park is park from the first send on.
	if d := p.Decide(code(131047), 1); d.Action != Park || d.Exhausted || d.MaxAttempts != 0 {
		t.Errorf("131047: %+v", d)
	}
}

func TestHeldSendsDoNotCountAgainstRetries(t *testing.T) {
	t.Parallel()
	p := Default()
	// 20 sends, 15 of them throttled: this is the 5th counted failure.
	d := p.DecideAttempts(code(131000), Attempts{Sends: 20, Held: 15})
	if d.Action != Retry {
		t.Fatalf("%+v, want retry", d)
	}
	// Its delay is the 5th step (8 min nominal), not the 20th (the cap).
	if lo, hi := defaultBackoff.bounds(5); d.Delay < lo || d.Delay > hi {
		t.Errorf("delay %v outside the 5th step [%v, %v]", d.Delay, lo, hi)
	}
	if d := p.DecideAttempts(code(131000), Attempts{Sends: 23, Held: 15}); d.Action != Park || d.Reason != ReasonRetriesExhausted {
		t.Errorf("8th counted failure: %+v, want park", d)
	}
	// max_sends bounds every send, retries included.
	if d := p.DecideAttempts(code(131000), Attempts{Sends: 50, Held: 48}); d.Action != Park {
		t.Errorf("50th send: %+v, want park", d)
	}
	// A Held count that cannot be (more than the earlier sends) is clipped.
	if d := p.DecideAttempts(code(131000), Attempts{Sends: 3, Held: 99}); d.Action != Retry {
		t.Errorf("clipped Held: %+v, want retry", d)
	}
}

func TestFirstRetryDelays(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	p := Default().WithRand(rng.Float64)
	for i := range 10000 {
		// Meta: wait at least 30 s before the first retry of 131000.
		if d := p.Decide(code(131000), 1); d.Delay < 30*time.Second || d.Delay > 36*time.Second {
			t.Fatalf("draw %d: 131000 first delay %v outside [30s, 36s]", i, d.Delay)
		}
		// Maintenance: about a minute.
		for _, c := range []int{131057, 2494100} {
			if d := p.Decide(code(c), 1); d.Delay < time.Minute || d.Delay > 72*time.Second {
				t.Fatalf("draw %d: %d first delay %v outside [1m, 1m12s]", i, c, d.Delay)
			}
		}
	}
}

func TestDecisionsAreSane(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	p := Default().WithRand(rng.Float64)
	for _, tc := range appendixA {
		for attempt := 1; attempt <= 60; attempt++ {
			d := p.DecideAttempts(tc.f, Attempts{Sends: attempt, Held: rng.IntN(attempt)})
			checkDecision(t, d)
			if d.Delay > 15*time.Minute {
				t.Errorf("%s at %d: delay %v past the 15m cap", tc.name, attempt, d.Delay)
			}
		}
	}
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	p := Default().WithRand(func() float64 { return 0 })
	for _, tc := range []struct {
		d    Decision
		want string
	}{
		{p.Decide(code(131000), 1), "retry in 30s"},
		{p.Decide(code(131047), 1), "park (window)"},
		{p.Decide(code(131000), 8), "park (retries_exhausted after 8 attempts)"},
		{p.Decide(code(130429), 2), "throttle number (fallback 48s)"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestReasons(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"window", "template", "retries_exhausted", "invalid", "undeliverable", "expired", "account", "unknown"} {
		if !ValidReason(r) {
			t.Errorf("ValidReason(%q) = false", r)
		}
	}
	for _, r := range []string{"", "Window", "retry", "exhausted"} {
		if ValidReason(r) {
			t.Errorf("ValidReason(%q) = true", r)
		}
	}
	if len(Reasons()) != 8 {
		t.Errorf("Reasons() = %v", Reasons())
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		30 * time.Second:           "30s",
		15 * time.Minute:           "15m",
		time.Hour:                  "1h",
		90 * time.Second:           "1m30s",
		1500 * time.Millisecond:    "1.5s",
		time.Hour + 30*time.Minute: "1h30m",
		time.Hour + 30*time.Second: "1h0m30s",
		24 * time.Hour:             "24h",
		0:                          "0s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	p := Default()
	f := code(131000)
	for b.Loop() {
		p.Decide(f, 3)
	}
}
