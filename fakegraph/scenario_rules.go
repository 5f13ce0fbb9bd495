package fakegraph

import (
	"fmt"
	"strconv"
	"strings"
)

// RandomFailure answers a share Rate (0 to 1) of sends with Respond.
type RandomFailure struct {
	Rate float64 `yaml:"rate" json:"rate"`
	// PhoneNumberID limits the failure to one business number.
	PhoneNumberID string   `yaml:"phone_number_id,omitempty" json:"phone_number_id,omitempty"`
	Respond       Response `yaml:"respond" json:"respond"`
}

// Rule is a scripted answer: the sends that Match, Times times (0: every
// time), get Respond.
type Rule struct {
	// Name shows in the sends log and stats; defaults to "rule-N".
	Name    string   `yaml:"name,omitempty" json:"name,omitempty"`
	Match   Match    `yaml:"match,omitempty" json:"match,omitzero"`
	Times   int      `yaml:"times,omitempty" json:"times,omitempty"`
	Respond Response `yaml:"respond" json:"respond"`
}

// Match selects sends; empty fields match anything, all set fields must
// match.
type Match struct {
	To            string `yaml:"to,omitempty" json:"to,omitempty"`
	PhoneNumberID string `yaml:"phone_number_id,omitempty" json:"phone_number_id,omitempty"`
	Template      string `yaml:"template,omitempty" json:"template,omitempty"`
	JobID         string `yaml:"job_id,omitempty" json:"job_id,omitempty"`
	// Type is the message type: text, template, image, ...
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// API is the endpoint: messages or marketing_messages.
	API string `yaml:"api,omitempty" json:"api,omitempty"`
}

func (m *Match) validate(path ...any) error {
	if m.API != "" && !oneOf(m.API, apis) {
		return errAt("api "+strconv.Quote(m.API)+": want messages or marketing_messages", append(append([]any{}, path...), "api")...)
	}
	return nil
}

// Kind is how the simulator answers.
type Kind string

// The answer kinds. Only KindAccept, KindSlow and KindError answer like the
// Graph API; the others are what a proxy, a load balancer or a broken
// network make of an answer.
const (
	KindAccept Kind = "accept" // Meta's success answer
	KindError  Kind = "error"  // Meta's error body for Response.Error
	KindSlow   Kind = "slow"   // success after Response.Delay (default 5s)
	KindHTML   Kind = "html"   // an HTML error page (default 502)
	KindCut    Kind = "cut"    // Content-Length larger than the body, then the connection closes
	KindHuge   Kind = "huge"   // a valid but huge JSON body (default 5 MiB)
	KindNoCode Kind = "nocode" // a JSON error object without a code (default 500)
	KindRaw    Kind = "raw"    // Response.Body as given, with Response.Status and ContentType
	KindHang   Kind = "hang"   // no answer until the client gives up
	KindDrop   Kind = "drop"   // the connection closes without an answer
)

var kinds = []Kind{KindAccept, KindError, KindSlow, KindHTML, KindCut, KindHuge, KindNoCode, KindRaw, KindHang, KindDrop}

