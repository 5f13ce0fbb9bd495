// Package throttle keeps a worker inside Meta's limits and out of the way of
// broken credentials (SPEC §3.1 and the pause action of §3):
//
//   - Pacing: each business phone number sends at its rate (mps from the
//     phone-number file, 80 by default), shared by every worker process
//     through a GCRA schedule in Redis. Admit reserves the job's slot and says
//     how long to wait for it; a wait never holds a send slot.
//   - 130429: the number's rate drops by 30% (at most once a second) and
//     climbs back by 2% of its configured rate per second.
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
package throttle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"
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
	// Scope says what holds the job back: pace, recipient, number, app,
	// waba, paused.
	Scope string
	// Park != "": park the job with this reason (a pause that gave up).
	Park      string
	Why       string
	LastError *deadletter.LastError
}

// Status is what /readyz shows of the gate.
type Status struct {
	Paused    []State `json:"paused"`
	Throttled []State `json:"throttled"`
	// AllPaused is true when no number can send.
	AllPaused bool `json:"all_paused"`
}

// State is one number (or token, WABA, the app) held back, and why.
type State struct {
	Key           string    `json:"key"`
	PhoneNumberID string    `json:"phone_number_id,omitempty"`
	Scope         string    `json:"scope"`
	Reason        string    `json:"reason"`
	Code          *int      `json:"code,omitempty"`
	Since         time.Time `json:"since,omitzero"`
	Until         time.Time `json:"until,omitzero"`
	Rate          float64   `json:"rate,omitempty"`
	MPS           int       `json:"mps,omitempty"`
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

	leases leases // slots of the numbers' schedules reserved ahead
}

// hold is a pause or a time-limited hold, as stored in the shared hash.
type hold struct {
	Kind      string                `json:"kind"` // "hold" or "pause"
	Scope     string                `json:"scope"`
	Reason    string                `json:"reason"`
	Code      *int                  `json:"code,omitempty"`
	Since     time.Time             `json:"since"`
	Until     time.Time             `json:"until"` // hold: its end; pause: the next probe
	Probes    int                   `json:"probes,omitempty"`
	LastError *deadletter.LastError `json:"last_error,omitempty"`
	// ProbeNumber and ProbeTokenEnv say how to probe: a read of that
	// number with its token.
	ProbeNumber   string `json:"probe_number,omitempty"`
	ProbeTokenEnv string `json:"probe_token_env,omitempty"`
}

