package deadletter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/queue"
)

// ParamError is a bad parameter of an operation: bad usage for the CLI
// (exit status 2), 400 for the admin API. Name is the parameter as the
// admin API spells it ("phone_number_id"); the CLI's flag is the same with
// dashes.
type ParamError struct {
	Name    string
	Problem string
}

func (e *ParamError) Error() string {
	if e.Name == "" {
		return e.Problem
	}
	return e.Name + ": " + e.Problem
}

// Flag is the CLI's spelling of the parameter ("--phone-number-id").
func (e *ParamError) Flag() string { return "--" + strings.ReplaceAll(e.Name, "_", "-") }

func paramErr(name, format string, args ...any) error {
	return &ParamError{Name: name, Problem: fmt.Sprintf(format, args...)}
}

// Params are the parameters of every operation as text, as the CLI's flags
// and the admin API's query parameters and JSON body carry them (named
// alike), so that both check them the same way. Empty means not given.
type Params struct {
	IDs           []string
	Reason        string
	Code          string
	PhoneNumberID string
	Template      string
	To            string // a recipient number
	Recipient     string // a recipient's business-scoped user ID
	Since         string
	Limit         string
	Cursor        string
	OlderThan     string
	DryRun        bool
	AsTemplate    string
	Language      string
}

// MaxLimit bounds the page size of a list.
const MaxLimit = 10000

// MaxIDs bounds the ids of one replay or purge call.
const MaxIDs = 10000

// Filter checks the filter parameters.
func (p Params) Filter() (Filter, error) {
	var f Filter
	if p.Reason != "" {
		if !policy.ValidReason(p.Reason) {
			return f, paramErr("reason", "unknown reason %q; want one of window, template, retries_exhausted, invalid, undeliverable, expired, account, unknown", p.Reason)
		}
		f.Reason = p.Reason
	}
	if p.Code != "" {
		n, err := strconv.Atoi(p.Code)
		if err != nil || n < 0 {
			return f, paramErr("code", "%q is not an error code like 131047", p.Code)
		}
		f.Code = &n
	}
	if p.PhoneNumberID != "" {
		if strings.Trim(p.PhoneNumberID, "0123456789") != "" || len(p.PhoneNumberID) > 32 {
			return f, paramErr("phone_number_id", "%q is not a phone number id (digits only)", p.PhoneNumberID)
		}
		f.PhoneNumberID = p.PhoneNumberID
	}
	if p.Template != "" {
		if len(p.Template) > 512 {
			return f, paramErr("template", "longer than 512 bytes")
		}
		f.Template = p.Template
	}
	switch {
	case p.To != "" && p.Recipient != "":
		return f, paramErr("recipient", "give to (a number) or recipient (a business-scoped user ID), not both")
	case p.To != "":
		if err := queue.ValidateRecipient(p.To); err != nil {
			return f, paramErr("to", "%s", problemOf(err))
		}
		f.Recipient = p.To
	case p.Recipient != "":
		if err := queue.ValidateUserID(p.Recipient); err != nil {
			return f, paramErr("recipient", "%s", problemOf(err))
		}
		f.Recipient = p.Recipient
	}
	if p.Since != "" {
		d, err := ParseDuration(p.Since)
		if err != nil {
			return f, paramErr("since", "%v", err)
		}
		f.Since = d
	}
	return f, nil
}

// ListArgs checks the parameters of a list: the filter, the cursor and the
// page size (default 100, at most MaxLimit).
func (p Params) ListArgs() (f Filter, cursor string, limit int, err error) {
	if f, err = p.Filter(); err != nil {
		return f, "", 0, err
	}
	limit = 100
	if p.Limit != "" {
		n, perr := strconv.Atoi(p.Limit)
		switch {
		case perr != nil:
			return f, "", 0, paramErr("limit", "%q is not a whole number", p.Limit)
		case n < 0:
			return f, "", 0, paramErr("limit", "%d is negative", n)
		case n > MaxLimit:
			return f, "", 0, paramErr("limit", "%d is more than %d; page with the cursor", n, MaxLimit)
		case n > 0:
			limit = n
		}
	}
	if _, _, err := parseCursor(p.Cursor); err != nil {
		return f, "", 0, err
	}
	return f, p.Cursor, limit, nil
}

