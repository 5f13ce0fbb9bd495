// Package ledger keeps what waq knows of each job in Redis: whether it was
// sent (and its wamid), how many attempts its current generation has used,
// whether it was parked, and the history of its failed attempts.
//
// The worker reads a job's state before every send, so a job delivered again
// (after a crash, a lost ack, or a second publish past JetStream's duplicate
// window) is acknowledged without a second send. A job that went through
// first time costs one small hash; only jobs that failed keep a history.
//
// A job's generation is its replay count: a job replayed from the
// dead-letter store comes back with generation n+1 and a fresh attempt
// count, while its history goes on.
//
// Keys (prefix P, job id I): P:j:{I} (hash), P:j:{I}:h (list), P:j:{I}:b
// (the job as published, kept for the resend window so that a failure
// reported later by webhook can be parked with it or sent again), P:j:{I}:c
// (a minute's marker of Confirm, with replica waits only), P:w:{wamid}
// (string). The braces are a Redis Cluster hash tag, so each job's keys live
// on one node and one script can touch them together.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
)

// Attempt is one try to send a job (or a decision taken without sending).
type Attempt struct {
	At time.Time `json:"at"`
	// Gen is the job's generation (replay count) when it was tried.
	Gen int `json:"gen,omitempty"`
	// Outcome is "sent", "failed", "throttled", "paused", "expired", "invalid".
	Outcome string `json:"outcome"`
	// Action is the policy's decision: retry, throttle, park, pause.
	Action     string `json:"action,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	// Code is the Graph API error code; nil when the answer carried none.
	Code      *int   `json:"code,omitempty"`
	Subcode   int    `json:"error_subcode,omitempty"`
	FBTraceID string `json:"fbtrace_id,omitempty"`
	// Error is a short description when there is no code (timeout, HTML page).
	Error string `json:"error,omitempty"`
	// Delay is the backoff chosen before the next try, in milliseconds.
	DelayMS int64  `json:"delay_ms,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	Worker  string `json:"worker,omitempty"`
}

// State is what the ledger holds of one job.
type State struct {
	// WAMID is set once the job was sent: its outcome is final.
	WAMID  string
	SentAt time.Time
	// Gen is the newest generation seen.
	Gen int
	// Attempts counts the sends of generation Gen that count towards
	// max_attempts; Throttles counts those answered with a rate limit or a
	// pause, which do not.
	Attempts  int
	Throttles int
	// Parked is the dead-letter reason when generation ParkedGen was parked.
	Parked    string
	ParkedGen int
	// SentGen is the generation that was sent.
	SentGen int
	// TraceID and SpanID are the attempt span of the send, for the status
	// spans of webhooks.
	TraceID, SpanID string
	// Status is the latest delivery status a webhook reported (sent,
	// delivered, read, failed) and StatusAt when it was reported.
	Status   string
	StatusAt time.Time
	// FailedWAMID is the last wamid whose failure (by webhook) was acted on.
	FailedWAMID string
}

// Sent reports whether the job's outcome is "sent".
func (s State) Sent() bool { return s.WAMID != "" }

// HasSent reports whether generation gen (or a later one) was sent.
func (s State) HasSent(gen int) bool { return s.WAMID != "" && s.SentGen >= gen }

// ParkedAt reports whether generation gen of the job is already parked.
func (s State) ParkedAt(gen int) bool { return s.Parked != "" && s.ParkedGen >= gen }

// Ledger is the Redis-backed job ledger. It is safe for concurrent use.
type Ledger struct {
	rdb    redis.Cmdable
	prefix string
	ttl    time.Duration
	resend time.Duration
	wait   conn.Replicas
}

// Options configure a Ledger; the zero value means the defaults.
type Options struct {
	// Prefix of every key. Defaults to "waq".
	Prefix string
	// Retention is how long a job's record is kept after its last change:
	// long enough for redeliveries, late webhooks (Meta retries them for up
	// to 7 days) and producers that publish an id again. Defaults to 168h.
	Retention time.Duration
	// ResendWindow is how long the body of a sent job is kept, so that a
	// failure reported later by webhook can park it (with the job, for a
	// replay) or send it again. Defaults to 24h; negative keeps none.
	ResendWindow time.Duration
	// WaitReplicas is how many replicas must acknowledge an outcome (a sent
	// record, a webhook failure that parks a job) before the write returns
	// (Redis WAIT, in the write's own round trip). Defaults to 0: the
	// primary's answer suffices. Not supported on a Redis Cluster.
	WaitReplicas int
	// WaitTimeout bounds that wait. Defaults to 1s.
	WaitTimeout time.Duration
}

