package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
)

// JobByWAMID returns the id of the job sent as wamid, or "" when the ledger
// does not know it.
func (l *Ledger) JobByWAMID(ctx context.Context, wamid string) (string, error) {
	ws, ns, err := l.idx.alive(ctx)
	if err != nil {
		return "", fmt.Errorf("ledger wamid %s: %w", wamid, err)
	}
	d := wamidDigest(wamid)
	reads := make([]*redis.StringCmd, len(ws))
	var legacy *redis.StringCmd
	err = l.batch(ctx, func(c redis.Cmdable) []redis.Cmder {
		cmds := make([]redis.Cmder, 0, len(ws)+1)
		for i, w := range ws {
			reads[i] = c.HGet(ctx, l.idx.key("w", w, d, ns[i]), d.field)
			cmds = append(cmds, reads[i])
		}
		legacy = c.Get(ctx, l.wamidKey(wamid))
		return append(cmds, legacy)
	})
	if err != nil {
		return "", fmt.Errorf("ledger wamid %s: %w", wamid, err)
	}
	for _, r := range reads {
		v, err := r.Result()
		if err != nil || v == "" {
			continue
		}
		if isUUIDValue(v) {
			u, _ := uuid.FromBytes([]byte(v))
			return u.String(), nil
		}
		switch v[0] {
		case 'r':
			return v[1:], nil
		case 'y':
			if len(v) >= 2 {
				return v[1 : len(v)-1], nil
			}
		case 'x':
			id, err := l.rdb.Get(ctx, l.idx.longIDKey(d)).Result()
			if err == nil {
				return id, nil
			}
			if !errors.Is(err, redis.Nil) {
				return "", fmt.Errorf("ledger wamid %s: %w", wamid, err)
			}
		}
	}
	if id, err := legacy.Result(); err == nil {
		return id, nil
	}
	return "", nil
}

// legacyStatusScript records a status (and pricing) on a record written
// before the compact index. KEYS: state. ARGV: status ("" for none),
// status time ms, pricing (2 bytes, "" for none). Returns as
// recordStatusScript does.
var legacyStatusScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
local out = 0
if ARGV[3] ~= '' and redis.call('HSETNX', KEYS[1], 'pr', ARGV[3]) == 1 then out = 2 end
if ARGV[1] == '' then return out end
local rank = {sent=1, delivered=2, read=3, failed=4}
local cur = redis.call('HGET', KEYS[1], 'st')
if cur and (rank[cur] or 0) >= (rank[ARGV[1]] or 0) then return out end
redis.call('HSET', KEYS[1], 'st', ARGV[1], 'sa', ARGV[2])
return out + 1
`)

// RecordStatus records a webhook's delivery status on a job unless a later
// status (sent < delivered < read < failed) is already recorded. It reports
// whether the status was new; a status other than those four is not kept.
func (l *Ledger) RecordStatus(ctx context.Context, id, status string, at time.Time) (bool, error) {
	out, err := l.RecordStatusWith(ctx, id, status, at, nil)
	return out.Status, err
}

// StatusRecorded says what RecordStatusWith recorded.
type StatusRecorded struct {
	// Status is true when the status was newer than the job's.
	Status bool
	// Pricing is true when the job had no pricing before this one.
	Pricing bool
}

// RecordStatusWith is RecordStatus with the status's pricing (nil for
// none), kept unless the job already has pricing: Meta repeats the same
// object on each status of a message, and the first is the one counted.
func (l *Ledger) RecordStatusWith(ctx context.Context, id, status string, at time.Time, p *Pricing) (StatusRecorded, error) {
	_, f, err := l.load(ctx, id)
	if err != nil {
		return StatusRecorded{}, err
	}
	var pb [2]byte
	price := ""
	if p != nil {
		pb[0], pb[1] = pricingBytes(*p)
		price = string(pb[:])
	}
	var n int
	if f.key == "" {
		if _, ok := statusRanks[status]; !ok && status != "" {
			// A status the legacy hash would not order.
			status = ""
		}
		n, err = legacyStatusScript.Run(ctx, l.rdb, []string{l.stateKey(id)}, status, at.UnixMilli(), price).Int()
	} else {
		rank := statusRanks[status]
		if rank == 0 && p == nil {
			return StatusRecorded{}, nil
		}
		b38 := ""
		if p != nil {
			b38 = string(pb[:1])
		}
		n, err = recordStatusScript.Run(ctx, l.rdb, []string{f.key}, jobDigest(id).field, int(rank), statusAtBytes(at, f.rec.sentAt), b38, int(pb[1])).Int()
	}
	if err != nil {
		return StatusRecorded{}, fmt.Errorf("ledger record status %s: %w", id, err)
	}
	if n < 0 {
		return StatusRecorded{}, nil
	}
	return StatusRecorded{Status: n&1 != 0, Pricing: n&2 != 0}, nil
}

// Body returns the job as published, or nil when it is no longer kept.
func (l *Ledger) Body(ctx context.Context, id string) ([]byte, error) {
	st, err := l.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.bodySeq != 0 && l.bodies != nil {
		return l.bodies.get(ctx, id, st.bodySeq)
	}
	b, err := l.rdb.Get(ctx, l.bodyKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger body %s: %w", id, err)
	}
	return b, nil
}

// legacyWebhookScript acts on a webhook failure of a record written before
// the compact index. KEYS: state, history. ARGV: wamid, mode, reason, gen,
// attempt JSON, ttl ms.
var legacyWebhookScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'w', 'fw')
if st[2] == ARGV[1] then return 0 end
if st[1] ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'fw', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[2] == 'park' then
  redis.call('HDEL', KEYS[1], 'w')
  redis.call('HSET', KEYS[1], 'p', ARGV[3], 'pg', ARGV[4])
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], -200, -1)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
`)