// ReplayRequest checks the parameters of a replay: ids, or a filter that
// names a reason (replaying everything at once is never what an operator
// means), and --as-template only with --language.
func (p Params) ReplayRequest() (ReplayRequest, error) {
	r := ReplayRequest{DryRun: p.DryRun}
	ids, err := checkIDs(p.IDs)
	if err != nil {
		return r, err
	}
	r.IDs = ids
	if len(ids) > 0 {
		if p.Reason != "" || p.Code != "" || p.PhoneNumberID != "" || p.Template != "" || p.Since != "" {
			return r, paramErr("ids", "give ids or a filter, not both")
		}
	} else {
		if p.Reason == "" {
			return r, paramErr("reason", "replay needs ids or a reason (with --code, --template, --phone-number-id to narrow it)")
		}
		if r.Filter, err = p.Filter(); err != nil {
			return r, err
		}
	}
	if p.Limit != "" || p.Cursor != "" || p.OlderThan != "" {
		return r, paramErr("", "replay takes no limit, cursor or older_than")
	}
	if p.AsTemplate != "" || p.Language != "" {
		if p.AsTemplate == "" {
			return r, paramErr("as_template", "--language goes with --as-template NAME")
		}
		if p.Language == "" {
			return r, paramErr("language", "--as-template needs --language CODE (like en_US)")
		}
		if strings.TrimSpace(p.AsTemplate) != p.AsTemplate || len(p.AsTemplate) > 512 {
			return r, paramErr("as_template", "%q is not a template name", p.AsTemplate)
		}
		if strings.Trim(p.Language, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != "" || len(p.Language) > 16 {
			return r, paramErr("language", "%q is not a language code like en_US", p.Language)
		}
		r.AsTemplate, r.Language = p.AsTemplate, p.Language
	}
	return r, nil
}

// PurgeRequest checks the parameters of a purge: ids, or a reason and an
// age (with the other filters to narrow it).
func (p Params) PurgeRequest() (PurgeRequest, error) {
	r := PurgeRequest{DryRun: p.DryRun}
	ids, err := checkIDs(p.IDs)
	if err != nil {
		return r, err
	}
	r.IDs = ids
	if p.AsTemplate != "" || p.Language != "" || p.Limit != "" || p.Cursor != "" || p.Since != "" {
		return r, paramErr("", "purge takes ids, or a reason and older_than with code, phone_number_id, template")
	}
	if len(ids) > 0 {
		if p.Reason != "" || p.Code != "" || p.PhoneNumberID != "" || p.Template != "" || p.OlderThan != "" {
			return r, paramErr("ids", "give ids or a reason with older_than, not both")
		}
		return r, nil
	}
	if p.Reason == "" {
		return r, paramErr("reason", "purge needs ids or a reason with --older-than")
	}
	if p.OlderThan == "" {
		return r, paramErr("older_than", "purge by reason needs --older-than DURATION (0s for all of them)")
	}
	if r.Filter, err = p.Filter(); err != nil {
		return r, err
	}
	if p.OlderThan != "0" && p.OlderThan != "0s" {
		d, err := ParseDuration(p.OlderThan)
		if err != nil {
			return r, paramErr("older_than", "%v", err)
		}
		r.OlderThan = d
	}
	return r, nil
}

func checkIDs(ids []string) ([]string, error) {
	if len(ids) > MaxIDs {
		return nil, paramErr("ids", "%d ids, at most %d in one call", len(ids), MaxIDs)
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := queue.ValidateID(id); err != nil {
			return nil, paramErr("ids", "%q: %s", id, strings.TrimPrefix(err.Error(), "invalid job: id: "))
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// ParseDuration reads a positive duration: Go's syntax ("90m", "36h") or a
// whole number of days ("7d"), which is how operators think of retention.
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("%q is not a duration like 36h, 90m or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 36h, 90m or 7d", s)
	}
	return d, nil
}

// problemOf is a validation error without its "invalid job: field:" lead.
func problemOf(err error) string {
	var ve *queue.ValidationError
	if errors.As(err, &ve) {
		return ve.Problem
	}
	return err.Error()
}