type rateState struct {
	rate float64
	mps  int
	at   time.Time
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
	if cfg.PairEvery <= 0 {
		cfg.PairEvery = 6 * time.Second
	}
	g := &Gate{cfg: cfg, rdb: rdb, numbers: reg, graph: gc, metrics: m, log: log, now: cfg.Now,
		holds: map[string]hold{}, rates: map[string]rateState{}, seen: map[string]numbers.Number{}, leases: leases{m: map[string]*lease{}}}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

func (g *Gate) holdsKey() string { return g.cfg.Prefix + ":{gate}:holds" }
func (g *Gate) rateKey(pn string) string {
	return g.cfg.Prefix + ":rl:{" + pn + "}"
}
func (g *Gate) pairKey(pn, to string) string { return g.cfg.Prefix + ":rl:{" + pn + "}:p:" + to }
func (g *Gate) probeKey(k string) string     { return g.cfg.Prefix + ":{gate}:probe:" + k }

// Run keeps the shared holds in memory until ctx ends.
func (g *Gate) Run(ctx context.Context) {
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
	seen := make([]numbers.Number, 0, len(g.seen))
	for _, n := range g.seen {
		seen = append(seen, n)
	}
	g.mu.Unlock()
	g.refreshRates(rctx, seen)
	g.publishMetrics()
}

func (g *Gate) refreshRates(ctx context.Context, nums []numbers.Number) {
	if len(nums) == 0 {
		return
	}
	cmds := make([]*redis.SliceCmd, len(nums))
	_, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range nums {
			cmds[i] = p.HMGet(ctx, g.rateKey(n.PhoneNumberID), "rate", "dec")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, n := range nums {
		v := cmds[i].Val()
		rate := effectiveRate(n.MPS, str(v, 0), str(v, 1), now)
		g.rates[n.PhoneNumberID] = rateState{rate: rate, mps: n.MPS, at: now}
	}
}

func str(v []any, i int) string {
	if i >= len(v) {
		return ""
	}
	s, _ := v[i].(string)
	return s
}

// effectiveRate mirrors the pacing script's arithmetic for status: the
// lowered rate climbs back by 2% of mps per second.
func effectiveRate(mps int, rate, dec string, now time.Time) float64 {
	r, err1 := strconv.ParseFloat(rate, 64)
	d, err2 := strconv.ParseInt(dec, 10, 64)
	if err1 != nil || err2 != nil {
		return float64(mps)
	}
	el := float64(now.UnixMilli()-d) / 1000
	if el < 0 {
		el = 0
	}
	r += el * float64(mps) * recoverPerSecond
	if r > float64(mps) {
		r = float64(mps)
	}
	return r
}

const (
	// recoverPerSecond is the share of mps a lowered rate regains per second:
	// from the floor of one 130429 back to mps in about 4 seconds, so that a
	// single burst answered 130429 costs little.
	recoverPerSecond = 0.05
	// decreaseFactor is what a 130429 multiplies the rate by. Repeated
	// 130429 (a number whose real limit is below its configured mps) keep
	// lowering it, once a second.
	decreaseFactor = 0.8
	// minRateShare is the floor of a lowered rate, as a share of mps.
	minRateShare = 0.05
)

// paceScript reserves a job's slot in its number's schedule (and its
// recipient's, when that pair was throttled) using GCRA on Redis's clock.
//
// KEYS: number state hash, pair state key.
// ARGV: mps, burst, max wait ms, pair interval ms, decrease? ("0"/"1").
// Returns {wait ms, reserved 0/1, rate*1000, scope}.
// currentRateLua sets rate (and interval, ms) to the number's rate now: mps,
// or the rate a 130429 lowered, climbing back (the fields go once it is
// back). It needs now, mps and st = HMGET(KEYS[1], 'tat', 'rate', 'dec', ...).
var currentRateLua = `
local rate = mps
if st[2] and st[3] then
  rate = tonumber(st[2]) + (now - tonumber(st[3])) / 1000 * mps * ` + strconv.FormatFloat(recoverPerSecond, 'f', -1, 64) + `
  if rate >= mps then
    rate = mps
    redis.call('HDEL', KEYS[1], 'rate', 'dec')
  end
end
local interval = 1000 / rate
`

var paceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxwait = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'dec')
` + currentRateLua + `local at = now
local scope = 'pace'
-- A recipient that was throttled (131056) keeps its own slower schedule.
local ptat = redis.call('GET', KEYS[2])
local pnew = nil
if ptat then
  ptat = tonumber(ptat)
  local pat = math.max(ptat, now)
  if pat - now > maxwait then
    return {pat - now, 0, math.floor(rate * 1000), 'recipient'}
  end
  if pat > at then at = pat; scope = 'recipient' end
  pnew = pat + tonumber(ARGV[4])
end
local tat = tonumber(st[1] or '0')
if tat < at then tat = at end
local newtat = tat + interval
local allowed = newtat - burst * interval
local wait = math.max(allowed, at) - now
if wait > maxwait then
  return {math.floor(wait), 0, math.floor(rate * 1000), 'pace'}
end
redis.call('HSET', KEYS[1], 'tat', tostring(newtat))
redis.call('PEXPIRE', KEYS[1], 3600000)
if pnew then
  redis.call('SET', KEYS[2], tostring(pnew), 'KEEPTTL')
end
if wait <= 0 then scope = '' end
return {math.max(0, math.floor(wait)), 1, math.floor(rate * 1000), scope}
`)

// decreaseScript lowers a number's rate after a 130429, at most once a
// second (a burst of in-flight sends all answered 130429 is one signal).
// KEYS: number state hash. ARGV: mps, burst. Returns the new rate*1000.
var decreaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mps = tonumber(ARGV[1])
local st = redis.call('HMGET', KEYS[1], 'rate', 'dec', 'cut')
local rate = mps
if st[1] and st[2] then
  rate = math.min(mps, tonumber(st[1]) + (now - tonumber(st[2])) / 1000 * mps * ` + strconv.FormatFloat(recoverPerSecond, 'f', -1, 64) + `)
end
if st[3] and now - tonumber(st[3]) < 1000 then return math.floor(rate * 1000) end
rate = math.max(mps * ` + strconv.FormatFloat(minRateShare, 'f', -1, 64) + `, rate * ` + strconv.FormatFloat(decreaseFactor, 'f', -1, 64) + `)
-- Push the schedule out by a burst's worth at the new rate, so that Meta's
-- bucket refills before the next sends.
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[2]) * 1000 / rate
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'dec', tostring(now), 'cut', tostring(now), 'tat', tostring(tat))
redis.call('PEXPIRE', KEYS[1], 3600000)
return math.floor(rate * 1000)
`)

