package throttle

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/numbers"
)

type rateState struct {
	rate float64
	mps  int
	at   time.Time
	// since is when a 130429 first lowered the rate (it may have been
	// lowered again since), until when it will be back at mps if nothing
	// lowers it again; both zero when the rate is not lowered.
	since, until time.Time
}

func (g *Gate) rateKey(pn string) string {
	return g.cfg.Prefix + ":rl:{" + pn + "}"
}

func (g *Gate) refreshRates(ctx context.Context, nums []numbers.Number) {
	if len(nums) == 0 {
		return
	}
	cmds := make([]*redis.SliceCmd, len(nums))
	_, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range nums {
			cmds[i] = p.HMGet(ctx, g.rateKey(n.PhoneNumberID), "rate", "dec", "since")
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
		n = g.pacedLocked(n)
		rs := rateState{rate: effectiveRate(n.MPS, str(v, 0), str(v, 1), now), mps: n.MPS, at: now}
		if rs.rate < float64(n.MPS) {
			rs.since, rs.until = lowered(n.MPS, str(v, 0), str(v, 1), str(v, 2))
		}
		g.rates[n.PhoneNumberID] = rs
	}
}

// lowered reads when a lowered rate began (the first 130429 of the
// episode; the last one's time for a state written before since was kept)
// and when it will be back at mps: the rate set at the last 130429 climbs
// back by recoverPerSecond of mps per second.
func lowered(mps int, rate, dec, since string) (from, until time.Time) {
	r, err1 := strconv.ParseFloat(rate, 64)
	d, err2 := strconv.ParseInt(dec, 10, 64)
	if err1 != nil || err2 != nil || mps <= 0 {
		return time.Time{}, time.Time{}
	}
	last := time.UnixMilli(d).UTC()
	from = last
	if s, err := strconv.ParseInt(since, 10, 64); err == nil && s <= d {
		from = time.UnixMilli(s).UTC()
	}
	back := (float64(mps) - r) / (float64(mps) * recoverPerSecond)
	return from, last.Add(time.Duration(max(0, back) * float64(time.Second)))
}

func str(v []any, i int) string {
	if i >= len(v) {
		return ""
	}
	s, _ := v[i].(string)
	return s
}

// effectiveRate mirrors the pacing script's arithmetic for status: the
// lowered rate climbs back by recoverPerSecond of mps per second.
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

// The schedule: each number's slots are spaced (1 s + windowGuard)/rate apart on
// Redis's clock, one schedule shared by every worker (a lease takes
// consecutive slots of it). There is no burst: Meta documents none, so the
// sender assumes the strictest reading, at most mps sends of a number in any
// sliding one-second window. Slots exactly 1/mps apart would meet it only
// if every send reached Meta exactly on its slot; the spacing is
// (1 s + windowGuard)/mps instead, so that sends reaching Meta up to
// windowGuard late (a timer, the CPU, the network) still never put mps+1
// in one window: mps+1 consecutive slots span mps·spacing = 1 s +
// windowGuard. A job later than lateLimit past its slot is not sent on it
// (the worker asks again), so the worker's own lateness stays within half
// the guard and the other half is left to the way to Meta.
const (
	// windowGuard widens the window the schedule keeps to: the paced rate
	// is mps × 1 s/(1 s + windowGuard), 97% of mps.
	windowGuard = 30 * time.Millisecond
	// lateLimit is how late after its slot a job may still be sent on it.
	lateLimit = windowGuard / 2
	// minSlack is the least lateness a reserved slot allows (see slackAfter).
	minSlack = 5 * time.Millisecond
)

// currentRateLua sets rate (and interval, ms: the slot spacing) to the
// number's rate now: mps, or the rate a 130429 lowered, climbing back (the
// fields go once it is back). It needs now, mps and st = HMGET(KEYS[1],
// 'tat', 'rate', 'dec', ...).
var currentRateLua = `
local rate = mps
if st[2] and st[3] then
  rate = tonumber(st[2]) + (now - tonumber(st[3])) / 1000 * mps * ` + strconv.FormatFloat(recoverPerSecond, 'f', -1, 64) + `
  if rate >= mps then
    rate = mps
    redis.call('HDEL', KEYS[1], 'rate', 'dec', 'since')
  end
end
local interval = ` + strconv.FormatInt((time.Second+windowGuard).Milliseconds(), 10) + ` / rate
`

