// Package deadletter is the Redis store of parked jobs and the operations on
// it: park, list, show, stats, replay, purge, export. The CLI (`waq dlq`) and
// the admin HTTP API both call this package, so they behave the same.
//
// The store is 16 shards, each under a hash tag of its own ({dlq:K}, for K
// in shard.go's table), an entry in the shard of its recipient: in a Redis
// Cluster the store spreads over 16 slots, and one script updates an entry,
// its indexes and its counters atomically within its shard. Lists, stats,
// replays and purges read every shard at once and merge (scan.go). The
// keys under {dlq}, where the whole store was before the shards, are read
// as one more shard until their entries expire.
//
// Keys of a shard (B = prefix:{dlq:K}): B:v:ID (the entry: its index
// values and its JSON compressed, encoding.go; prefix:{dlq}:e:ID is a hash
// of the JSON, as entries parked before that were stored, still read),
// B:i:<dim>=<value> (sorted sets of ids scored by parked time, one per
// reason, phone number and template: the reasons' are every entry between
// them, and a code's entries are found in its reasons'; entries parked
// before are in a B:i:all and a B:i:code=<code> too, cleared as they go),
// and B:c:<scope> (hashes of counts, for stats without a scan, "all" and
// one per reason, code, phone number and template; B:c:<scope>:to counts
// each recipient's entries). A parked job's attempts are its entry's: the
// ledger drops its history list when the job parks.
package deadletter

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/waqhq/waq/ledger"
)

// Entry is one parked job.
type Entry struct {
	// ID is the job's id.
	ID string `json:"id"`
	// Reason is one of the stable dead-letter reasons (window, template,
	// retries_exhausted, invalid, undeliverable, expired, account, unknown).
	Reason string `json:"reason"`
	// Problem explains the reason in words (a validation error, the
	// policy's decision).
	Problem string `json:"problem,omitempty"`
	// Job is the job as published, when its body was JSON.
	Job json.RawMessage `json:"job,omitempty"`
	// Raw is the body as published when it was not JSON (base64 in JSON).
	Raw []byte `json:"raw,omitempty"`
	// Subject is the NATS subject the job came on.
	Subject       string `json:"subject,omitempty"`
	PhoneNumberID string `json:"phone_number_id,omitempty"`
	// To is the recipient's number; Recipient its business-scoped user ID
	// when the job was addressed by one. At most one is set.
	To          string            `json:"to,omitempty"`
	Recipient   string            `json:"recipient,omitempty"`
	MessageType string            `json:"type,omitempty"`
	Template    string            `json:"template,omitempty"`
	Language    string            `json:"language,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// LastError is the last error Meta (or the transport) gave.
	LastError *LastError `json:"last_error,omitempty"`
	// Attempts is every attempt, across worker processes and replays.
	Attempts []ledger.Attempt `json:"attempts"`
	// TraceID and SpanID are the trace of the attempt that parked the job;
	// a replay links to it.
	TraceID  string    `json:"trace_id,omitempty"`
	SpanID   string    `json:"span_id,omitempty"`
	ParkedAt time.Time `json:"parked_at"`
	// Replayed is how often the job was replayed before it was parked this
	// time (its generation).
	Replayed int `json:"replayed"`
}

// LastError is the full error answer of the attempt that parked the job.
type LastError struct {
	HTTPStatus int    `json:"http_status,omitempty"`
	Code       *int   `json:"code,omitempty"`
	Subcode    int    `json:"error_subcode,omitempty"`
	Type       string `json:"type,omitempty"`
	Title      string `json:"title,omitempty"`
	Message    string `json:"message,omitempty"`
	Details    string `json:"details,omitempty"`
	UserTitle  string `json:"error_user_title,omitempty"`
	UserMsg    string `json:"error_user_msg,omitempty"`
	FBTraceID  string `json:"fbtrace_id,omitempty"`
	// Transport says what went wrong when there was no usable answer.
	Transport string `json:"transport,omitempty"`
}

// Code returns the entry's error code and whether it has one.
func (e *Entry) Code() (int, bool) {
	if e.LastError == nil || e.LastError.Code == nil {
		return 0, false
	}
	return *e.LastError.Code, true
}

// FBTraceID is the last error's fbtrace_id, or "".
func (e *Entry) FBTraceID() string {
	if e.LastError == nil {
		return ""
	}
	return e.LastError.FBTraceID
}

// Addressee is the recipient however the job named it: the number, or the
// business-scoped user ID.
func (e *Entry) Addressee() string {
	if e.To != "" {
		return e.To
	}
	return e.Recipient
}

// codeKey is the index value of an entry's code: the number, or "none".
func (e *Entry) codeKey() string {
	if c, ok := e.Code(); ok {
		return strconv.Itoa(c)
	}
	return "none"
}

// Summary is the line `waq dlq list --json` prints for an entry.
type Summary struct {
	ID            string    `json:"id"`
	Reason        string    `json:"reason"`
	Code          *int      `json:"code"`
	FBTraceID     string    `json:"fbtrace_id"`
	TraceID       string    `json:"trace_id"`
	PhoneNumberID string    `json:"phone_number_id"`
	To            string    `json:"to"`
	Recipient     string    `json:"recipient,omitempty"`
	Template      string    `json:"template"`
	Attempts      int       `json:"attempts"`
	ParkedAt      time.Time `json:"parked_at"`
	Replayed      int       `json:"replayed"`
	Problem       string    `json:"problem,omitempty"`
}

// Summary returns the list line of the entry.
func (e *Entry) Summary() Summary {
	s := Summary{
		ID: e.ID, Reason: e.Reason, FBTraceID: e.FBTraceID(), TraceID: e.TraceID,
		PhoneNumberID: e.PhoneNumberID, To: e.To, Recipient: e.Recipient, Template: e.Template,
		Attempts: e.sends(), ParkedAt: e.ParkedAt.UTC(), Replayed: e.Replayed, Problem: e.Problem,
	}
	if c, ok := e.Code(); ok {
		s.Code = &c
	}
	return s
}

// sends counts the attempts that reached the API.
func (e *Entry) sends() int {
	n := 0
	for _, a := range e.Attempts {
		if a.Outcome == "failed" || a.Outcome == "throttled" || a.Outcome == "sent" {
			n++
		}
	}
	return n
}