// webhookHashScript writes a webhook failure into the job's hash and
// history: the parked mark (park; the history goes, as MarkParked has it:
// the dead-letter entry holds it with this attempt), or one more attempt
// (resend).
// KEYS: state, history. ARGV: mode, reason, gen, attempt JSON, ttl ms.
var webhookHashScript = redis.NewScript(`
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if ARGV[1] == 'park' then
  redis.call('HSET', KEYS[1], 'p', ARGV[2], 'pg', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], -200, -1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`)

// WebhookOutcome says what RecordWebhookFailure did.
type WebhookOutcome int

// The outcomes of RecordWebhookFailure.
const (
	WebhookRecorded WebhookOutcome = 1  // recorded now
	WebhookDone     WebhookOutcome = 0  // that failure was already acted on
	WebhookStale    WebhookOutcome = -1 // the job is no longer sent as that wamid
)

// RecordWebhookFailure records a failure of wamid reported by webhook: the
// job was parked with reason (park true: its outcome is no longer "sent"),
// or sent again as a new generation. It is idempotent per wamid.
//
// The parked mark and the history go first and the index's mark last: the
// mark is what makes a second delivery of the same failure a no-op, so a
// crash between them costs at most a history line written twice.
func (l *Ledger) RecordWebhookFailure(ctx context.Context, id, wamid string, park bool, reason string, gen int, a Attempt) (WebhookOutcome, error) {
	a.Gen = gen
	data, err := json.Marshal(a)
	if err != nil {
		return 0, fmt.Errorf("ledger encode attempt: %w", err)
	}
	mode := "resend"
	if park {
		mode = "park"
	}
	var wait conn.Replicas
	if park {
		// The job's outcome changes from sent to parked: as durable as a
		// sent record.
		wait = l.wait
	}
	st, f, err := l.load(ctx, id)
	if err != nil {
		return 0, err
	}
	keys := []string{l.stateKey(id), l.historyKey(id)}
	if f.key == "" {
		res, err := wait.RunScript(ctx, l.rdb, legacyWebhookScript, keys, wamid, mode, reason, gen, data, l.ttl.Milliseconds())
		return webhookResult(id, res, err)
	}
	switch {
	case st.FailureActedOn(wamid):
		return WebhookDone, nil
	case !st.SentAs(wamid):
		return WebhookStale, nil
	}
	if _, err := wait.RunScript(ctx, l.rdb, webhookHashScript, keys, mode, reason, gen, data, l.ttl.Milliseconds()); err != nil {
		return 0, fmt.Errorf("ledger webhook failure %s: %w", id, err)
	}
	var sum [3]byte
	putUint(sum[:], int64(wamidSum(wamid)))
	res, err := wait.RunScript(ctx, l.rdb, failDoneScript, []string{f.key}, jobDigest(id).field, string(sum[:]), mode)
	return webhookResult(id, res, err)
}

func webhookResult(id string, res *redis.Cmd, err error) (WebhookOutcome, error) {
	var n int
	if err == nil {
		n, err = res.Int()
	}
	if err != nil {
		return 0, fmt.Errorf("ledger webhook failure %s: %w", id, err)
	}
	return WebhookOutcome(n), nil
}

// LoadScripts loads the ledger's scripts into Redis, so that the first
// pipelined write does not meet NOSCRIPT.
func (l *Ledger) LoadScripts(ctx context.Context) error {
	for _, s := range []*redis.Script{recordScript, sentHashScript, countScript,
		recordStatusScript, failDoneScript, webhookHashScript, restoreScript, legacyWebhookScript, legacyStatusScript, recipientIDsScript} {
		if err := s.Load(ctx, l.rdb).Err(); err != nil {
			return fmt.Errorf("ledger load scripts: %w", err)
		}
	}
	return nil
}

// Ping reports whether Redis answers.
func (l *Ledger) Ping(ctx context.Context) error { return l.rdb.Ping(ctx).Err() }

// isUUIDValue tells a UUID's 16 bytes from the other index values
// (encodeID). Before 15-byte ids had a form of their own, one was written as
// 'r' and its text, 16 bytes like a UUID: a 16-byte value starting with 'r'
// is a UUID only when it has RFC 4122's variant bits (byte 8 10xxxxxx) and
// the rest is not text (an id is UTF-8; random bytes almost never are).
func isUUIDValue(v string) bool {
	if len(v) != 16 {
		return false
	}
	if v[0] != 'r' {
		return true
	}
	return v[8]&0xc0 == 0x80 && !utf8.ValidString(v[1:])
}