// Response is one answer.
type Response struct {
	// Kind defaults to error when Error is set, raw when Body is set, and
	// accept otherwise.
	Kind Kind `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Error is the Graph API error code (0 is a real code).
	Error *int `yaml:"error,omitempty" json:"error,omitempty"`
	// Subcode overrides the code's error_subcode; -1 leaves it out.
	Subcode int `yaml:"subcode,omitempty" json:"subcode,omitempty"`
	// Status overrides the HTTP status.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Message, Details, Title and Type override error.message,
	// error.error_data.details, error.error_user_title and error.type.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	Details string `yaml:"details,omitempty" json:"details,omitempty"`
	Title   string `yaml:"title,omitempty" json:"title,omitempty"`
	Type    string `yaml:"type,omitempty" json:"type,omitempty"`
	// Delay is added before the answer, whatever its kind.
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitzero"`
	// Size is the body size of a huge answer in bytes; defaults to 5 MiB.
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Body and ContentType are the answer of kind raw (and replace the
	// page of kind html).
	Body        string `yaml:"body,omitempty" json:"body,omitempty"`
	ContentType string `yaml:"content_type,omitempty" json:"content_type,omitempty"`
	// RegainAccess is, for error 80007, the estimated_time_to_regain_access
	// of the X-Business-Use-Case-Usage header, in whole minutes (rounded
	// up). Defaults to 1m. Error 4 carries X-App-Usage at 100%, which gives
	// no time, as Meta's does not.
	RegainAccess Duration `yaml:"regain_access,omitempty" json:"regain_access,omitzero"`
	// Async makes an accepted send fail later, in a status webhook.
	Async *AsyncFailure `yaml:"async,omitempty" json:"async,omitempty"`
	// MessageStatus is messages[].message_status of an accepted send:
	// accepted (default), held_for_quality_assessment or paused.
	MessageStatus string `yaml:"message_status,omitempty" json:"message_status,omitempty"`
}

// AsyncFailure is a failure reported by webhook after Meta accepted a send.
type AsyncFailure struct {
	// Error is the code in statuses[].errors[]; defaults to 131000.
	Error *int `yaml:"error,omitempty" json:"error,omitempty"`
	// Details overrides errors[].error_data.details.
	Details string `yaml:"details,omitempty" json:"details,omitempty"`
	// After says which statuses are delivered before the failure
	// (for example [sent]); defaults to none.
	After []string `yaml:"after,omitempty" json:"after,omitempty"`
}

// maxHuge bounds a huge answer: large enough to pass any sane read bound,
// small enough not to exhaust the machine.
const maxHuge = 256 << 20

func (r *Response) validate(path ...any) error {
	at := func(msg string, field string) error {
		p := append(append([]any{}, path...), field)
		return errAt(msg, p...)
	}
	if r.Kind != "" && !oneOf(string(r.Kind), kindNames()) {
		return at("kind "+strconv.Quote(string(r.Kind))+": want one of "+strings.Join(kindNames(), ", "), "kind")
	}
	k := r.kind()
	if k == KindError && r.Error == nil {
		return at("kind error needs an error code", "kind")
	}
	if r.Error != nil && *r.Error < 0 {
		return at("error code must not be negative", "error")
	}
	if r.Error != nil && k != KindError {
		return at("error code given with kind "+string(k), "error")
	}
	if r.Status != 0 && (r.Status < 100 || r.Status > 599) {
		return at(fmt.Sprintf("status %d: want an HTTP status", r.Status), "status")
	}
	if r.Size < 0 || r.Size > maxHuge {
		return at(fmt.Sprintf("size %d: want 0 to %d bytes", r.Size, maxHuge), "size")
	}
	if r.Delay < 0 {
		return at("delay must not be negative", "delay")
	}
	if r.MessageStatus != "" {
		if k != KindAccept && k != KindSlow {
			return at("message_status needs an accepted send (kind accept or slow)", "message_status")
		}
		if !oneOf(r.MessageStatus, messageStatuses) {
			return at("message_status "+strconv.Quote(r.MessageStatus)+": want accepted, held_for_quality_assessment or paused", "message_status")
		}
	}
	if r.Async != nil {
		if k != KindAccept && k != KindSlow {
			return at("async failures need an accepted send (kind accept or slow)", "async")
		}
		if r.Async.Error != nil && *r.Async.Error < 0 {
			return at("error code must not be negative", "async")
		}
		for _, st := range r.Async.After {
			if !oneOf(st, statusNames) {
				return at("after: status "+st+": want sent, delivered or read", "async")
			}
		}
	}
	return nil
}

func kindNames() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// kind is the effective kind of r.
func (r *Response) kind() Kind {
	switch {
	case r.Kind != "":
		return r.Kind
	case r.Error != nil:
		return KindError
	case r.Body != "":
		return KindRaw
	default:
		return KindAccept
	}
}

// Code returns a pointer to code, for Response.Error and AsyncFailure.Error.
func Code(code int) *int { return &code }
