package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/graph"
)

// Action is what the worker does with a failed send.
type Action string

// The actions of SPEC §3.
const (
	// Retry sends the job again after Decision.Delay; it counts against
	// max_attempts.
	Retry Action = "retry"
	// Throttle slows Decision.Scope down, then sends again; it does not
	// count against max_attempts, only against max_sends.
	Throttle Action = "throttle"
	// Park puts the job in the dead-letter store with Decision.Reason; it is
	// never sent again unless an operator replays it.
	Park Action = "park"
	// Pause stops sending for Decision.Scope, leaves the jobs in the
	// stream and probes; like Throttle it counts only against max_sends.
	Pause Action = "pause"
)

func (a Action) valid() bool {
	switch a {
	case Retry, Throttle, Park, Pause:
		return true
	}
	return false
}

// Scope says what a throttle or pause applies to.
type Scope string

// The scopes. ScopeJob is the empty string: retry and park concern only the
// job at hand.
const (
	ScopeJob       Scope = ""
	ScopeRecipient Scope = "recipient" // one sender-recipient pair (131056)
	ScopeNumber    Scope = "number"    // one business phone number
	ScopeWABA      Scope = "waba"      // every number of one WhatsApp Business Account
	ScopeApp       Scope = "app"       // every number the app sends for
	ScopeToken     Scope = "token"     // every number that uses the same access token
	ScopeTemplate  Scope = "template"  // one template in one language (132015, 132016): its jobs are held
)

// throttleScopes and pauseScopes are the scopes each action accepts; the
// first is the one a file rule gets when it names none.
var (
	throttleScopes = []Scope{ScopeNumber, ScopeRecipient, ScopeWABA, ScopeApp}
	pauseScopes    = []Scope{ScopeNumber, ScopeWABA, ScopeApp, ScopeToken, ScopeTemplate}
)

// Dead-letter reasons: the stable strings of SPEC §3, stored in dead-letter
// entries and accepted by `waq dlq --reason`.
const (
	ReasonWindow           = "window"            // outside the 24-hour customer service window (131047)
	ReasonTemplate         = "template"          // template missing, paused, disabled, parameters wrong
	ReasonRetriesExhausted = "retries_exhausted" // a retry or throttle rule's attempts are spent
	ReasonInvalid          = "invalid"           // the job or recipient is malformed, or the API calls the request invalid
	ReasonUndeliverable    = "undeliverable"     // 131026 and kin
	ReasonExpired          = "expired"           // not_after passed before the job could be sent
	ReasonAccount          = "account"           // a problem only a person can fix, after a pause gave up
	ReasonUnknown          = "unknown"           // a code no rule names, once its default retries are spent
)

var reasons = []string{
	ReasonWindow, ReasonTemplate, ReasonRetriesExhausted, ReasonInvalid,
	ReasonUndeliverable, ReasonExpired, ReasonAccount, ReasonUnknown,
}

// ValidReason reports whether s is one of the stable dead-letter reasons.
func ValidReason(s string) bool { return slices.Contains(reasons, s) }

// Reasons returns the stable dead-letter reasons, in SPEC order.
func Reasons() []string { return slices.Clone(reasons) }

// Built-in bounds (SPEC §3, Appendix A).
const (
	// DefaultMaxAttempts bounds the sends of a job that retry rules allow,
	// the first send included.
	DefaultMaxAttempts = 8
	// DefaultMaxSends bounds every send of a job, throttled and paused ones
	// included. Throttle and pause do not use up max_attempts (a rate limit
	// says nothing about the message), but a job that is throttled forever
	// must still end; 50 sends at the default backoff span hours.
	DefaultMaxSends = 50
)

// defaultBackoff is the built-in backoff: 30 s, doubling, at most 15 min,
// ±20% jitter (never below 30 s; see Backoff.Delay). Policy.Defaults
// returns it for the built-in table.
var defaultBackoff = Backoff{Initial: 30 * time.Second, Multiplier: 2, Max: 15 * time.Minute, Jitter: 0.2}

