package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Count says which counter an attempt adds to.
type Count string

// The counters of a generation.
const (
	CountNone    Count = ""  // a decision without a send (expired, invalid)
	CountAttempt Count = "n" // a send that counts towards max_attempts
	CountHeld    Count = "t" // a send answered with a rate limit or a pause
)

// ErrStale means a message of an older generation than the ledger's: the job
// was replayed since, and the newer generation owns it.
var ErrStale = errors.New("ledger: stale generation")

// recordScript appends an attempt to a job's history and bumps a counter,
// starting the counters afresh when the attempt is of a newer generation.
// KEYS: state, history. ARGV: gen, counter field or "", attempt JSON, ttl ms.
// Returns the counter's new value, or -1 for a stale generation.
var recordScript = redis.NewScript(`
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
local gen = tonumber(ARGV[1])
if gen < g then return -1 end
if gen > g then
  redis.call('HSET', KEYS[1], 'g', gen, 'n', 0, 't', 0)
  redis.call('HDEL', KEYS[1], 'p', 'pg')
end
local v = 0
if ARGV[2] ~= '' then v = redis.call('HINCRBY', KEYS[1], ARGV[2], 1) end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -200, -1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return v
`)

// RecordAttempt durably appends a failed (or not sent) attempt of
// generation gen and returns the counter's new value (0 for CountNone).
func (l *Ledger) RecordAttempt(ctx context.Context, id string, gen int, a Attempt, c Count) (int, error) {
	a.Gen = gen
	data, err := json.Marshal(a)
	if err != nil {
		return 0, fmt.Errorf("ledger encode attempt: %w", err)
	}
	n, err := recordScript.Run(ctx, l.rdb, []string{l.stateKey(id), l.historyKey(id)},
		gen, string(c), data, l.ttl.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("ledger record attempt %s: %w", id, err)
	}
	if n < 0 {
		return 0, ErrStale
	}
	return n, nil
}