// New returns a ledger over rdb.
func New(rdb redis.Cmdable, opts Options) *Ledger {
	l := &Ledger{rdb: rdb, prefix: opts.Prefix, ttl: opts.Retention, resend: opts.ResendWindow,
		wait: conn.Replicas{N: opts.WaitReplicas, Timeout: opts.WaitTimeout}}
	if l.prefix == "" {
		l.prefix = "waq"
	}
	if l.ttl <= 0 {
		l.ttl = 168 * time.Hour
	}
	if l.resend == 0 {
		l.resend = 24 * time.Hour
	}
	return l
}

func (l *Ledger) stateKey(id string) string   { return l.prefix + ":j:{" + id + "}" }
func (l *Ledger) historyKey(id string) string { return l.prefix + ":j:{" + id + "}:h" }
func (l *Ledger) bodyKey(id string) string    { return l.prefix + ":j:{" + id + "}:b" }
func (l *Ledger) wamidKey(wamid string) string {
	return l.prefix + ":w:" + wamid
}

// Load returns a job's state; the zero State when the ledger has none.
func (l *Ledger) Load(ctx context.Context, id string) (State, error) {
	m, err := l.rdb.HGetAll(ctx, l.stateKey(id)).Result()
	if err != nil {
		return State{}, fmt.Errorf("ledger load %s: %w", id, err)
	}
	return parseState(m), nil
}

// LoadMany returns the states of several jobs in one round trip.
func (l *Ledger) LoadMany(ctx context.Context, ids []string) ([]State, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, l.stateKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger load: %w", err)
	}
	out := make([]State, len(ids))
	for i, c := range cmds {
		out[i] = parseState(c.Val())
	}
	return out, nil
}

func parseState(m map[string]string) State {
	var s State
	if len(m) == 0 {
		return s
	}
	s.WAMID = m["w"]
	s.SentAt = msTime(m["s"])
	s.Gen = atoi(m["g"])
	s.Attempts = atoi(m["n"])
	s.Throttles = atoi(m["t"])
	s.Parked = m["p"]
	s.ParkedGen = atoi(m["pg"])
	s.Status = m["st"]
	s.StatusAt = msTime(m["sa"])
	s.SentGen = atoi(m["sg"])
	s.TraceID = m["ti"]
	s.SpanID = m["si"]
	s.FailedWAMID = m["fw"]
	return s
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func msTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

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

// sentScript records the outcome "sent", and keeps the job's body for the
// resend window. KEYS: state, history, body.
// ARGV: wamid, sent ms, gen, ttl ms, job id, attempt JSON, trace id, span id,
// body ("" keeps none), resend ms.
var sentScript = redis.NewScript(`
if ARGV[9] ~= '' then redis.call('SET', KEYS[3], ARGV[9], 'PX', ARGV[10]) end
redis.call('HSET', KEYS[1], 'w', ARGV[1], 's', ARGV[2], 'sg', ARGV[3], 'ti', ARGV[7], 'si', ARGV[8])
redis.call('HDEL', KEYS[1], 'p', 'pg')
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0')
if tonumber(ARGV[3]) > g then redis.call('HSET', KEYS[1], 'g', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
`)

// RecordSent durably records that the job was sent as wamid. The attempt
// joins the history only when the job has one (it failed before), so a job
// sent first time costs one small hash.
func (l *Ledger) RecordSent(ctx context.Context, id string, gen int, wamid string, a Attempt, body []byte) error {
	return l.RecordSentMany(ctx, []SentRecord{{ID: id, Gen: gen, WAMID: wamid, Attempt: a, Body: body}})
}

// SentRecord is one job sent, for RecordSentMany.
type SentRecord struct {
	ID      string
	Gen     int
	WAMID   string
	Attempt Attempt
	// Body is the job as published, kept for the resend window.
	Body []byte
	// Fresh says the job had no record at all when its delivery began (the
	// common case: sent first time, generation 0): there is no history to
	// append to and no parked mark to clear, so the record is written with
	// plain commands instead of a script, which costs Redis about half.
	Fresh bool
}

// RecordSentMany records several sent jobs in one round trip. On error, none
// may be assumed recorded (the caller retries them all; the writes are
// idempotent).
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
	write := func(c redis.Cmdable) []redis.Cmder {
		cmds := make([]redis.Cmder, 0, 2*len(recs))
		for i, r := range recs {
			var body []byte
			if l.resend > 0 {
				body = r.Body
			}
			if r.Fresh {
				// The body and the wamid first, the record last: a record
				// found means the rest is there.
				if len(body) > 0 {
					cmds = append(cmds, c.Set(ctx, l.bodyKey(r.ID), body, l.resend))
				}
				cmds = append(cmds, c.Set(ctx, l.wamidKey(r.WAMID), r.ID, l.ttl))
				k := l.stateKey(r.ID)
				fields := []any{"w", r.WAMID, "s", r.Attempt.At.UnixMilli(), "sg", r.Gen, "ti", r.Attempt.TraceID, "si", r.Attempt.SpanID}
				if r.Gen > 0 {
					fields = append(fields, "g", r.Gen)
				}
				cmds = append(cmds, c.HSet(ctx, k, fields...))
				cmds = append(cmds, c.PExpire(ctx, k, l.ttl))
				continue
			}
			cmds = append(cmds, sentScript.EvalSha(ctx, c, []string{l.stateKey(r.ID), l.historyKey(r.ID), l.bodyKey(r.ID)},
				r.WAMID, r.Attempt.At.UnixMilli(), r.Gen, ttl, r.ID, datas[i], r.Attempt.TraceID, r.Attempt.SpanID, body, l.resend.Milliseconds()))
			cmds = append(cmds, c.Set(ctx, l.wamidKey(r.WAMID), r.ID, l.ttl))
		}
		return cmds
	}
	err := l.outcome(ctx, write)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A restarted Redis (or a replica promoted by a failover) has
		// forgotten its scripts; the writes are idempotent, so load and
		// write again.
		if err = sentScript.Load(ctx, l.rdb).Err(); err == nil {
			err = l.outcome(ctx, write)
		}
	}
	if err != nil {
		return fmt.Errorf("ledger record sent: %w", err)
	}
	return nil
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
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		fn(p)
		return nil
	})
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
// The dead-letter entry must be durable before this is called.
func (l *Ledger) MarkParked(ctx context.Context, id string, gen int, reason string) error {
	k := l.stateKey(id)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "p", reason, "pg", gen)
		p.PExpire(ctx, k, l.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger mark parked %s: %w", id, err)
	}
	return nil
}

