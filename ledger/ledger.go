// Package ledger keeps what waq knows of each job in Redis: whether it was
// sent (and as which wamid), how many attempts its current generation has
// used, whether it was parked, and the history of its failed attempts.
//
// The worker reads a job's state before every send, so a job delivered again
// (after a crash, a lost ack, or a second publish past JetStream's duplicate
// window) is acknowledged without a second send. A job that went through
// first time costs about a hundred bytes of Redis for the whole retention:
// a record in the compact index (index.go) and the wamid's entry, both
// fields of small bucket hashes. Its body goes to a JetStream stream with a
// max age (Bodies), read back only when a webhook reports a failure that
// must park the job or send it again. Only jobs that failed keep a hash and
// a history of their own, and jobs whose status webhooks gave their
// recipient's business-scoped user IDs a hash (RecordRecipientIDs).
//
// A job's generation is its replay count: a job replayed from the
// dead-letter store comes back with generation n+1 and a fresh attempt
// count, while its history goes on.
//
// Per-job keys (prefix P, job id I): P:j:{I} (hash: generation, counters,
// parked mark, the recipient's BSUIDs), P:j:{I}:h (list: the history), P:j:{I}:c (a minute's marker
// of Confirm, with replica waits only). The braces are a Redis Cluster hash
// tag, so one script can touch a job's hash and history together. Records
// written by versions before the compact index (P:j:{I} with the wamid,
// P:w:{wamid}, P:j:{I}:b) are still read until they expire.
package ledger

import (
	"context"
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
	// WAMID is the wamid of a sent job when its record keeps it (records
	// written before the compact index); the compact index keeps only a
	// digest, so use Sent and SentAs.
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
	// MessageStatus is the send answer's messages[0].message_status
	// ("accepted", "held_for_quality_assessment", "paused"; Other for a
	// value Meta added since), "" when the answer gave none.
	MessageStatus string
	// Pricing is the first pricing object a status webhook gave for the
	// job's wamid; nil before one came.
	Pricing *Pricing
	// Recipient is what status webhooks told of the recipient's
	// business-scoped user IDs (RecordRecipientIDs); zero when none did.
	Recipient RecipientIDs
	// FailedWAMID is the last wamid whose failure (by webhook) was acted
	// on, in records written before the compact index; use FailureActedOn.
	FailedWAMID string

	// From the compact index.
	knownWAMID string
	compact    bool
	sent       bool
	failDone   bool
	wsum       uint32
	bodySeq    uint64
}

// Sent reports whether the job's outcome is "sent".
func (s State) Sent() bool { return s.sent || s.WAMID != "" }

// HasSent reports whether generation gen (or a later one) was sent.
func (s State) HasSent(gen int) bool { return s.Sent() && s.SentGen >= gen }

// SentAs reports whether the job's outcome is "sent" as wamid (and not
// replaced by a later send).
func (s State) SentAs(wamid string) bool {
	if s.compact {
		return s.sent && s.wsum == wamidSum(wamid)
	}
	return s.WAMID != "" && s.WAMID == wamid
}

// FailureActedOn reports whether a webhook failure of wamid was already
// acted on (parked or sent again).
func (s State) FailureActedOn(wamid string) bool {
	if s.compact {
		return s.failDone && s.wsum == wamidSum(wamid)
	}
	return s.FailedWAMID != "" && s.FailedWAMID == wamid
}

// ParkedAt reports whether generation gen of the job is already parked.
func (s State) ParkedAt(gen int) bool { return s.Parked != "" && s.ParkedGen >= gen }

// Ledger is the Redis-backed job ledger. It is safe for concurrent use.
type Ledger struct {
	rdb    redis.Cmdable
	prefix string
	ttl    time.Duration
	resend time.Duration
	wait   conn.Replicas
	idx    *index
	bodies *Bodies
	onBody func(error)
}