// pairScript starts (or pushes out) a recipient's own schedule after a
// 131056: its next slot is one interval from now on Redis's clock, and the
// schedule lives for pairLife after the last 131056; the number's state
// says until when it has such recipients ('pu', which stops its leases).
// KEYS: pair key, number state hash. ARGV: interval ms.
var pairScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = ` + strconv.FormatInt(pairLife.Milliseconds(), 10) + `
local next = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur > next then next = cur end
redis.call('SET', KEYS[1], tostring(next), 'PX', life)
redis.call('HSET', KEYS[2], 'pu', tostring(now + life))
redis.call('PEXPIRE', KEYS[2], 3600000)
return next
`)

// leaseScript reserves up to ARGV[4] consecutive slots of a number's
// schedule at once (GCRA as paceScript), for a worker to hand out to its
// jobs without a round trip each. It leases nothing while the number has
// recipients on their own schedule (131056 in the last ten minutes): each
// job must then be checked against its recipient's schedule.
//
// KEYS: number state hash. ARGV: mps, burst, max wait ms, count.
// Returns {n, base, interval, rate*1000}: n slots were leased and slot i
// (1..n) may go base + i*interval ms after now (at once when negative);
// n = 0: none within max wait, base is the wait of the first; n = -1: the
// number has pair schedules.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local maxwait = tonumber(ARGV[3])
local k = tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'dec', 'pu')
if st[4] and tonumber(st[4]) > now then return {-1, '0', '0', 0} end
` + currentRateLua + `local tat = tonumber(st[1] or '0')
if tat < now then tat = now end
local base = tat - burst * interval - now
local n = k
if base + n * interval > maxwait then n = math.floor((maxwait - base) / interval) end
if n < 1 then
  return {0, tostring(math.max(0, base + interval)), tostring(interval), math.floor(rate * 1000)}
end
redis.call('HSET', KEYS[1], 'tat', tostring(tat + n * interval))
redis.call('PEXPIRE', KEYS[1], 3600000)
return {n, tostring(base), tostring(interval), math.floor(rate * 1000)}
`)

// burstOf is the GCRA burst of a number: a tenth of a second's worth,
// well below Meta's own tolerance, so that paced sends that bunch on the way
// (scheduling, a busy CPU) stay under it.
func burstOf(mps int) int {
	b := mps / 10
	if b < 1 {
		b = 1
	}
	return b
}