// History returns a job's recorded attempts, oldest first.
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

// JobByWAMID returns the id of the job sent as wamid, or "" when the ledger
// does not know it.
func (l *Ledger) JobByWAMID(ctx context.Context, wamid string) (string, error) {
	id, err := l.rdb.Get(ctx, l.wamidKey(wamid)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ledger wamid %s: %w", wamid, err)
	}
	return id, nil
}

// statusRank orders delivery statuses so that an older one arriving late
// does not overwrite a newer one.
var statusScript = redis.NewScript(`
local rank = {sent=1, delivered=2, read=3, failed=4}
local cur = redis.call('HGET', KEYS[1], 'st')
if cur and (rank[cur] or 0) >= (rank[ARGV[1]] or 0) then return 0 end
redis.call('HSET', KEYS[1], 'st', ARGV[1], 'sa', ARGV[2])
return 1
`)

// RecordStatus records a webhook's delivery status on a job unless a later
// status (sent < delivered < read < failed) is already recorded. It reports
// whether the status was new.
func (l *Ledger) RecordStatus(ctx context.Context, id, status string, at time.Time) (bool, error) {
	n, err := statusScript.Run(ctx, l.rdb, []string{l.stateKey(id)}, status, at.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("ledger record status %s: %w", id, err)
	}
	return n == 1, nil
}

// Body returns the job as published, or nil when it is no longer kept.
func (l *Ledger) Body(ctx context.Context, id string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, l.bodyKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger body %s: %w", id, err)
	}
	return b, nil
}

// webhookScript records that the failure of wamid (reported by webhook) was
// acted on: parked (mode "park": the job is no longer "sent") or sent again
// (mode "resend"). It refuses (0) when that failure was already acted on, and
// (-1) when the job's current wamid is another one.
// KEYS: state, history. ARGV: wamid, mode, reason, gen, attempt JSON, ttl ms.
var webhookScript = redis.NewScript(`
local st = redis.call('HMGET', KEYS[1], 'w', 'fw')
if st[2] == ARGV[1] then return 0 end
if st[1] ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'fw', ARGV[1])
if ARGV[2] == 'park' then
  redis.call('HDEL', KEYS[1], 'w')
  redis.call('HSET', KEYS[1], 'p', ARGV[3], 'pg', ARGV[4])
else
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], -200, -1)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
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
	keys := []string{l.stateKey(id), l.historyKey(id)}
	args := []any{wamid, mode, reason, gen, data, l.ttl.Milliseconds()}
	var wait conn.Replicas
	if park {
		// The job's outcome changes from sent to parked: as durable as a
		// sent record.
		wait = l.wait
	}
	res, err := wait.RunScript(ctx, l.rdb, webhookScript, keys, args...)
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
	for _, s := range []*redis.Script{recordScript, sentScript, webhookScript, statusScript} {
		if err := s.Load(ctx, l.rdb).Err(); err != nil {
			return fmt.Errorf("ledger load scripts: %w", err)
		}
	}
	return nil
}

// Ping reports whether Redis answers.
func (l *Ledger) Ping(ctx context.Context) error { return l.rdb.Ping(ctx).Err() }