// sentHashScript records the outcome "sent" on the hash of a job that has
// one (it failed before): the parked mark goes, the generation moves on, and
// the attempt joins the history. KEYS: state, history.
// ARGV: gen, ttl ms, attempt JSON, wamid (kept for `waq job show`: such a
// job has a hash anyway).
var sentHashScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], 'p', 'pg', 'w', 'fw')
redis.call('HSET', KEYS[1], 'sw', ARGV[4])
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
if tonumber(ARGV[1]) > g then redis.call('HSET', KEYS[1], 'g', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
`)

// RecordSent durably records that the job was sent as wamid. The attempt
// joins the history only when the job has one (it failed before).
func (l *Ledger) RecordSent(ctx context.Context, id string, gen int, wamid string, a Attempt, body []byte) error {
	return l.RecordSentMany(ctx, []SentRecord{{ID: id, Gen: gen, WAMID: wamid, Attempt: a, Body: body}})
}

// SentRecord is one job sent, for RecordSentMany.
type SentRecord struct {
	ID      string
	Gen     int
	WAMID   string
	Attempt Attempt
	// Body is the job as published, kept (on Options.Bodies) for the resend
	// window.
	Body []byte
	// MessageStatus is the send answer's message_status.
	MessageStatus string
	// Fresh says the job had no record at all when its delivery began (the
	// common case: sent first time, generation 0): it has no hash to update,
	// so only the compact index is written.
	Fresh bool
}

// RecordSentMany records several sent jobs in one round trip (after their
// bodies are on Bodies). On error, none may be assumed recorded (the caller
// retries them all; the writes are idempotent).
func (l *Ledger) RecordSentMany(ctx context.Context, recs []SentRecord) error {
	ttl := l.ttl.Milliseconds()
	datas := make([][]byte, len(recs))
	for i := range recs {
		if recs[i].Fresh {
			continue // no history: the attempt is not kept
		}
		a := recs[i].Attempt
		a.Gen = recs[i].Gen
		a.Outcome = "sent"
		d, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("ledger encode attempt: %w", err)
		}
		datas[i] = d
	}
	seqs := l.keepBodies(ctx, recs)
	now := l.idx.now()
	w := l.idx.windowAt(now)
	nb, err := l.idx.writeBuckets(ctx, w)
	if err != nil {
		return fmt.Errorf("ledger record sent: %w", err)
	}
	start, expAt := l.idx.start(w), l.idx.expireAt(w)
	exp := expAt.UnixMilli()
	count := l.idx.counted(w, len(recs))
	// Keys of their own (long ids) first, then the records: a record found
	// means the rest is there.
	var counting *redis.Cmd
	write := func(c redis.Cmdable) []redis.Cmder {
		cmds := make([]redis.Cmder, 0, 5*len(recs)+1)
		for i, r := range recs {
			jd, wd := jobDigest(r.ID), wamidDigest(r.WAMID)
			idv := encodeID(r.ID)
			if idv == "x" {
				cmds = append(cmds, c.Set(ctx, l.idx.longIDKey(wd), r.ID, time.Until(l.idx.expireAt(w))))
			}
			rec := record{flags: flagSent, sentGen: r.Gen, sentAt: r.Attempt.At, wsum: wamidSum(r.WAMID), bodySeq: seqs[i]}
			if r.MessageStatus != "" {
				rec.meta[1] = messageStatusCode(r.MessageStatus)
			}
			if r.Attempt.At.IsZero() || r.Attempt.At.Before(start) {
				rec.sentAt = now
			}
			rec.traceID, rec.spanID = traceBytes(r.Attempt.TraceID, r.Attempt.SpanID)
			// Plain commands, not a script: the window's keys all expire at
			// expAt, so setting it again changes nothing, and two commands
			// cost Redis less than a script that asks first.
			// A job with attempts gets its sent attempt in its history
			// before its record: a reader that finds the job sent finds the
			// attempt too.
			if !r.Fresh {
				cmds = append(cmds, sentHashScript.EvalSha(ctx, c, []string{l.stateKey(r.ID), l.historyKey(r.ID)}, r.Gen, ttl, datas[i], r.WAMID))
			}
			wk, jk := l.idx.key("w", w, wd, nb), l.idx.key("j", w, jd, nb)
			cmds = append(cmds, c.HSet(ctx, wk, wd.field, idv), c.PExpireAt(ctx, wk, expAt))
			cmds = append(cmds, c.HSet(ctx, jk, jd.field, encodeRecord(rec, start)), c.PExpireAt(ctx, jk, expAt))
		}
		if count > 0 {
			counting = countScript.EvalSha(ctx, c, []string{l.idx.metaKey("n", w)}, count, exp)
			cmds = append(cmds, counting)
		}
		return cmds
	}
	err = l.outcome(ctx, write)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A restarted Redis (or a replica promoted by a failover) has
		// forgotten its scripts; the writes are idempotent, so load and
		// write again.
		if err = l.LoadScripts(ctx); err == nil {
			err = l.outcome(ctx, write)
		}
	}
	if err != nil {
		return fmt.Errorf("ledger record sent: %w", err)
	}
	if counting != nil {
		// The records are written; a window that outgrew its buckets gets
		// more for the records after them (index.grow). Failing that, the
		// next count tries again.
		if n, err := counting.Int64(); err == nil {
			_ = l.idx.grow(ctx, w, n)
		}
	}
	return nil
}

// traceBytes is a trace and span id in binary; zero when they do not parse.
func traceBytes(traceID, spanID string) ([16]byte, [8]byte) {
	var t [16]byte
	var s [8]byte
	tb, err1 := hex.DecodeString(traceID)
	sb, err2 := hex.DecodeString(spanID)
	if err1 != nil || err2 != nil || len(tb) != 16 || len(sb) != 8 {
		return t, s
	}
	copy(t[:], tb)
	copy(s[:], sb)
	return t, s
}

// batch sends fn's commands in one round trip and returns the first error:
// on the autopipeliner they join the batch other callers share; on another
// client they go as one pipeline.
func (l *Ledger) batch(ctx context.Context, fn func(c redis.Cmdable) []redis.Cmder) error {
	if _, ok := l.rdb.(*redis.AutoPipeliner); ok {
		for _, c := range fn(l.rdb) {
			if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
		}
		return nil
	}
	cmds, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		// A read that found nothing; report another command's error.
		err = nil
		for _, c := range cmds {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) {
				return e
			}
		}
	}
	return err
}

// outcome sends the writes of an outcome like batch and, with WaitReplicas,
// as one pipeline of their own ending in a WAIT: WAIT covers the writes of
// the connection it is sent on, so they must not join a batch that other
// callers share.
func (l *Ledger) outcome(ctx context.Context, fn func(c redis.Cmdable) []redis.Cmder) error {
	if l.wait.N <= 0 {
		return l.batch(ctx, fn)
	}
	_, err := l.wait.Pipelined(ctx, l.rdb, func(p redis.Pipeliner) error {
		fn(p)
		return nil
	})
	return err
}

// Confirm returns once the replicas WaitReplicas asks for have everything
// written to the primary before it, the job's outcome included: a worker
// that finds an outcome on a redelivery acknowledges the job only then,
// since the worker that wrote it may have died before its WAIT returned.
// Replication keeps the primary's order, so a WAIT for a write of Confirm's
// own covers every earlier one. Without WaitReplicas it does nothing.
func (l *Ledger) Confirm(ctx context.Context, id string) error {
	if l.wait.N <= 0 {
		return nil
	}
	_, err := l.wait.Pipelined(ctx, l.rdb, func(p redis.Pipeliner) error {
		// A write that always replicates (a no-op, such as PEXPIRE of a
		// missing key, would not move the connection's offset).
		p.Set(ctx, l.stateKey(id)+":c", 1, time.Minute)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger confirm %s: %w", id, err)
	}
	return nil
}

// MarkParked records that generation gen of the job was parked with reason.
// The dead-letter entry must be durable before this is called, with the
// job's attempts: the history goes (the entry holds it from now on, and a
// replay gives it back, RestoreHistory), which halves what a parked job
// keeps in Redis.
func (l *Ledger) MarkParked(ctx context.Context, id string, gen int, reason string) error {
	k := l.stateKey(id)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "p", reason, "pg", gen)
		p.PExpire(ctx, k, l.ttl)
		p.Del(ctx, l.historyKey(id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger mark parked %s: %w", id, err)
	}
	return nil
}

// restoreScript writes a history back when the job has none. KEYS:
// history. ARGV: ttl ms, attempt JSON...
var restoreScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -200, -1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// RestoreHistory gives a parked job its attempts back (from its
// dead-letter entry) before it is replayed, so that the history goes on
// across replays: MarkParked dropped it. A history the job has (parked
// before MarkParked dropped them) is kept as it is.
func (l *Ledger) RestoreHistory(ctx context.Context, id string, attempts []Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	args := make([]any, 0, len(attempts)+1)
	args = append(args, l.ttl.Milliseconds())
	for _, a := range attempts {
		d, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("ledger encode attempt: %w", err)
		}
		args = append(args, d)
	}
	if err := restoreScript.Run(ctx, l.rdb, []string{l.historyKey(id)}, args...).Err(); err != nil {
		return fmt.Errorf("ledger restore history %s: %w", id, err)
	}
	return nil
}

// History returns a job's recorded attempts, oldest first. A parked job
// has none here: its dead-letter entry holds them (MarkParked).
func (l *Ledger) History(ctx context.Context, id string) ([]Attempt, error) {
	raw, err := l.rdb.LRange(ctx, l.historyKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("ledger history %s: %w", id, err)
	}
	out := make([]Attempt, 0, len(raw))
	for _, r := range raw {
		var a Attempt
		if json.Unmarshal([]byte(r), &a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// WithSend returns h with the send that the state records when h lacks it:
// a job sent on its first try keeps no history (RecordSentMany's fresh
// path writes the record alone), yet that send is an attempt.
func (s State) WithSend(h []Attempt) []Attempt {
	if !s.Sent() {
		return h
	}
	for _, a := range h {
		if a.Outcome == "sent" && a.Gen == s.SentGen {
			return h
		}
	}
	return append(h, Attempt{At: s.SentAt, Gen: s.SentGen, Outcome: "sent", Action: "sent", TraceID: s.TraceID, SpanID: s.SpanID})
}