// SourceDefault is Rule.Source for the rows of the built-in table.
const SourceDefault = "default"

// Range is an inclusive range of codes or HTTP statuses, such as Meta's
// "200-299" (API Permission).
type Range struct{ Lo, Hi int }

// Contains reports whether Lo <= v <= Hi.
func (r Range) Contains(v int) bool { return r.Lo <= v && v <= r.Hi }

func (r Range) String() string { return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi) }

// Rule is one row of the policy: what it matches and what it decides.
// Rules returned by a Policy must not be modified.
type Rule struct {
	// Codes and CodeRanges match answers that carry a Graph API error code.
	Codes      []int
	CodeRanges []Range
	// HTTPStatus and HTTPRanges match answers that carry no code (and
	// transport failures that have a status, such as an HTML 502 page).
	HTTPStatus []int
	HTTPRanges []Range
	// Transport matches sends without a usable answer: timeouts, refused
	// connections, bodies that are not JSON, cut or too large.
	Transport bool
	// Action is what to do.
	Action Action
	// Reason is the dead-letter reason: the reason a park rule parks with,
	// or the reason a retry, throttle or pause rule parks with once its
	// attempts are spent. Always set in a built Policy.
	Reason string
	// MaxAttempts bounds the sends of a job under this rule; 0 means the
	// policy's max_attempts for retry and its max_sends for throttle and
	// pause. Unused by park.
	MaxAttempts int
	// Backoff is this rule's backoff; nil means the policy's.
	Backoff *Backoff
	// Scope is what a throttle or pause applies to; ScopeJob otherwise.
	Scope Scope
	// Source says where the rule comes from: "default" (the built-in table)
	// or "file.yaml:12".
	Source string
}

// Matches describes what the rule matches, e.g. "131000, 1, 200-299" or
// "http 500-599" or "transport" or "any other code".
func (r *Rule) Matches() string {
	var parts []string
	for _, c := range r.Codes {
		parts = append(parts, strconv.Itoa(c))
	}
	for _, c := range r.CodeRanges {
		parts = append(parts, c.String())
	}
	for _, s := range r.HTTPStatus {
		parts = append(parts, "http "+strconv.Itoa(s))
	}
	for _, s := range r.HTTPRanges {
		parts = append(parts, "http "+s.String())
	}
	if r.Transport {
		parts = append(parts, "transport")
	}
	if len(parts) == 0 {
		return "any other code"
	}
	return strings.Join(parts, ", ")
}

// Policy maps failures to decisions. Build it with Default, Load or Parse;
// it is immutable and safe for concurrent use. A nil *Policy is the
// built-in table.
type Policy struct {
	name        string  // the file it was read from; "" for the built-in table
	rules       []*Rule // the default table, then the file's rules, in order
	fileRules   int     // how many of rules came from the file
	other       *Rule   // the catch-all for codes and answers no rule names
	maxAttempts int
	maxSends    int
	backoff     Backoff
	api         string // defaults.api; "" when the file names none
	rnd         func() float64

	// The index: for each matcher, the position in rules of the last rule
	// that names it, so that "a later rule wins" is one comparison.
	byCode     map[int]int
	codeRanges []indexedRange
	byStatus   map[int]int
	httpRanges []indexedRange
	transport  int // -1: none
}

// builtin answers for a nil *Policy.
var builtin = Default()

func (p *Policy) or() *Policy {
	if p == nil {
		return builtin
	}
	return p
}

type indexedRange struct {
	Range
	at int
}

