package throttle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/throttle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

const numbersFile = `
phone_numbers:
  - phone_number_id: "1001"
    waba_id: "9001"
    mps: 10
    token_env: TOKEN_A
  - phone_number_id: "1002"
    waba_id: "9001"
    mps: 10
    token_env: TOKEN_A
  - phone_number_id: "2001"
    waba_id: "9002"
    mps: 10
    token_env: TOKEN_B
`

type fixture struct {
	gate  *throttle.Gate
	reg   *numbers.Registry
	clock *testenv.Clock
	fake  *fakegraph.Server
	gc    *graph.Client
	redis *testenv.Redis
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{redis: testenv.StartRedis(t), clock: testenv.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))}
	env := map[string]string{"TOKEN_A": "token-a", "TOKEN_B": "token-b"}
	reg, err := numbers.Parse("numbers.yaml", []byte(numbersFile), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	f.reg = reg
	f.fake = fakegraph.New(fakegraph.Config{Tokens: []string{"token-a", "token-b"}, Now: f.clock.Now})
	srv := httptest.NewServer(f.fake)
	t.Cleanup(func() { srv.Close(); f.fake.Close() })
	f.gc, err = graph.New(graph.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	f.gate = f.newGate(t)
	return f
}

func (f *fixture) newGate(t *testing.T) *throttle.Gate {
	return throttle.New(f.redis.Client(t), f.reg, f.gc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), throttle.Config{
		Now: f.clock.Now, ProbeFirst: 10 * time.Second, ProbeMax: time.Minute, PauseParkAfter: time.Hour, PairEvery: time.Second,
	})
}

