package throttle

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/numbers"
)

// pairKey is the key of one recipient's schedule, by its hash
// (Config.HashRecipient), never the number or user ID in clear: hashed
// here, only where a script needs the key, not on every send (a leased
// slot needs none). Keys of the older form, with the recipient in clear,
// live at most pairLife after their last 131056 and go by themselves.
func (g *Gate) pairKey(pn, to string) string {
	return g.cfg.Prefix + ":rl:{" + pn + "}:p:" + g.cfg.HashRecipient(to)
}

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

// slowPair puts recipient to of num on its own slower schedule after a
// 131056 and returns how long to hold the job back.
func (g *Gate) slowPair(ctx context.Context, num numbers.Number, to string) time.Duration {
	g.leases.pairs(num.PhoneNumberID, time.Now().Add(pairLife))
	pairScript.Run(ctx, g.rdb, []string{g.pairKey(num.PhoneNumberID, to), g.rateKey(num.PhoneNumberID)}, g.cfg.PairEvery.Milliseconds())
	return spread(g.cfg.PairEvery)
}
