package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/waqhq/waq/queue"
)

// Query is one search of the store: what an operator has in hand when a
// ticket, a trace or a customer names a message. Set one field; Text
// guesses which from its shape.
type Query struct {
	// ID is a job id.
	ID string
	// FBTraceID is Meta's fbtrace_id, of the last error or of any attempt.
	FBTraceID string
	// WAMID is the message id Meta gave a send (a job parked by a status
	// webhook was sent first); it is found through the sent records.
	WAMID string
	// RecipientHash is the recipient's stand-in in spans and logs
	// (waq.recipient.hash, "r_" and 16 hex digits): a recipient is
	// searched by it, never by the number in clear.
	RecipientHash string
	// Text is one search box: a wamid ("wamid."...), a recipient hash, or
	// else a job id and, when no entry has that id, an fbtrace_id.
	Text string
}

// Search methods, as SearchResult.By names them.
const (
	ByID            = "id"
	ByFBTraceID     = "fbtrace_id"
	ByWAMID         = "wamid"
	ByRecipientHash = "recipient_hash"
)

// SearchOptions give Search what the store alone does not hold.
type SearchOptions struct {
	// JobByWAMID returns the job id a wamid was sent for ("" when none is
	// known), as ledger.JobByWAMID does; nil refuses a wamid search.
	JobByWAMID func(ctx context.Context, wamid string) (string, error)
	// HashRecipient returns the recipient hash of a number, with the key
	// every worker uses; nil refuses a recipient search.
	HashRecipient func(number string) string
	// MaxScan bounds the entries a search by fbtrace_id or recipient reads,
	// newest first. Defaults to MaxSearchScan.
	MaxScan int
}

// MaxSearchScan is the default bound of a scanning search: the store has
// no index by fbtrace_id or recipient, so such a search reads entries,
// newest first, and says when it stopped before the oldest.
const MaxSearchScan = 50_000

// SearchResult is what a search found.
type SearchResult struct {
	// By is how the query was read: id, fbtrace_id, wamid or
	// recipient_hash; Value what was looked for.
	By    string `json:"by"`
	Value string `json:"value"`
	// JobID is the job the query names (the id itself, or a wamid's job),
	// parked or not: a job that was replayed and sent has no entry, and
	// `waq job show JOB_ID` tells what became of it.
	JobID string `json:"job_id,omitempty"`
	// Entries are the matching entries, newest first, at most the limit.
	Entries []*Entry `json:"-"`
	// Scanned is how many entries a scanning search read; Complete is
	// false when it stopped at MaxScan (or the limit) before the oldest.
	Scanned  int  `json:"scanned"`
	Complete bool `json:"complete"`
}

// Search finds the entries q names, at most limit (default 100). A query
// that is not well formed is a *ParamError.
func (s *Store) Search(ctx context.Context, q Query, o SearchOptions, limit int) (*SearchResult, error) {
	if limit <= 0 || limit > MaxLimit {
		limit = 100
	}
	if o.MaxScan <= 0 {
		o.MaxScan = MaxSearchScan
	}
	q, err := q.resolve()
	if err != nil {
		return nil, err
	}
	switch {
	case q.WAMID != "":
		if o.JobByWAMID == nil {
			return nil, &ParamError{Name: "wamid", Problem: "a wamid search needs the sent records, which this caller does not read"}
		}
		id, err := o.JobByWAMID(ctx, q.WAMID)
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		res := &SearchResult{By: ByWAMID, Value: q.WAMID, JobID: id, Complete: true}
		if id != "" {
			res.Entries, err = s.byID(ctx, id)
		}
		return res, err
	case q.RecipientHash != "":
		if o.HashRecipient == nil {
			return nil, &ParamError{Name: "recipient_hash", Problem: "a recipient search needs the recipient hash key, which this caller does not have"}
		}
		return s.scanSearch(ctx, ByRecipientHash, q.RecipientHash, o.MaxScan, limit, func(e *Entry) bool {
			a := e.Addressee()
			return a != "" && o.HashRecipient(a) == q.RecipientHash
		})
	case q.FBTraceID != "":
		return s.scanSearch(ctx, ByFBTraceID, q.FBTraceID, o.MaxScan, limit, func(e *Entry) bool { return e.hasFBTraceID(q.FBTraceID) })
	}
	// By id; the search box falls back to an fbtrace_id.
	entries, err := s.byID(ctx, q.ID)
	if err != nil || len(entries) > 0 || q.Text == "" {
		return &SearchResult{By: ByID, Value: q.ID, JobID: q.ID, Entries: entries, Complete: true}, err
	}
	res, err := s.scanSearch(ctx, ByFBTraceID, q.ID, o.MaxScan, limit, func(e *Entry) bool { return e.hasFBTraceID(q.ID) })
	if err == nil && len(res.Entries) == 0 {
		// Nothing has it as an fbtrace_id either: say what was tried
		// first, the job id (whose job may have been sent).
		res.By, res.JobID = ByID, q.ID
	}
	return res, err
}

