// Package throttle keeps a worker inside Meta's limits and out of the way of
// broken credentials (SPEC §3.1 and the pause action of §3):
//
//   - Pacing: each business phone number sends at its rate (mps from the
//     phone-number file, else its throughput level read from the Graph API,
//     else 80; level.go), shared by every worker process through one
//     schedule in Redis that never puts more than mps sends in any sliding
//     one-second window (pace.go). Admit reserves the job's slot and says
//     how long to wait for it; a wait never holds a send slot.
//   - 130429: the number's rate drops by 20% (at most once a second) and
//     climbs back by 5% of its rate per second, never above it.
//   - 131056: only that recipient is slowed, to one message every 6 s, for 10
//     minutes after the last 131056.
//   - 4 / 80007: the app or the WABA is held until the time the usage headers
//     give (estimated_time_to_regain_access), or the policy's backoff.
//   - pause: a credential or account error stops every number it affects
//     (all numbers of a token for 0/190/..., the number or WABA for account
//     codes); one worker probes with a cheap Graph API read on a backoff and
//     resumes them when it succeeds; past a bound the paused jobs are parked
//     as "account".
//
// Holds and pauses are shared through one small Redis hash that every worker
// reads twice a second, so the hot path consults memory; the per-number
// schedule costs one Redis round trip per lease of slots (see lease.go).
// Files: pace.go (the schedule and the rate after 130429), lease.go, pair.go
// (131056), hold.go (4 / 80007), pause.go (pauses and probes), level.go
// (throughput levels), status.go (/readyz and the metrics).
package throttle

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/telemetry"
)

// Admission is the gate's answer before a send.
type Admission struct {
	// Wait > 0: the job may go after Wait. With Reserved, its slot in the
	// number's schedule is taken and the caller should wait that long and
	// send; without, the caller hands the job back for that long.
	Wait     time.Duration
	Reserved bool
	// At is when the reserved slot is (zero when the number is not paced:
	// nothing reserved). See Late.
	At time.Time
	// slack is how late past At the job may still be sent on its slot:
	// lateLimit less the Redis round trip that reserved it (the slot is
	// counted from the answer's arrival, so it errs late by that round trip
	// and the two add up), never below minSlack. Zero means lateLimit.
	slack time.Duration
	// Scope says what holds the job back: pace, recipient, number, app,
	// waba, paused.
	Scope string
	// Park != "": park the job with this reason (a pause that gave up).
	Park string
	// Hold: the wait is a template or quality hold (look again after
	// Wait), not a pace: the caller may keep the job out of the stream.
	Hold      bool
	Why       string
	LastError *deadletter.LastError
}

// Config configures a Gate. The zero value means the defaults.
type Config struct {
	// Prefix of Redis keys. Defaults to "waq".
	Prefix string
	// PauseParkAfter is how long jobs wait for a paused number before they
	// are parked as "account". Defaults to 1h.
	PauseParkAfter time.Duration
	// ProbeFirst and ProbeMax bound the probe backoff of a pause. Default
	// 15s and 5m.
	ProbeFirst, ProbeMax time.Duration
	// PairEvery is the pace of one recipient after 131056. Defaults to 6s.
	PairEvery time.Duration
	// HashRecipient stands for a recipient in the pair limit's Redis keys,
	// so that no number or business-scoped user ID sits in a key in clear:
	// the worker gives its keyed recipient hash (telemetry.RecipientHasher).
	// Defaults to a hasher with a fixed key, which hides the recipient from
	// a glance at the keys but not from a search of every number.
	HashRecipient func(recipient string) string
	// LevelEvery is how often each number's throughput level is read again
	// from the Graph API (see level.go). Defaults to 5m.
	LevelEvery time.Duration
	// LevelAfterMaintenance is how long after a 131057 (the number in
	// maintenance, as while Meta upgrades its throughput) its level is
	// read again, when the regular read is later. Defaults to 1m.
	LevelAfterMaintenance time.Duration
	// TemplateHoldMax is how long jobs wait for a paused or disabled
	// template (or a low quality that holds marketing) before they are
	// parked. Defaults to 24h.
	TemplateHoldMax time.Duration
	// HoldRecheck is how long a job held for its template or quality waits
	// before it looks again. Defaults to 1m.
	HoldRecheck time.Duration
	// TemplateRetry is how long a template learned paused or disabled from
	// a send error (132015, 132016) is held before one job tries it again.
	// Defaults to 15m.
	TemplateRetry time.Duration
	// LowQualityMarketing is what a RED template or a FLAGGED number does
	// to marketing sends: LowQualityHold (the default), LowQualitySlow or
	// LowQualitySend. Utility and authentication sends always go.
	LowQualityMarketing string
	// Now is the clock of holds and pauses. Defaults to time.Now. Pacing
	// uses Redis's clock, shared by all workers.
	Now func() time.Time
}

