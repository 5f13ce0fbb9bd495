package devenv

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
)

// TestMiniredisRunsTheScripts runs what the worker asks of Redis (the
// ledger's, the dead-letter store's and the throughput gate's scripts and
// commands) on redis-server and on the in-process server, and compares the
// results: `waq dev` without redis-server must behave the same.
func TestMiniredisRunsTheScripts(t *testing.T) {
	testenv.RedisServerPath(t)
	results := map[string]map[string]string{}
	// One clock for both runs: the compact index stamps a sent record with
	// its clock's second, and the runs may straddle one.
	now := time.Now().Truncate(time.Second)
	for _, mode := range []string{RedisServer, RedisMemory} {
		r, err := StartRedis(context.Background(), RedisOptions{Mode: mode, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		results[mode] = exercise(t, r.URL, now)
	}
	real, mini := results[RedisServer], results[RedisMemory]
	keys := make([]string, 0, len(real))
	for k := range real {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if real[k] != mini[k] {
			t.Errorf("%s: redis-server %q, in-process %q", k, real[k], mini[k])
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(real[k], "error") {
			t.Errorf("%s failed on redis-server: %s", k, real[k])
		}
	}
	if len(mini) != len(real) {
		t.Errorf("in-process ran %d operations, redis-server %d", len(mini), len(real))
	}
}

// exercise runs the worker's Redis operations and returns what each gave.
func exercise(t *testing.T, url string, clock time.Time) map[string]string {
	t.Helper()
	ctx := context.Background()
	rdb, err := conn.Redis(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	out := map[string]string{}
	put := func(k string, v any, err error) {
		if err != nil {
			out[k] = "error: " + err.Error()
			return
		}
		out[k] = fmt.Sprint(v)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	// Ledger: attempts, generations, sent, parked, statuses.
	l := ledger.New(rdb, ledger.Options{Prefix: "t", Now: func() time.Time { return clock }})
	code := 131000
	a := ledger.Attempt{At: at, Outcome: "failed", Code: &code, Action: "retry"}
	n, err := l.RecordAttempt(ctx, "j1", 0, a, ledger.CountAttempt)
	put("ledger attempt 1", n, err)
	n, err = l.RecordAttempt(ctx, "j1", 0, a, ledger.CountAttempt)
	put("ledger attempt 2", n, err)
	n, err = l.RecordAttempt(ctx, "j1", 1, a, ledger.CountHeld)
	put("ledger attempt gen 1", n, err)
	_, err = l.RecordAttempt(ctx, "j1", 0, a, ledger.CountAttempt)
	put("ledger stale gen", err == ledger.ErrStale, nil)
	put("ledger sent", "", l.RecordSent(ctx, "j1", 1, "wamid.A", ledger.Attempt{At: at}, []byte(`{"id":"j1"}`)))
	put("ledger sent many", "", l.RecordSentMany(ctx, []ledger.SentRecord{{ID: "j2", WAMID: "wamid.B", Attempt: ledger.Attempt{At: at}, Body: []byte(`{"id":"j2"}`)}, {ID: "j3", WAMID: "wamid.C", Attempt: ledger.Attempt{At: at}}}))
	st, err := l.Load(ctx, "j1")
	put("ledger load j1", fmt.Sprintf("%+v", st), err)
	h, err := l.History(ctx, "j1")
	put("ledger history j1", len(h), err)
	sts, err := l.LoadMany(ctx, []string{"j2", "j3", "none"})
	put("ledger load many", fmt.Sprintf("%+v", sts), err)
	put("ledger park", "", l.MarkParked(ctx, "j4", 0, "window"))
	st, err = l.Load(ctx, "j4")
	put("ledger load j4", fmt.Sprintf("%+v", st), err)
	ok, err := l.RecordStatus(ctx, "j1", "delivered", at)
	put("ledger status delivered", ok, err)
	ok, err = l.RecordStatus(ctx, "j1", "sent", at)
	put("ledger status sent after delivered", ok, err)
	id, err := l.JobByWAMID(ctx, "wamid.B")
	put("ledger by wamid", id, err)
	ttl, err := rdb.PTTL(ctx, "t:j:{j1}").Result()
	put("ledger ttl set", ttl > 0, err)

	// Dead-letter store: park, replace, list, count, remove, sweep.
	now := at
	s := deadletter.New(rdb, deadletter.Options{Prefix: "t", Now: func() time.Time { return now }})
	w, tp := 131047, 132001
	for i, e := range []*deadletter.Entry{
		{ID: "d1", Reason: "window", PhoneNumberID: "1", To: "15550001", LastError: &deadletter.LastError{Code: &w}, ParkedAt: at.Add(-2 * time.Hour)},
		{ID: "d2", Reason: "window", PhoneNumberID: "1", To: "15550002", LastError: &deadletter.LastError{Code: &w}, ParkedAt: at.Add(-time.Hour)},
		{ID: "d3", Reason: "template", PhoneNumberID: "2", Template: "x", To: "15550001", LastError: &deadletter.LastError{Code: &tp}, ParkedAt: at},
		{ID: "d1", Reason: "window", PhoneNumberID: "1", To: "15550001", LastError: &deadletter.LastError{Code: &w}, ParkedAt: at.Add(-2 * time.Hour), Replayed: 1},
	} {
		put(fmt.Sprintf("dlq park %d", i), "", s.Park(ctx, e))
	}
	cnt, err := s.CountByReason(ctx)
	put("dlq count", fmt.Sprint(cnt), err)
	page, err := s.List(ctx, deadletter.Filter{Reason: "window"}, "", 10)
	put("dlq list window", ids(page), err)
	page, err = s.List(ctx, deadletter.Filter{Code: &tp}, "", 10)
	put("dlq list code", ids(page), err)
	page, err = s.List(ctx, deadletter.Filter{}, "", 2)
	put("dlq list page 1", ids(page), err)
	if page.Next != "" {
		page, err = s.List(ctx, deadletter.Filter{}, page.Next, 2)
		put("dlq list page 2", ids(page), err)
	}
	e, err := s.Get(ctx, "d1")
	if err == nil {
		put("dlq get", e.Replayed, nil)
	} else {
		put("dlq get", nil, err)
	}
	ok, err = s.Parked(ctx, "d1", 1)
	put("dlq parked gen 1", ok, err)
	rm, err := s.Remove(ctx, "d2", 5)
	put("dlq remove wrong gen", rm, err)
	rm, err = s.Remove(ctx, "d2", -1)
	put("dlq remove", rm, err)
	now = at.Add(s.Retention() + time.Minute)
	sw, err := s.Sweep(ctx)
	put("dlq sweep", sw, err)
	cnt, err = s.CountByReason(ctx)
	put("dlq count after sweep", fmt.Sprint(cnt), err)

	// Throughput gate: GCRA pacing on Redis's clock (TIME in a script),
	// 130429 back-off, pair limit, holds.
	reg, _ := numbers.Load("", func(string) string { return "tok" })
	num, _ := reg.Lookup("106540352242922")
	gc, _ := graph.New(graph.Options{BaseURL: "http://127.0.0.1:1"})
	g := throttle.New(rdb, reg, gc, telemetry.NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler), throttle.Config{Prefix: "t"})
	admitted, reserved, waits := 0, 0, 0
	for i := 0; i < 60; i++ {
		adm, err := g.Admit(ctx, num, "15550001", 0)
		if err != nil {
			put("gate admit", nil, err)
			break
		}
		switch {
		case adm.Reserved && adm.Wait == 0:
			admitted++
		case adm.Reserved:
			reserved++
		default:
			waits++
		}
	}
	// 60 at once at 80 msg/s: the burst goes at once, the rest must wait;
	// exact counts depend on timing, so compare the shape.
	put("gate burst admitted some", admitted > 0, nil)
	put("gate burst held some", waits > 0, nil)
	// Reserving ahead: 40 more at once move the schedule half a second
	// ahead, so some must wait (whatever the timing of the burst before),
	// none beyond the bound.
	ahead, beyond := false, false
	for i := 0; i < 40; i++ {
		adm, err := g.Admit(ctx, num, "15550002", time.Second)
		if err != nil {
			put("gate reserve ahead", nil, err)
			break
		}
		ahead = ahead || adm.Reserved && adm.Wait > 0
		beyond = beyond || adm.Reserved && adm.Wait > time.Second
	}
	put("gate reserve ahead", ahead && !beyond, nil)
	d := g.Throttled(ctx, num, "15550001", policy.ScopeNumber, nil, time.Second)
	put("gate 130429 delay", d >= time.Second, nil)
	rate, err := rdb.HGet(ctx, "t:rl:{106540352242922}", "rate").Float64()
	put("gate rate lowered", rate > 50 && rate < 60, err)
	d = g.Throttled(ctx, num, "15550003", policy.ScopeRecipient, nil, time.Second)
	put("gate 131056 delay", d >= 6*time.Second, nil)
	adm, err := g.Admit(ctx, num, "15550003", 0)
	put("gate recipient held", adm.Scope == "recipient" && !adm.Reserved, err)
	d = g.Throttled(ctx, num, "15550004", policy.ScopeApp, nil, 2*time.Second)
	put("gate app hold", d >= 2*time.Second, nil)
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { g.Run(gctx); close(done) }()
	// The holds and the rates are read one after the other: wait for both.
	testenv.Eventually(t, 5*time.Second, func() error {
		if len(g.Status().Throttled) < 2 {
			return testenv.ErrNotYet
		}
		return nil
	})
	cancel()
	<-done
	var scopes []string
	for _, s := range g.Status().Throttled {
		scopes = append(scopes, s.Scope)
	}
	sort.Strings(scopes)
	put("gate status throttled", strings.Join(scopes, ","), nil)
	return out
}

func ids(p deadletter.Page) string {
	var s []string
	for _, e := range p.Entries {
		s = append(s, e.ID)
	}
	return strings.Join(s, ",")
}