// resolve checks the query and reads Text.
func (q Query) resolve() (Query, error) {
	set := 0
	for _, v := range []string{q.ID, q.FBTraceID, q.WAMID, q.RecipientHash, q.Text} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return q, &ParamError{Name: "search", Problem: "give one of a job id, an fbtrace_id, a wamid or a recipient hash"}
	}
	if t := strings.TrimSpace(q.Text); t != "" {
		switch {
		case strings.HasPrefix(t, "wamid."):
			q.WAMID = t
		case IsRecipientHash(t):
			q.RecipientHash = t
		default:
			q.ID = t
		}
		if q.ID == "" {
			q.Text = ""
		}
	}
	if q.RecipientHash != "" && !IsRecipientHash(q.RecipientHash) {
		return q, &ParamError{Name: "recipient_hash", Problem: "want r_ and 16 hex digits, as waq.recipient.hash shows it (search by the hash, never the number)"}
	}
	for name, v := range map[string]string{"id": q.ID, "fbtrace_id": q.FBTraceID, "wamid": q.WAMID} {
		if v == "" {
			continue
		}
		if err := queue.ValidateID(v); err != nil {
			return q, &ParamError{Name: name, Problem: strings.TrimPrefix(err.Error(), "invalid job: id: ")}
		}
	}
	return q, nil
}

// IsRecipientHash reports whether s has the shape of a recipient hash
// (telemetry.RecipientHasher): "r_" and 16 lowercase hex digits.
func IsRecipientHash(s string) bool {
	if len(s) != 18 || !strings.HasPrefix(s, "r_") {
		return false
	}
	for _, c := range s[2:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) byID(ctx context.Context, id string) ([]*Entry, error) {
	e, err := s.Show(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return []*Entry{e}, nil
}

// scanSearch reads entries newest first, through List's pages, and keeps
// those match accepts.
func (s *Store) scanSearch(ctx context.Context, by, value string, maxScan, limit int, match func(*Entry) bool) (*SearchResult, error) {
	res := &SearchResult{By: by, Value: value, Complete: true}
	cursor := ""
	for res.Scanned < maxScan {
		page, err := s.List(ctx, Filter{}, cursor, min(500, maxScan-res.Scanned))
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		for _, e := range page.Entries {
			res.Scanned++
			if match(e) {
				if len(res.Entries) == limit {
					res.Complete = false
					return res, nil
				}
				res.Entries = append(res.Entries, e)
			}
		}
		if page.Next == "" {
			return res, nil
		}
		cursor = page.Next
	}
	res.Complete = false
	return res, nil
}

// hasFBTraceID reports whether the last error or any attempt carries fb.
func (e *Entry) hasFBTraceID(fb string) bool {
	if e.FBTraceID() == fb {
		return true
	}
	for _, a := range e.Attempts {
		if a.FBTraceID == fb {
			return true
		}
	}
	return false
}
