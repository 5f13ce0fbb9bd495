package throttle_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/throttle"
)

const levelNumbers = `
phone_numbers:
  - {phone_number_id: "4001", waba_id: "9004", token_env: TOKEN_A}
  - {phone_number_id: "4002", waba_id: "9004", token_env: TOKEN_A, mps: 80}
`

// levelGate is a running gate over levelNumbers against the Graph API at
// base, reading levels every 100ms.
func levelGate(t *testing.T, base string) (*throttle.Gate, *numbers.Registry) {
	t.Helper()
	reg, err := numbers.Parse("numbers.yaml", []byte(levelNumbers), func(string) string { return "token-a" })
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Options{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.StartRedis(t)
	g := throttle.New(r.Client(t), reg, gc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), throttle.Config{LevelEvery: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return g, reg
}

// paceOf waits (5 s at most) until the gate's status shows pn as want says.
func paceOf(t *testing.T, g *throttle.Gate, pn string, want func(throttle.Pace) bool) throttle.Pace {
	t.Helper()
	var last throttle.Pace
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range g.Status().Numbers {
			if p.PhoneNumberID == pn {
				last = p
			}
		}
		if want(last) {
			return last
		}
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
	t.Fatalf("%s: pace %+v", pn, last)
	return last
}

// TestThroughputLevelUpgrade: a number Meta upgrades to HIGH while the
// worker runs is paced at 1,000 msg/s without a restart; a number whose
// file gives mps keeps it (the file overrides the level).
func TestThroughputLevelUpgrade(t *testing.T) {
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{"token-a"}})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })
	g, reg := levelGate(t, srv.URL)

	p := paceOf(t, g, "4001", func(p throttle.Pace) bool { return p.Level != "" })
	if p.Level != "STANDARD" || p.MPS != 80 || p.Source != "level" {
		t.Fatalf("before the upgrade: %+v, want STANDARD at 80 from the level", p)
	}
	for _, pn := range []string{"4001", "4002"} {
		if err := fake.SetThroughput(pn, fakegraph.ThroughputUpdate{Level: "HIGH"}); err != nil {
			t.Fatal(err)
		}
	}
	p = paceOf(t, g, "4001", func(p throttle.Pace) bool { return p.MPS == throttle.HighMPS })
	if p.Level != "HIGH" || p.Source != "level" || p.Rate != throttle.HighMPS {
		t.Errorf("after the upgrade: %+v", p)
	}
	p = paceOf(t, g, "4002", func(p throttle.Pace) bool { return p.Level == "HIGH" })
	if p.MPS != 80 || p.Source != "file" {
		t.Errorf("the file's mps gave way to the level: %+v", p)
	}

	// 50 slots of the upgraded number span 49 × 1.03 ms, not 49 × 12.9 ms.
	num, err := reg.Lookup("4001")
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	for i := range 50 {
		adm, err := g.Admit(context.Background(), num, "15551234567", 10*time.Second)
		if err != nil || !adm.Reserved {
			t.Fatalf("admission %d: %+v %v", i, adm, err)
		}
		if i == 0 {
			first = adm.At
		}
		last = adm.At
	}
	if span := last.Sub(first); span > 200*time.Millisecond {
		t.Errorf("50 slots span %s: not paced at 1,000/s", span)
	}
}

// TestThroughputLevelBadAnswers: a level that is neither STANDARD nor HIGH,
// and a Graph API that fails, leave the number at its rate (the default
// 80); the gate keeps asking.
func TestThroughputLevelBadAnswers(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch calls.Add(1) % 4 {
		case 0:
			_, _ = io.WriteString(w, `{"throughput": {"level": "TURBO"}, "id": "4001"}`)
		case 1:
			_, _ = io.WriteString(w, `{"throughput": "HIGH", "id": "4001"}`)
		case 2:
			_, _ = io.WriteString(w, `{"id": "4001"}`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1, "fbtrace_id": "Ax"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	g, _ := levelGate(t, srv.URL)
	testenv.Eventually(t, 5*time.Second, func() error {
		if calls.Load() < 12 {
			return context.DeadlineExceeded
		}
		return nil
	})
	for _, p := range g.Status().Numbers {
		if p.PhoneNumberID == "4001" && (p.MPS != 80 || p.Source != "default") {
			t.Errorf("after bad answers: %+v, want the default 80", p)
		}
	}
}

// TestLevelReadAfterMaintenance: a 131057 (the number in maintenance, as
// while Meta upgrades its throughput) has the level read again
// LevelAfterMaintenance later, long before the regular read.
func TestLevelReadAfterMaintenance(t *testing.T) {
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{"token-a"}})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })
	reg, err := numbers.Parse("numbers.yaml", []byte(levelNumbers), func(string) string { return "token-a" })
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.StartRedis(t)
	g := throttle.New(r.Client(t), reg, gc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)),
		throttle.Config{LevelEvery: time.Hour, LevelAfterMaintenance: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	paceOf(t, g, "4001", func(p throttle.Pace) bool { return p.Level == "STANDARD" })
	if err := fake.SetThroughput("4001", fakegraph.ThroughputUpdate{Level: "HIGH"}); err != nil {
		t.Fatal(err)
	}
	// Without a 131057 the next read is an hour away.
	tm := time.NewTimer(time.Second)
	<-tm.C
	if p := paceOf(t, g, "4001", func(throttle.Pace) bool { return true }); p.Level != "STANDARD" {
		t.Fatalf("the level was read again before the regular read: %+v", p)
	}
	num, err := reg.Lookup("4001")
	if err != nil {
		t.Fatal(err)
	}
	g.Maintenance(num)
	p := paceOf(t, g, "4001", func(p throttle.Pace) bool { return p.Level == "HIGH" })
	if p.MPS != throttle.HighMPS {
		t.Errorf("after the maintenance: %+v", p)
	}
}