// Gate is the throughput control shared by a worker's slots.
type Gate struct {
	cfg     Config
	rdb     redis.Cmdable
	numbers *numbers.Registry
	graph   *graph.Client
	metrics *telemetry.Metrics
	log     *slog.Logger
	now     func() time.Time

	mu     sync.RWMutex
	holds  map[string]hold // key → hold, as last read from Redis (and our own writes)
	pauses int             // how many of holds are pauses
	rates  map[string]rateState
	seen   map[string]numbers.Number // numbers this worker sent for, for status
	levels map[string]level          // throughput levels read from the Graph API

	templates map[string][]TemplateState // by name:language, as last read (template.go)
	numq      map[string]NumberQuality   // by display number, as last read
	displays  map[string]string          // phone number id → display number (digits)

	leases leases      // slots of the numbers' schedules reserved ahead
	clock  *redisClock // where Redis's clock is (clock.go)
}

// New returns a gate. Run must run for holds and pauses to be shared.
func New(rdb redis.Cmdable, reg *numbers.Registry, gc *graph.Client, m *telemetry.Metrics, log *slog.Logger, cfg Config) *Gate {
	if cfg.Prefix == "" {
		cfg.Prefix = "waq"
	}
	if cfg.PauseParkAfter <= 0 {
		cfg.PauseParkAfter = time.Hour
	}
	if cfg.ProbeFirst <= 0 {
		cfg.ProbeFirst = 15 * time.Second
	}
	if cfg.ProbeMax <= 0 {
		cfg.ProbeMax = 5 * time.Minute
	}
	if cfg.HashRecipient == nil {
		cfg.HashRecipient = telemetry.NewRecipientHasher([]byte("waq pair limit")).Hash
	}
	if cfg.PairEvery <= 0 {
		cfg.PairEvery = 6 * time.Second
	}
	if cfg.LevelEvery <= 0 {
		cfg.LevelEvery = 5 * time.Minute
	}
	if cfg.LevelAfterMaintenance <= 0 {
		cfg.LevelAfterMaintenance = time.Minute
	}
	if cfg.TemplateHoldMax <= 0 {
		cfg.TemplateHoldMax = 24 * time.Hour
	}
	if cfg.HoldRecheck <= 0 {
		cfg.HoldRecheck = time.Minute
	}
	if cfg.TemplateRetry <= 0 {
		cfg.TemplateRetry = 15 * time.Minute
	}
	if cfg.LowQualityMarketing == "" {
		cfg.LowQualityMarketing = LowQualityHold
	}
	g := &Gate{cfg: cfg, rdb: rdb, numbers: reg, graph: gc, metrics: m, log: log, now: cfg.Now,
		holds: map[string]hold{}, rates: map[string]rateState{}, seen: map[string]numbers.Number{}, levels: map[string]level{},
		templates: map[string][]TemplateState{}, numq: map[string]NumberQuality{}, displays: map[string]string{}, leases: leases{m: map[string]*lease{}}, clock: newRedisClock()}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// Run keeps the shared holds in memory, and the numbers' throughput levels
// fresh, until ctx ends.
func (g *Gate) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); g.readLevels(ctx) }()
	defer func() { <-done }()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		g.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh reads the shared holds and the rates of the numbers seen.
func (g *Gate) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	g.readTemplates(rctx)
	m, err := g.rdb.HGetAll(rctx, g.holdsKey()).Result()
	if err != nil {
		return
	}
	holds := make(map[string]hold, len(m))
	now := g.now()
	var expired []string
	for k, v := range m {
		var h hold
		if json.Unmarshal([]byte(v), &h) != nil {
			continue
		}
		if h.Kind == "hold" && now.After(h.Until) {
			expired = append(expired, k)
			continue
		}
		holds[k] = h
	}
	if len(expired) > 0 {
		g.rdb.HDel(rctx, g.holdsKey(), expired...)
	}
	g.mu.Lock()
	g.holds = holds
	g.countPausesLocked()
	g.mu.Unlock()
	g.refreshRates(rctx, g.known())
	g.publishMetrics()
}

// Admit says whether a job for num and recipient to may be sent now. With
// maxWait > 0 it reserves the job's slot when the wait is at most maxWait.
func (g *Gate) Admit(ctx context.Context, num numbers.Number, to string, maxWait time.Duration) (Admission, error) {
	return g.AdmitReady(ctx, num, to, maxWait, 0)
}