// newPolicy indexes rules (in order; later wins) under the given defaults.
func newPolicy(name string, rules []*Rule, fileRules, maxAttempts, maxSends int, b Backoff) *Policy {
	p := &Policy{
		name:        name,
		rules:       rules,
		fileRules:   fileRules,
		maxAttempts: maxAttempts,
		maxSends:    maxSends,
		backoff:     b,
		byCode:      map[int]int{},
		byStatus:    map[int]int{},
		transport:   -1,
		// No rule names the code: retry with the defaults, and say so with
		// reason "unknown" when the retries are spent (Appendix A, last row).
		other: &Rule{Action: Retry, Reason: ReasonUnknown, Source: SourceDefault},
	}
	for i, r := range rules {
		for _, c := range r.Codes {
			p.byCode[c] = i
		}
		for _, c := range r.CodeRanges {
			p.codeRanges = append(p.codeRanges, indexedRange{c, i})
		}
		for _, s := range r.HTTPStatus {
			p.byStatus[s] = i
		}
		for _, s := range r.HTTPRanges {
			p.httpRanges = append(p.httpRanges, indexedRange{s, i})
		}
		if r.Transport {
			p.transport = i
		}
	}
	return p
}

// WithRand returns a copy of p whose decisions draw their jitter from rnd
// (a func returning [0,1)) instead of math/rand/v2; for tests.
func (p *Policy) WithRand(rnd func() float64) *Policy {
	p = p.or()
	q := *p
	q.rnd = rnd
	return &q
}

// Name is the file the policy was read from, or "" for the built-in table.
func (p *Policy) Name() string {
	p = p.or()
	return p.name
}

// FileRules is how many rules the policy file laid over the default table.
func (p *Policy) FileRules() int {
	p = p.or()
	return p.fileRules
}

// Rules returns the effective table in order (a later rule wins over an
// earlier one for the same code), followed by the catch-all for codes no
// rule names.
func (p *Policy) Rules() []*Rule {
	p = p.or()
	return append(slices.Clone(p.rules), p.other)
}

// Defaults returns the max_attempts and backoff that rules without their
// own apply.
func (p *Policy) Defaults() (maxAttempts int, b Backoff) {
	p = p.or()
	return p.maxAttempts, p.backoff
}

// API is the policy file's defaults.api: the Graph API endpoint
// (graph.EdgeMessages or graph.EdgeMarketingMessages) of a template job
// whose job and number name none. "" when the file names none (the
// built-in table): such jobs go to /messages. Only template messages
// follow it; the Marketing Messages API sends nothing else.
func (p *Policy) API() string {
	p = p.or()
	return p.api
}

// MaxSends is the bound on every send of a job that throttle and pause
// rules without their own max_attempts apply.
func (p *Policy) MaxSends() int {
	p = p.or()
	return p.maxSends
}

// Lookup returns the rule that applies to a failure; never nil. A failure
// with a code is matched by code only; one without a code by its HTTP
// status and, for transport failures, the transport rule. Among the rules
// that match, the last one wins. Nothing matching means the catch-all
// (retry, reason "unknown").
func (p *Policy) Lookup(f graph.Failure) *Rule {
	p = p.or()
	best := -1
	if f.HasCode {
		if i, ok := p.byCode[f.Code]; ok {
			best = i
		}
		for _, r := range p.codeRanges {
			if r.at > best && r.Contains(f.Code) {
				best = r.at
			}
		}
	} else {
		if f.HTTPStatus != 0 {
			if i, ok := p.byStatus[f.HTTPStatus]; ok {
				best = i
			}
			for _, r := range p.httpRanges {
				if r.at > best && r.Contains(f.HTTPStatus) {
					best = r.at
				}
			}
		}
		if f.Transport && p.transport > best {
			best = p.transport
		}
	}
	if best < 0 {
		return p.other
	}
	return p.rules[best]
}

// Decision is what the worker does with one failed send.
type Decision struct {
	// Action is what to do. A retry, throttle or pause whose attempts are
	// spent comes back as Park with Exhausted set.
	Action Action
	// Delay is the wait before the next send (Retry), or the fallback wait
	// for Throttle and Pause when nothing better is known (no usage header,
	// no rate to lower). Zero for Park.
	Delay time.Duration
	// Reason is the dead-letter reason, set exactly when Action is Park.
	Reason string
	// Scope is what a throttle or pause applies to; ScopeJob otherwise.
	Scope Scope
	// Rule is the rule that decided; never nil.
	Rule *Rule
	// MaxAttempts is the bound the rule applies (max_attempts for retry,
	// max_sends for throttle and pause, unless the rule has its own);
	// 0 for a park rule.
	MaxAttempts int
	// Exhausted is true when the job is parked because its attempts are
	// spent rather than because the rule parks.
	Exhausted bool
}