// paceScript reserves a job's slot in its number's schedule (and its
// recipient's, when that pair was throttled) on Redis's clock: the slot is
// the schedule's next ('tat', never before now), and the next after it is
// one interval later.
//
// KEYS: number state hash, pair state key.
// ARGV: mps, max wait ms, pair interval ms.
// Returns {wait ms, reserved 0/1, rate*1000, scope}.
var paceScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mps = tonumber(ARGV[1])
local maxwait = tonumber(ARGV[2])
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
  pnew = pat + tonumber(ARGV[3])
end
local tat = tonumber(st[1] or '0')
if tat < at then tat = at end
local wait = tat - now
if wait > maxwait then
  return {math.floor(wait), 0, math.floor(rate * 1000), 'pace'}
end
redis.call('HSET', KEYS[1], 'tat', tostring(tat + interval))
redis.call('PEXPIRE', KEYS[1], 3600000)
if pnew then
  redis.call('SET', KEYS[2], tostring(pnew), 'KEEPTTL')
end
if wait <= 0 then scope = '' end
return {math.max(0, math.ceil(wait)), 1, math.floor(rate * 1000), scope}
`)

// decreaseScript lowers a number's rate after a 130429, at most once a
// second (a burst of in-flight sends all answered 130429 is one signal),
// and pushes the schedule out by ARGV[2] slots at the new rate, so that
// Meta's window empties before the next sends. 'since' keeps when the
// rate was first lowered, until it is back at mps.
// KEYS: number state hash. ARGV: mps, slots. Returns the new rate*1000.
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
if rate >= mps then redis.call('HSET', KEYS[1], 'since', tostring(now)) end
rate = math.max(mps * ` + strconv.FormatFloat(minRateShare, 'f', -1, 64) + `, rate * ` + strconv.FormatFloat(decreaseFactor, 'f', -1, 64) + `)
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[2]) * ` + strconv.FormatInt((time.Second+windowGuard).Milliseconds(), 10) + ` / rate
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'dec', tostring(now), 'cut', tostring(now), 'tat', tostring(tat))
redis.call('PEXPIRE', KEYS[1], 3600000)
return math.floor(rate * 1000)
`)

// leaseScript reserves up to ARGV[3] consecutive slots of a number's
// schedule at once (spaced as paceScript's), for a worker to hand out to
// its jobs without a round trip each. It leases nothing while the number
// has recipients on their own schedule (131056 in the last ten minutes):
// each job must then be checked against its recipient's schedule.
//
// KEYS: number state hash. ARGV: mps, max wait ms, count.
// Returns {n, base, interval, rate*1000, sec, µs}: n slots were leased and
// slot i (0..n-1) goes base + i*interval ms after now; n = 0: none within
// max wait, base is the wait of the first; n = -1: the number has pair
// schedules. sec and µs are Redis's TIME (now is their milliseconds).
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mps = tonumber(ARGV[1])
local maxwait = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'dec', 'pu')
if st[4] and tonumber(st[4]) > now then return {-1, '0', '0', 0, t[1], t[2]} end
` + currentRateLua + `local tat = tonumber(st[1] or '0')
if tat < now then tat = now end
local base = tat - now
local n = k
if base + (n - 1) * interval > maxwait then n = math.floor((maxwait - base) / interval) + 1 end
if n < 1 then
  return {0, tostring(base), tostring(interval), math.floor(rate * 1000), t[1], t[2]}
end
redis.call('HSET', KEYS[1], 'tat', tostring(tat + n * interval))
redis.call('PEXPIRE', KEYS[1], 3600000)
return {n, tostring(base), tostring(interval), math.floor(rate * 1000), t[1], t[2]}
`)

// pushOutSlots is how many slots a 130429 pushes the schedule out by: a
// tenth of a second's worth.
func pushOutSlots(mps int) int { return max(1, mps/10) }

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

// slowNumber lowers num's rate after a 130429 and returns how long to hold
// the job back.
func (g *Gate) slowNumber(ctx context.Context, num numbers.Number) time.Duration {
	// Slots leased at the old rate are given up.
	g.leases.drop(num.PhoneNumberID)
	r, err := decreaseScript.Run(ctx, g.rdb, []string{g.rateKey(num.PhoneNumberID)}, num.MPS, pushOutSlots(num.MPS)).Int64()
	if err == nil {
		g.log.Info("130429: lowering the number's rate", "phone_number_id", num.PhoneNumberID, "rate", float64(r)/1000, "mps", num.MPS)
	}
	// The job is paced again when it comes back; a second is enough.
	return spread(time.Second)
}