// AdmitReady is Admit for a job that the caller knows to have ready-1 more
// jobs of its number behind it, waiting for slots (ready counts this one
// too; 0: not known). A lease of slots then takes as many as those jobs
// will use, up to its bound, and no more: a slot leased and left unused
// is lost to every worker.
func (g *Gate) AdmitReady(ctx context.Context, num numbers.Number, to string, maxWait time.Duration, ready int) (Admission, error) {
	g.noteSeen(num)
	num = g.paced(num)
	now := g.now()
	if key, h, ok := g.pausedFor(num); ok && h.Source == pauseSourceWebhook && !h.Until.IsZero() && !now.Before(h.Until) {
		// An account restriction that has run out lifts by itself.
		g.expireWebhookPause(ctx, key, h)
	} else if ok {
		if now.Sub(h.Since) > g.cfg.PauseParkAfter {
			return Admission{Park: policy.ReasonAccount, Scope: "paused", LastError: h.LastError,
				Why: fmt.Sprintf("%s paused since %s (%s); gave up after %s", key, h.Since.UTC().Format(time.RFC3339), h.Reason, g.cfg.PauseParkAfter)}, nil
		}
		if h.Source == pauseSourceWebhook {
			return Admission{Wait: g.webhookPauseWait(h, now), Scope: "paused", Why: h.Reason}, nil
		}
		if !now.Before(h.Until) {
			resumed, next := g.probe(ctx, key, h, num)
			if !resumed {
				return Admission{Wait: spread(next.Sub(now)), Scope: "paused", Why: h.Reason}, nil
			}
		} else {
			return Admission{Wait: spread(h.Until.Sub(now)), Scope: "paused", Why: h.Reason}, nil
		}
	}
	if key, h, ok := g.heldFor(num); ok {
		return Admission{Wait: spread(h.Until.Sub(now)), Scope: h.Scope, Why: key + ": " + h.Reason}, nil
	}
	if adm, ok, err := g.admitLeased(ctx, num, maxWait, ready); ok || err != nil {
		return adm, err
	}
	sent := time.Now()
	res, err := paceScript.Run(ctx, g.rdb, []string{g.rateKey(num.PhoneNumberID), g.pairKey(num.PhoneNumberID, to)},
		num.MPS, maxWait.Milliseconds(), g.cfg.PairEvery.Milliseconds()).Slice()
	if err != nil {
		return Admission{}, fmt.Errorf("pace %s: %w", num.PhoneNumberID, err)
	}
	wait := time.Duration(toInt(res[0])) * time.Millisecond
	reserved := toInt(res[1]) == 1
	scope, _ := res[3].(string)
	if reserved {
		// Redis's now was at most a round trip ago: the slot counted from
		// the answer errs late, never early.
		got := time.Now()
		adm := reservedAt(got.Add(wait), got, slackAfter(got.Sub(sent)))
		if wait > 0 && scope != "" {
			adm.Scope = scope
		}
		return adm, nil
	}
	return Admission{Wait: wait, Scope: scope}, nil
}

// spread adds up to 20% so that jobs held back together come back spread
// out, and never returns less than 100ms: no tight loop.
func spread(d time.Duration) time.Duration {
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return d + time.Duration(rand.Float64()*0.2*float64(d))
}

func (g *Gate) noteSeen(num numbers.Number) {
	g.mu.RLock()
	_, ok := g.seen[num.PhoneNumberID]
	g.mu.RUnlock()
	if ok {
		return
	}
	g.mu.Lock()
	if len(g.seen) < 10000 {
		g.seen[num.PhoneNumberID] = num
	}
	g.mu.Unlock()
}

// Throttled is told of a rate-limit answer and returns how long to hold the
// job back.
func (g *Gate) Throttled(ctx context.Context, num numbers.Number, to string, scope policy.Scope, usage *graph.Usage, fallback time.Duration) time.Duration {
	num = g.paced(num)
	switch scope {
	case policy.ScopeNumber:
		return g.slowNumber(ctx, num)
	case policy.ScopeRecipient:
		return g.slowPair(ctx, num, to)
	case policy.ScopeApp, policy.ScopeWABA:
		return g.holdBack(ctx, num, scope, usage, fallback)
	}
	return spread(fallback)
}

// Late reports whether a job reserved this slot but reaches the send later
// than lateLimit past it: sent now it could bunch up with the number's next
// slots (Meta allows no burst), so the caller asks again instead.
func (a Admission) Late(now time.Time) bool {
	limit := lateLimit
	if a.slack > 0 {
		limit = a.slack
	}
	return a.Reserved && !a.At.IsZero() && now.Sub(a.At) > limit
}

// slackAfter is how late a job may be past a slot reserved in a round trip
// of rtt: the slot errs late by up to rtt, and the job's own lateness and
// that error together stay within lateLimit, so that mps+1 sends never fit
// in one second (windowGuard). Past a round trip of lateLimit - minSlack a
// slot keeps minSlack, so that a slow Redis slows sending rather than
// stopping it: the guarantee then rests on the other half of the guard.
func slackAfter(rtt time.Duration) time.Duration {
	return min(lateLimit, max(lateLimit-rtt, minSlack))
}