func (d Decision) String() string {
	switch d.Action {
	case Park:
		if d.Exhausted {
			return fmt.Sprintf("park (%s after %d attempts)", d.Reason, d.MaxAttempts)
		}
		return "park (" + d.Reason + ")"
	case Retry:
		return "retry in " + formatDuration(d.Delay)
	default:
		return fmt.Sprintf("%s %s (fallback %s)", d.Action, d.Scope, formatDuration(d.Delay))
	}
}

// Attempts is what the worker counts of a job, for DecideAttempts.
type Attempts struct {
	// Sends counts every send of the job so far, this failed one included.
	Sends int
	// Held counts the earlier sends (this one excluded) that were decided
	// as Throttle or Pause; they do not count against max_attempts.
	Held int
}

// Decide classifies a failed send; attempt counts the sends of this job so
// far, this failed one included. It is DecideAttempts with no held sends
// (every earlier send counts against max_attempts).
func (p *Policy) Decide(f graph.Failure, attempt int) Decision {
	return p.DecideAttempts(f, Attempts{Sends: attempt})
}

// DecideAttempts classifies a failed send.
//
//   - Park carries the rule's reason.
//   - Retry is allowed while Sends-Held < max_attempts and Sends < max_sends:
//     max_attempts counts every send that was not throttled or paused, the
//     first included. Past that it becomes Park with the rule's reason
//     (retries_exhausted, or unknown for a code no rule names).
//   - Throttle and Pause are allowed while Sends < max_sends (or the rule's
//     own max_attempts), then become Park with the rule's reason
//     (retries_exhausted for throttle, account for pause). They carry a
//     Scope and a fallback Delay.
//
// The delay for the n-th failure is the rule's backoff at n, where n is
// Sends-Held for retry and Sends for throttle and pause.
func (p *Policy) DecideAttempts(f graph.Failure, a Attempts) Decision {
	p = p.or()
	r := p.Lookup(f)
	sends := max(a.Sends, 1)
	held := min(max(a.Held, 0), sends-1)
	d := Decision{Action: r.Action, Rule: r}
	var n int // the backoff step
	switch r.Action {
	case Park:
		d.Reason = r.Reason
		return d
	case Retry:
		d.MaxAttempts = p.MaxAttemptsOf(r)
		n = sends - held
		d.Exhausted = n >= d.MaxAttempts || sends >= p.maxSends
	default: // Throttle, Pause
		d.MaxAttempts = p.MaxAttemptsOf(r)
		n = sends
		d.Exhausted = sends >= d.MaxAttempts
		d.Scope = r.Scope
	}
	if d.Exhausted {
		d.Action, d.Reason, d.Scope = Park, r.Reason, ScopeJob
		return d
	}
	d.Delay = p.BackoffOf(r).Delay(n, p.rnd)
	return d
}

// BackoffOf is the backoff a rule applies: its own, or the policy's.
func (p *Policy) BackoffOf(r *Rule) Backoff {
	p = p.or()
	if r.Backoff != nil {
		return *r.Backoff
	}
	return p.backoff
}

// MaxAttemptsOf is the bound a rule applies: its own, or the policy's
// max_attempts (retry) or max_sends (throttle, pause); 0 for park.
func (p *Policy) MaxAttemptsOf(r *Rule) int {
	p = p.or()
	switch {
	case r.Action == Park:
		return 0
	case r.MaxAttempts > 0:
		return r.MaxAttempts
	case r.Action == Retry:
		return p.maxAttempts
	default:
		return p.maxSends
	}
}

// formatDuration prints a duration the way a policy file writes it:
// "30s", "15m", "1m30s", "1.5s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FormatDuration prints a duration as a policy file writes it ("30s",
// "15m", "1h", "1m30s").
func FormatDuration(d time.Duration) string { return formatDuration(d) }