func (f *fixture) num(t *testing.T, id string) numbers.Number {
	t.Helper()
	n, err := f.reg.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPacingIsShared: two gates (two worker processes) share one schedule
// per number: N reservations at 10 per second span about N/10 seconds.
func TestPacingIsShared(t *testing.T) {
	f := setup(t)
	other := f.newGate(t)
	ctx := context.Background()
	n := f.num(t, "1001")
	var last time.Duration
	for i := 0; i < 20; i++ {
		g := f.gate
		if i%2 == 1 {
			g = other
		}
		adm, err := g.Admit(ctx, n, "15551234567", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !adm.Reserved {
			t.Fatalf("reservation %d not made: %+v", i, adm)
		}
		last = adm.Wait
	}
	// 20 sends at 10/s with a burst of 1: the last waits about 1.9 s (less
	// the time this loop took).
	if last < 1500*time.Millisecond || last > 2000*time.Millisecond {
		t.Errorf("the 20th reservation waits %s, want about 1.9s", last)
	}
	// Another number has its own schedule.
	adm, err := f.gate.Admit(ctx, f.num(t, "2001"), "15551234567", 10*time.Second)
	if err != nil || adm.Wait != 0 || !adm.Reserved {
		t.Errorf("another number waits: %+v %v", adm, err)
	}
	// Past maxWait nothing is reserved: the job is handed back.
	adm, err = f.gate.Admit(ctx, n, "15551234567", 100*time.Millisecond)
	if err != nil || adm.Reserved || adm.Wait < time.Second || adm.Scope != "pace" {
		t.Errorf("beyond maxWait: %+v %v", adm, err)
	}
}

// TestRateBackOff: a 130429 lowers the number's rate (once per second, not
// once per answer); the slower pace shows in reservations.
func TestRateBackOff(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	n := f.num(t, "1002")
	d := f.gate.Throttled(ctx, n, "15551234567", policy.ScopeNumber, nil, time.Minute)
	if d < time.Second || d > 2*time.Second {
		t.Errorf("hold after 130429 = %s", d)
	}
	// A burst of 130429 from sends in flight is one signal.
	for i := 0; i < 5; i++ {
		f.gate.Throttled(ctx, n, "15551234567", policy.ScopeNumber, nil, time.Minute)
	}
	rdb := f.redis.Client(t)
	rate, err := rdb.HGet(ctx, "waq:rl:{1002}", "rate").Float64()
	if err != nil {
		t.Fatal(err)
	}
	if rate < 7.9 || rate > 8.1 {
		t.Errorf("rate after a burst of 130429 = %.2f, want 8 (10 × 0.8 once)", rate)
	}
	// The schedule was pushed out by a burst's worth (125ms at the lowered
	// rate): the next send waits, whatever time this test took since.
	adm, err := f.gate.Admit(ctx, n, "15550000000", 5*time.Second)
	if err != nil || !adm.Reserved || adm.Wait <= 0 {
		t.Errorf("after 130429: %+v %v", adm, err)
	}
	// /readyz shows the lowered rate as Status builds it once Run has read
	// it back: with the rate, and no zero time ("since":"0001-01-01...").
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.gate.Run(rctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 10*time.Second, func() error {
		st, _ := json.Marshal(f.gate.Status())
		if !strings.Contains(string(st), `"reason":"130429: rate lowered"`) {
			return testenv.ErrNotYet
		}
		if strings.Contains(string(st), "0001-01-01") {
			return fmt.Errorf("status after 130429 = %s", st)
		}
		return nil
	})
}

// TestStateJSONOmitsZeroTimes: a State without a start or end time (a
// lowered rate whose state in Redis has none) leaves them out rather than
// showing "since":"0001-01-01T00:00:00Z". A hold keeps its times.
func TestStateJSONOmitsZeroTimes(t *testing.T) {
	lowered, _ := json.Marshal(throttle.State{Key: "rate", PhoneNumberID: "1002", Scope: "number", Reason: "130429: rate lowered", Rate: 8, MPS: 10})
	if strings.Contains(string(lowered), "0001-01-01") || strings.Contains(string(lowered), `"since"`) || !strings.Contains(string(lowered), `"mps":10`) {
		t.Errorf("lowered rate in /readyz = %s", lowered)
	}
	since := time.Date(2026, 11, 25, 17, 2, 11, 0, time.UTC)
	held, _ := json.Marshal(throttle.State{Key: "app", Scope: "app", Reason: "4", Since: since, Until: since.Add(time.Minute)})
	if !strings.Contains(string(held), `"since":"2026-11-25T17:02:11Z"`) || !strings.Contains(string(held), `"until":"2026-11-25T17:03:11Z"`) {
		t.Errorf("hold in /readyz = %s", held)
	}
}

// TestPairLimitHoldsOneRecipient: a 131056 slows that recipient only.
func TestPairLimitHoldsOneRecipient(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	n := f.num(t, "1001")
	if d := f.gate.Throttled(ctx, n, "15551111111", policy.ScopeRecipient, nil, time.Minute); d < time.Second {
		t.Errorf("pair hold = %s", d)
	}
	adm, err := f.gate.Admit(ctx, n, "15551111111", 100*time.Millisecond)
	if err != nil || adm.Reserved || adm.Scope != "recipient" || adm.Wait < 500*time.Millisecond {
		t.Errorf("hot recipient: %+v %v", adm, err)
	}
	adm, err = f.gate.Admit(ctx, n, "15552222222", 100*time.Millisecond)
	if err != nil || !adm.Reserved || adm.Wait != 0 {
		t.Errorf("another recipient: %+v %v", adm, err)
	}
	// Within maxWait, the recipient's jobs are reserved one interval apart.
	a1, _ := f.gate.Admit(ctx, n, "15551111111", 5*time.Second)
	a2, _ := f.gate.Admit(ctx, n, "15551111111", 5*time.Second)
	if !a1.Reserved || !a2.Reserved || a2.Wait-a1.Wait < 900*time.Millisecond {
		t.Errorf("pair schedule: %+v then %+v", a1, a2)
	}
}

// TestAppAndWABAHolds: 4 holds every number for the time the usage header
// gives; 80007 holds only the numbers of that WABA.
func TestAppAndWABAHolds(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	usage := &graph.Usage{Business: map[string][]graph.BusinessUsage{"9001": {{Type: "whatsapp_business_messaging", EstimatedTimeToRegainAccess: 3}}}}
	d := f.gate.Throttled(ctx, f.num(t, "1001"), "1555", policy.ScopeWABA, usage, time.Second)
	if d < 3*time.Minute || d > 4*time.Minute {
		t.Errorf("WABA hold = %s, want about the 3 minutes of estimated_time_to_regain_access", d)
	}
	if adm, _ := f.gate.Admit(ctx, f.num(t, "1002"), "15551234567", 0); adm.Wait < 3*time.Minute || adm.Scope != "waba" {
		t.Errorf("same WABA: %+v", adm)
	}
	if adm, _ := f.gate.Admit(ctx, f.num(t, "2001"), "15551234567", 0); adm.Wait != 0 {
		t.Errorf("other WABA held: %+v", adm)
	}
	// Another worker learns of the hold through Redis.
	other := f.newGate(t)
	runFor(t, other)
	testenv.Eventually(t, 5*time.Second, func() error {
		if adm, _ := other.Admit(ctx, f.num(t, "1002"), "15551234567", 0); adm.Scope != "waba" {
			return errNotYet
		}
		return nil
	})
	// Without headers the policy's backoff is the hold.
	if d := f.gate.Throttled(ctx, f.num(t, "2001"), "1555", policy.ScopeApp, nil, 20*time.Second); d < 20*time.Second || d > 25*time.Second {
		t.Errorf("app hold without headers = %s", d)
	}
	if adm, _ := f.gate.Admit(ctx, f.num(t, "2001"), "15551234567", 0); adm.Scope != "app" {
		t.Errorf("app hold: %+v", adm)
	}
	// The hold ends by itself.
	f.clock.Add(4 * time.Minute)
	if adm, _ := f.gate.Admit(ctx, f.num(t, "1002"), "15551234567", time.Second); adm.Scope == "waba" || adm.Scope == "app" || adm.Wait > time.Second {
		t.Errorf("after the hold: %+v", adm)
	}
}

var errNotYet = testenv.ErrNotYet

func runFor(t *testing.T, g *throttle.Gate) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestPauseProbeResume: an expired token pauses every number of that token
// (and no other), the probe keeps it paused while the token is bad, and
// resumes when it is valid again.
func TestPauseProbeResume(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	a1, a2, b := f.num(t, "1001"), f.num(t, "1002"), f.num(t, "2001")
	past := f.clock.Now().Add(-time.Minute)
	if err := f.fake.SetToken(fakegraph.TokenUpdate{Token: "token-a", ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
	code := 190
	d := f.gate.Pause(ctx, a1, policy.ScopeToken, graph.Failure{HasCode: true, Code: 190, HTTPStatus: 401}, nil)
	if d < 10*time.Second {
		t.Errorf("pause hold = %s", d)
	}
	for _, n := range []numbers.Number{a1, a2} {
		adm, err := f.gate.Admit(ctx, n, "15551234567", time.Second)
		if err != nil || adm.Scope != "paused" || adm.Wait < 5*time.Second {
			t.Errorf("%s not paused: %+v %v", n.PhoneNumberID, adm, err)
		}
	}
	if adm, _ := f.gate.Admit(ctx, b, "15551234567", time.Second); adm.Scope == "paused" {
		t.Errorf("number of another token paused: %+v", adm)
	}
	st := f.gate.Status()
	if len(st.Paused) != 2 || st.AllPaused || st.Paused[0].Code == nil || *st.Paused[0].Code != code {
		t.Errorf("status = %+v", st)
	}
	// The probe is due; the token is still expired: still paused, longer.
	f.clock.Add(11 * time.Second)
	adm, _ := f.gate.Admit(ctx, a1, "15551234567", time.Second)
	if adm.Scope != "paused" || adm.Wait < 15*time.Second {
		t.Errorf("after a failed probe: %+v", adm)
	}
	// The token is renewed: the next probe resumes every number of it.
	if err := f.fake.SetToken(fakegraph.TokenUpdate{Token: "token-a"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	adm, err := f.gate.Admit(ctx, a2, "15551234567", time.Second)
	if err != nil || adm.Scope == "paused" || !adm.Reserved {
		t.Errorf("after the token was renewed: %+v %v", adm, err)
	}
	if adm, _ := f.gate.Admit(ctx, a1, "15551234567", time.Second); adm.Scope == "paused" {
		t.Errorf("the other number of the token is still paused: %+v", adm)
	}
	if st := f.gate.Status(); len(st.Paused) != 0 {
		t.Errorf("status after resume = %+v", st)
	}
}

// TestPauseGivesUp: a lock nobody lifts parks the number's jobs as
// "account" after PauseParkAfter.
func TestPauseGivesUp(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.fake.SetLocked("2001", true)
	n := f.num(t, "2001")
	f.gate.Pause(ctx, n, policy.ScopeWABA, graph.Failure{HasCode: true, Code: 131031, HTTPStatus: 403}, nil)
	if st := f.gate.Status(); !st.AllPaused && len(st.Paused) != 1 {
		t.Errorf("status = %+v", st)
	}
	f.clock.Add(30 * time.Minute)
	if adm, _ := f.gate.Admit(ctx, n, "15551234567", 0); adm.Scope != "paused" || adm.Park != "" {
		t.Errorf("locked (probe shows RESTRICTED): %+v", adm)
	}
	f.clock.Add(31 * time.Minute)
	adm, _ := f.gate.Admit(ctx, n, "15551234567", 0)
	if adm.Park != policy.ReasonAccount {
		t.Errorf("after an hour paused: %+v", adm)
	}
}

// TestAllPaused: when every number is paused, the worker cannot send.
func TestAllPaused(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.gate.Pause(ctx, f.num(t, "1001"), policy.ScopeToken, graph.Failure{HasCode: true, Code: 190}, nil)
	if f.gate.Status().AllPaused {
		t.Error("all paused with one token of two")
	}
	f.gate.Pause(ctx, f.num(t, "2001"), policy.ScopeToken, graph.Failure{HasCode: true, Code: 190}, nil)
	if !f.gate.Status().AllPaused {
		t.Errorf("status = %+v", f.gate.Status())
	}
}