// Options configure a Ledger; the zero value means the defaults.
type Options struct {
	// Prefix of every key. Defaults to "waq".
	Prefix string
	// Retention is how long a job's record is kept after it was sent: long
	// enough for redeliveries, late webhooks (Meta retries them for up to
	// 7 days) and producers that publish an id again. Records of the
	// compact index live between 1 and 1.25 times this long. Defaults to
	// 168h.
	Retention time.Duration
	// ResendWindow is how long the body of a sent job is kept (on Bodies),
	// so that a failure reported later by webhook can park it (with the
	// job, for a replay) or send it again. Defaults to 24h; negative keeps
	// none.
	ResendWindow time.Duration
	// Bodies is where sent jobs' bodies are kept. Without it none are kept
	// (a webhook failure then parks the job without its body).
	Bodies *Bodies
	// OnBodyError is told when a body could not be kept (the job is
	// recorded as sent without it). Defaults to nothing.
	OnBodyError func(error)
	// Buckets is the bucket count of the compact index's first window;
	// later windows size themselves from their predecessor's count.
	// Defaults to 256 (right for up to about 20,000 sends in the first
	// quarter of the retention; more costs more memory in that window only:
	// overfull buckets are stored as ordinary hashes).
	Buckets int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
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
		wait: conn.Replicas{N: opts.WaitReplicas, Timeout: opts.WaitTimeout}, bodies: opts.Bodies, onBody: opts.OnBodyError}
	if l.prefix == "" {
		l.prefix = "waq"
	}
	if l.ttl <= 0 {
		l.ttl = 168 * time.Hour
	}
	if l.resend == 0 {
		l.resend = 24 * time.Hour
	}
	if l.onBody == nil {
		l.onBody = func(error) {}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	l.idx = newIndex(rdb, l.prefix, l.ttl, opts.Buckets, now)
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
	st, _, err := l.load(ctx, id)
	return st, err
}

// load returns a job's state and, when the compact index has it, where.
func (l *Ledger) load(ctx context.Context, id string) (State, found, error) {
	out, fs, err := l.loadMany(ctx, []string{id})
	if err != nil {
		return State{}, found{}, fmt.Errorf("ledger load %s: %w", id, err)
	}
	return out[0], fs[0], nil
}

// LoadMany returns the states of several jobs in one round trip.
func (l *Ledger) LoadMany(ctx context.Context, ids []string) ([]State, error) {
	out, _, err := l.loadMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("ledger load: %w", err)
	}
	return out, nil
}

func (l *Ledger) loadMany(ctx context.Context, ids []string) ([]State, []found, error) {
	ws, ns, err := l.idx.alive(ctx)
	if err != nil {
		return nil, nil, err
	}
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	reads := make([][]*redis.StringCmd, len(ids))
	ds := make([]digest, len(ids))
	err = l.batch(ctx, func(c redis.Cmdable) []redis.Cmder {
		var cmds []redis.Cmder
		for i, id := range ids {
			ds[i] = jobDigest(id)
			hashes[i] = c.HGetAll(ctx, l.stateKey(id))
			cmds = append(cmds, hashes[i])
			reads[i] = l.idx.lookupCmds(ctx, c, ds[i], ws, ns)
			for _, r := range reads[i] {
				cmds = append(cmds, r)
			}
		}
		return cmds
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]State, len(ids))
	fs := make([]found, len(ids))
	for i := range ids {
		out[i] = parseState(hashes[i].Val())
		f, ok, err := l.idx.pick(ds[i], ws, ns, reads[i])
		if err != nil {
			return nil, nil, err
		}
		if ok {
			f.applyTo(&out[i])
			fs[i] = f
		}
	}
	return out, fs, nil
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
	s.knownWAMID = m["sw"]
	s.Recipient = RecipientIDs{UserID: m["ru"], ParentUserID: m["rp"]}
	if pr := m["pr"]; len(pr) == 2 {
		s.Pricing = decodePricing(pr[0], pr[1])
	}
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