// Admit says whether a job for num and recipient to may be sent now. With
// maxWait > 0 it reserves the job's slot when the wait is at most maxWait.
func (g *Gate) Admit(ctx context.Context, num numbers.Number, to string, maxWait time.Duration) (Admission, error) {
	g.noteSeen(num)
	now := g.now()
	if key, h, ok := g.pausedFor(num); ok {
		if now.Sub(h.Since) > g.cfg.PauseParkAfter {
			return Admission{Park: policy.ReasonAccount, Scope: "paused", LastError: h.LastError,
				Why: fmt.Sprintf("%s paused since %s (%s); gave up after %s", key, h.Since.UTC().Format(time.RFC3339), h.Reason, g.cfg.PauseParkAfter)}, nil
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
	if adm, ok, err := g.admitLeased(ctx, num, maxWait); ok || err != nil {
		return adm, err
	}
	res, err := paceScript.Run(ctx, g.rdb, []string{g.rateKey(num.PhoneNumberID), g.pairKey(num.PhoneNumberID, to)},
		num.MPS, burstOf(num.MPS), maxWait.Milliseconds(), g.cfg.PairEvery.Milliseconds()).Slice()
	if err != nil {
		return Admission{}, fmt.Errorf("pace %s: %w", num.PhoneNumberID, err)
	}
	wait := time.Duration(toInt(res[0])) * time.Millisecond
	reserved := toInt(res[1]) == 1
	scope, _ := res[3].(string)
	if wait <= 0 && reserved {
		return Admission{Reserved: true}, nil
	}
	return Admission{Wait: wait, Reserved: reserved, Scope: scope}, nil
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
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

// pauseKeys are the pause keys that would stop num, most specific first.
func pauseKeys(num numbers.Number) []string {
	keys := []string{"pause:number:" + num.PhoneNumberID}
	if num.WABAID != "" {
		keys = append(keys, "pause:waba:"+num.WABAID)
	}
	keys = append(keys, "pause:token:"+num.TokenEnv, "pause:app")
	return keys
}

// countPausesLocked recounts the pauses among the holds (g.mu held).
func (g *Gate) countPausesLocked() {
	g.pauses = 0
	for _, h := range g.holds {
		if h.Kind == "pause" {
			g.pauses++
		}
	}
}

// pausedFor finds the pause that stops num. It is asked before every send,
// so it builds no key when nothing is paused (the usual case).
func (g *Gate) pausedFor(num numbers.Number) (string, hold, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.pauses == 0 {
		return "", hold{}, false
	}
	for _, k := range pauseKeys(num) {
		if h, ok := g.holds[k]; ok {
			return k, h, true
		}
	}
	return "", hold{}, false
}

func (g *Gate) heldFor(num numbers.Number) (string, hold, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	now := g.now()
	keys := []string{"hold:app"}
	if num.WABAID != "" {
		keys = append(keys, "hold:waba:"+num.WABAID)
	}
	keys = append(keys, "hold:number:"+num.PhoneNumberID)
	for _, k := range keys {
		if h, ok := g.holds[k]; ok && now.Before(h.Until) {
			return k, h, true
		}
	}
	return "", hold{}, false
}

// Throttled is told of a rate-limit answer and returns how long to hold the
// job back.
func (g *Gate) Throttled(ctx context.Context, num numbers.Number, to string, scope policy.Scope, usage *graph.Usage, fallback time.Duration) time.Duration {
	switch scope {
	case policy.ScopeNumber:
		// Slots leased at the old rate are given up.
		g.leases.drop(num.PhoneNumberID)
		r, err := decreaseScript.Run(ctx, g.rdb, []string{g.rateKey(num.PhoneNumberID)}, num.MPS, burstOf(num.MPS)).Int64()
		if err == nil {
			g.log.Info("130429: lowering the number's rate", "phone_number_id", num.PhoneNumberID, "rate", float64(r)/1000, "mps", num.MPS)
		}
		// The job is paced again when it comes back; a second is enough.
		return spread(time.Second)
	case policy.ScopeRecipient:
		g.leases.pairs(num.PhoneNumberID, time.Now().Add(pairLife))
		pairScript.Run(ctx, g.rdb, []string{g.pairKey(num.PhoneNumberID, to), g.rateKey(num.PhoneNumberID)}, g.cfg.PairEvery.Milliseconds())
		return spread(g.cfg.PairEvery)
	case policy.ScopeApp, policy.ScopeWABA:
		d := usage.RegainAccessIn()
		if d <= 0 {
			d = fallback
		}
		if d < time.Second {
			d = time.Second
		}
		key := "hold:app"
		if scope == policy.ScopeWABA {
			key = "hold:waba:" + num.WABAID
			if num.WABAID == "" {
				key = "hold:number:" + num.PhoneNumberID
			}
		}
		h := hold{Kind: "hold", Scope: string(scope), Reason: "rate limit (" + string(scope) + ")", Since: g.now().UTC(), Until: g.now().Add(d).UTC()}
		g.store(ctx, key, h, false)
		g.log.Warn("app or WABA limit: holding", "key", key, "until", h.Until, "from_headers", usage.RegainAccessIn() > 0)
		return spread(d)
	}
	return spread(fallback)
}

// store writes a hold to the shared hash (only if absent when onlyNew) and
// to memory.
func (g *Gate) store(ctx context.Context, key string, h hold, onlyNew bool) bool {
	data, _ := json.Marshal(h)
	var err error
	ok := true
	if onlyNew {
		ok, err = g.rdb.HSetNX(ctx, g.holdsKey(), key, data).Result()
	} else {
		err = g.rdb.HSet(ctx, g.holdsKey(), key, data).Err()
	}
	if err != nil {
		g.log.Warn("could not share a hold; it applies to this worker only", "key", key, "error", err)
	}
	if ok || err != nil {
		g.mu.Lock()
		g.holds[key] = h
		g.countPausesLocked()
		g.mu.Unlock()
	}
	return ok
}

// Pause is told of a credential or account failure and returns how long to
// hold the job back.
func (g *Gate) Pause(ctx context.Context, num numbers.Number, scope policy.Scope, f graph.Failure, last *deadletter.LastError) time.Duration {
	var key string
	switch scope {
	case policy.ScopeToken:
		key = "pause:token:" + num.TokenEnv
	case policy.ScopeWABA:
		if num.WABAID != "" {
			key = "pause:waba:" + num.WABAID
		} else {
			key = "pause:number:" + num.PhoneNumberID
		}
	case policy.ScopeApp:
		key = "pause:app"
	default:
		key = "pause:number:" + num.PhoneNumberID
	}
	now := g.now().UTC()
	var code *int
	if f.HasCode {
		c := f.Code
		code = &c
	}
	reason := "code " + f.String()
	if last != nil && last.Title != "" {
		reason += ": " + last.Title
	}
	h := hold{Kind: "pause", Scope: string(scope), Reason: reason, Code: code, Since: now, Until: now.Add(g.cfg.ProbeFirst),
		LastError: last, ProbeNumber: num.PhoneNumberID, ProbeTokenEnv: num.TokenEnv}
	if g.store(ctx, key, h, true) {
		g.log.Warn("paused: credential or account problem; probing until it is fixed", "key", key, "code", f.String(),
			"affects", strings.Join(g.affected(key), ","), "probe_in", g.cfg.ProbeFirst.String())
	}
	g.publishMetrics()
	return spread(g.cfg.ProbeFirst)
}

// probe reads the paused number with its token. One worker probes at a time
// (a Redis lock); the others wait for the next probe time. It resumes the
// pause when the read shows the number can send.
func (g *Gate) probe(ctx context.Context, key string, h hold, num numbers.Number) (bool, time.Time) {
	now := g.now()
	ok, err := g.rdb.SetNX(ctx, g.probeKey(key), "1", 20*time.Second).Result()
	if err != nil || !ok {
		return false, now.Add(2 * time.Second)
	}
	defer g.rdb.Del(context.WithoutCancel(ctx), g.probeKey(key))
	pn := h.ProbeNumber
	if pn == "" {
		pn = num.PhoneNumberID
	}
	pnum, lerr := g.numbers.Lookup(pn)
	if lerr != nil {
		pnum = num
	}
	var out struct {
		Status string `json:"status"`
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = g.graph.Get(pctx, url.PathEscape(pn), url.Values{"fields": {"status"}}, pnum.Token(), &out)
	cancel()
	if err == nil && sendable(out.Status) {
		g.rdb.HDel(ctx, g.holdsKey(), key)
		g.mu.Lock()
		delete(g.holds, key)
		g.countPausesLocked()
		g.mu.Unlock()
		g.log.Info("resumed: the probe succeeded", "key", key, "status", out.Status, "paused_for", now.Sub(h.Since).Round(time.Second).String())
		g.publishMetrics()
		return true, now
	}
	h.Probes++
	wait := g.cfg.ProbeFirst << min(h.Probes, 10)
	if wait > g.cfg.ProbeMax || wait <= 0 {
		wait = g.cfg.ProbeMax
	}
	h.Until = now.Add(wait).UTC()
	g.store(ctx, key, h, false)
	why := out.Status
	if err != nil {
		why = err.Error()
	}
	g.log.Info("still paused: the probe failed", "key", key, "probe", h.Probes, "result", why, "next_probe_in", wait.String())
	return false, h.Until
}

// sendable says whether a phone number status allows sending.
func sendable(status string) bool {
	switch strings.ToUpper(status) {
	case "RESTRICTED", "BANNED", "DELETED", "DISCONNECTED", "UNVERIFIED", "PENDING", "DEPRECATED":
		return false
	}
	return true
}

// affected lists the known numbers a pause key stops.
func (g *Gate) affected(key string) []string {
	var out []string
	for _, n := range g.known() {
		for _, k := range pauseKeys(n) {
			if k == key {
				out = append(out, n.PhoneNumberID)
				break
			}
		}
	}
	return out
}

// known is every number the gate knows of: the file's and those seen.
func (g *Gate) known() []numbers.Number {
	byID := map[string]numbers.Number{}
	for _, n := range g.numbers.Listed() {
		byID[n.PhoneNumberID] = n
	}
	g.mu.RLock()
	for id, n := range g.seen {
		if _, ok := byID[id]; !ok {
			byID[id] = n
		}
	}
	g.mu.RUnlock()
	out := make([]numbers.Number, 0, len(byID))
	for _, n := range byID {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PhoneNumberID < out[j].PhoneNumberID })
	return out
}

// Paused reports, from memory, whether num is paused now, and how long to
// hold its jobs back (until the next probe). It costs no round trip: the
// worker asks it right before each send.
func (g *Gate) Paused(num numbers.Number) (time.Duration, bool) {
	_, h, ok := g.pausedFor(num)
	if !ok {
		return 0, false
	}
	return spread(h.Until.Sub(g.now())), true
}

// Sent is told of every success.
func (g *Gate) Sent(num numbers.Number) {}

// Status lists what is paused or throttled.
func (g *Gate) Status() Status {
	var st Status
	known := g.known()
	g.mu.RLock()
	defer g.mu.RUnlock()
	now := g.now()
	paused := 0
	for _, n := range known {
		for _, k := range pauseKeys(n) {
			if h, ok := g.holds[k]; ok {
				st.Paused = append(st.Paused, State{Key: k, PhoneNumberID: n.PhoneNumberID, Scope: h.Scope, Reason: h.Reason, Code: h.Code, Since: h.Since, Until: h.Until})
				paused++
				break
			}
		}
		if r, ok := g.rates[n.PhoneNumberID]; ok && r.rate < float64(r.mps)-0.01 {
			st.Throttled = append(st.Throttled, State{Key: "rate", PhoneNumberID: n.PhoneNumberID, Scope: "number", Reason: "130429: rate lowered", Rate: r.rate, MPS: r.mps})
		}
	}
	keys := make([]string, 0, len(g.holds))
	for k := range g.holds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h := g.holds[k]
		if h.Kind == "hold" && now.Before(h.Until) {
			st.Throttled = append(st.Throttled, State{Key: k, Scope: h.Scope, Reason: h.Reason, Since: h.Since, Until: h.Until})
		}
	}
	// No number can send when every known number is paused (and there is
	// at least one), or the default token is paused with no file.
	st.AllPaused = len(known) > 0 && paused == len(known)
	if _, ok := g.holds["pause:app"]; ok {
		st.AllPaused = true
	}
	if len(g.numbers.Listed()) == 0 && g.numbers.HasDefaultToken() {
		if _, ok := g.holds["pause:token:"+numbers.DefaultTokenEnv]; ok {
			st.AllPaused = true
		}
	}
	return st
}

func (g *Gate) publishMetrics() {
	if g.metrics == nil {
		return
	}
	st := g.Status()
	g.metrics.Paused.Reset()
	g.metrics.ThrottledNumber.Reset()
	for _, n := range g.known() {
		g.metrics.Paused.WithLabelValues(n.PhoneNumberID).Set(0)
	}
	for _, p := range st.Paused {
		g.metrics.Paused.WithLabelValues(p.PhoneNumberID).Set(1)
	}
	g.mu.RLock()
	for pn, r := range g.rates {
		g.metrics.Rate.WithLabelValues(pn).Set(r.rate)
		v := 0.0
		if r.rate < float64(r.mps)-0.01 {
			v = 1
		}
		g.metrics.ThrottledNumber.WithLabelValues(pn).Set(v)
	}
	g.mu.RUnlock()
}
