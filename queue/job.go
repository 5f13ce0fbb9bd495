// Package queue is waq's wire format and its JetStream plumbing: the Job
// that producers publish, the producer library that publishes it, and the
// stream and consumer the workers read from.
package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the wire format (SPEC §1). Meta's own size limits on the
// message are in limits.go.
const (
	MaxIDLen       = 128
	MaxMetadataLen = 16
	// MaxJobBytes bounds a job body (SPEC §1: 64 KiB). A message Meta
	// would take is far smaller; a body past it is a producer's mistake,
	// parked as invalid and never sent.
	MaxJobBytes = 64 << 10
)

// The Graph API endpoints a job can be posted to (the job's api field).
const (
	// APIMessages is POST /{phone_number_id}/messages, the Cloud API.
	APIMessages = "messages"
	// APIMarketingMessages is POST /{phone_number_id}/marketing_messages,
	// Meta's Marketing Messages API (marketing templates only).
	APIMarketingMessages = "marketing_messages"
)

// Job is one message to send, as published on the stream.
type Job struct {
	// ID is the idempotency key: the same id twice is one send.
	ID string `json:"id"`
	// PhoneNumberID is the business phone number that sends.
	PhoneNumberID string `json:"phone_number_id"`
	// Message is the Graph API message object, sent as it is.
	Message json.RawMessage `json:"message"`
	// API is the endpoint the job is posted to: APIMessages or
	// APIMarketingMessages. Empty means the number's or the policy's
	// default, and failing that APIMessages.
	API string `json:"api,omitempty"`
	// NotAfter, when set, is the time after which the job is parked as
	// expired rather than sent late.
	NotAfter *time.Time `json:"not_after,omitempty"`
	// Metadata is carried into dead-letter entries, logs and spans.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Summary is what waq reads of a message object: enough to validate it and
// to index dead-letter entries. Exactly one of To and Recipient is set.
type Summary struct {
	MessagingProduct string
	// To is message.to: a number, digits with country code.
	To string
	// Recipient is message.recipient: a business-scoped user ID (BSUID,
	// "US.13491208655302741918", or a parent BSUID "US.ENT.…").
	Recipient string
	Type      string
	Template  string // template name, for type "template"
	Language  string // template language code, for type "template"
	// ProductPolicy is message.product_policy (Marketing Messages API).
	ProductPolicy string
}

// Addressee is the recipient however the job names it: the number, or the
// BSUID. It keys the per-recipient pair limit and the recipient hash.
func (s Summary) Addressee() string {
	if s.To != "" {
		return s.To
	}
	return s.Recipient
}

// messageFields decodes the parts of a message object waq looks at. Each
// type's payload is only checked for presence: decoding it into a present
// copies nothing.
type messageFields struct {
	MessagingProduct string  `json:"messaging_product"`
	RecipientType    string  `json:"recipient_type"`
	To               *string `json:"to"`
	Recipient        *string `json:"recipient"`
	Type             string  `json:"type"`
	ProductPolicy    *string `json:"product_policy"`
	Template         *struct {
		Name     string `json:"name"`
		Language *struct {
			Code string `json:"code"`
		} `json:"language"`
	} `json:"template"`
	Text        *textPart  `json:"text"`
	Image       *mediaPart `json:"image"`
	Audio       present    `json:"audio"`
	Video       *mediaPart `json:"video"`
	Document    *mediaPart `json:"document"`
	Sticker     present    `json:"sticker"`
	Location    present    `json:"location"`
	Contacts    present    `json:"contacts"`
	Interactive present    `json:"interactive"`
	Reaction    present    `json:"reaction"`
}

// present records that a JSON value other than null was there.
type present bool

// UnmarshalJSON marks the value present unless it is null.
func (p *present) UnmarshalJSON(b []byte) error {
	*p = present(!bytes.Equal(b, []byte("null")))
	return nil
}

// MessageTypes are the message.type values the Cloud API accepts.
var MessageTypes = []string{"text", "template", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive", "reaction"}

// payload reports whether the object a message type needs is there, and
// whether the type is known at all.
func (m *messageFields) payload(typ string) (has, known bool) {
	switch typ {
	case "text":
		return m.Text != nil, true
	case "template":
		return m.Template != nil, true
	case "image":
		return m.Image != nil, true
	case "audio":
		return bool(m.Audio), true
	case "video":
		return m.Video != nil, true
	case "document":
		return m.Document != nil, true
	case "sticker":
		return bool(m.Sticker), true
	case "location":
		return bool(m.Location), true
	case "contacts":
		return bool(m.Contacts), true
	case "interactive":
		return bool(m.Interactive), true
	case "reaction":
		return bool(m.Reaction), true
	}
	return false, false
}

// ValidationError says which field of a job is wrong and how.
type ValidationError struct {
	Field   string // e.g. "message.to"
	Problem string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid job: " + e.Problem
	}
	return "invalid job: " + e.Field + ": " + e.Problem
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Decode parses and validates a job body as published on the stream. The
// error is a *ValidationError naming the field.
func Decode(data []byte) (*Job, Summary, error) {
	if len(data) > MaxJobBytes {
		return nil, Summary{}, invalid("", "body is %d bytes, more than the limit of %d bytes (64 KiB)", len(data), MaxJobBytes)
	}
	var w struct {
		ID            string            `json:"id"`
		PhoneNumberID string            `json:"phone_number_id"`
		Message       json.RawMessage   `json:"message"`
		API           string            `json:"api"`
		NotAfter      *string           `json:"not_after"`
		Metadata      map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, Summary{}, &ValidationError{Problem: "body is not a JSON job object: " + jsonProblem(err)}
	}
	j := Job{ID: w.ID, PhoneNumberID: w.PhoneNumberID, Message: w.Message, API: w.API, Metadata: w.Metadata}
	if w.NotAfter != nil {
		t, err := time.Parse(time.RFC3339Nano, *w.NotAfter)
		if err != nil {
			return nil, Summary{}, invalid("not_after", "%q is not an RFC 3339 time like \"2026-11-25T18:00:00Z\"", *w.NotAfter)
		}
		j.NotAfter = &t
	}
	sum, err := j.Validate()
	if err != nil {
		return nil, Summary{}, err
	}
	return &j, sum, nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %s: got a JSON %s, want %s", te.Field, te.Value, te.Type)
		}
		return fmt.Sprintf("got a JSON %s, want an object", te.Value)
	}
	return err.Error()
}

// Validate checks a job against the wire format and returns the summary of
// its message. The error is a *ValidationError naming the field.
func (j *Job) Validate() (Summary, error) {
	if err := ValidateID(j.ID); err != nil {
		return Summary{}, err
	}
	if j.PhoneNumberID == "" {
		return Summary{}, invalid("phone_number_id", "missing")
	}
	if !digits(j.PhoneNumberID) || len(j.PhoneNumberID) > 32 {
		return Summary{}, invalid("phone_number_id", "%q is not a Graph API phone number id (digits only)", j.PhoneNumberID)
	}
	if len(j.Metadata) > MaxMetadataLen {
		return Summary{}, invalid("metadata", "%d keys, at most %d", len(j.Metadata), MaxMetadataLen)
	}
	for k, v := range j.Metadata {
		if k == "" || len(k) > 64 || !utf8.ValidString(k) {
			return Summary{}, invalid("metadata", "key %q: want 1 to 64 characters", k)
		}
		if len(v) > 512 || !utf8.ValidString(v) {
			return Summary{}, invalid("metadata."+k, "value longer than 512 bytes or not UTF-8")
		}
	}
	switch j.API {
	case "", APIMessages, APIMarketingMessages:
	default:
		return Summary{}, invalid("api", "%q; want %q or %q", j.API, APIMessages, APIMarketingMessages)
	}
	sum, err := SummarizeMessage(j.Message)
	if err != nil {
		return Summary{}, err
	}
	if err := CheckAPI(j.API, sum); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// CheckAPI checks that a message fits the endpoint it is posted to (api as
// the job or a default gives it; "" is APIMessages): the Marketing Messages
// API takes template messages only, and product_policy belongs to it alone.
func CheckAPI(api string, sum Summary) error {
	if api == APIMarketingMessages {
		if sum.Type != "template" {
			return invalid("api", "marketing_messages sends template messages only, not type %q", sum.Type)
		}
		return nil
	}
	if sum.ProductPolicy != "" {
		return invalid("message.product_policy", "only the Marketing Messages API takes it; set api to %q", APIMarketingMessages)
	}
	return nil
}

// ValidateID checks an idempotency key: 1 to 128 characters, printable, no
// spaces (it travels in a NATS header and in Redis keys).
func ValidateID(id string) error {
	if id == "" {
		return invalid("id", "missing")
	}
	if n := utf8.RuneCountInString(id); n > MaxIDLen {
		return invalid("id", "%d characters, at most %d", n, MaxIDLen)
	}
	if !utf8.ValidString(id) {
		return invalid("id", "not UTF-8")
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f {
			return invalid("id", "contains a space or control character")
		}
	}
	return nil
}

// SummarizeMessage validates a Graph API message object as far as waq can
// without asking Meta, and returns its summary.
func SummarizeMessage(msg json.RawMessage) (Summary, error) {
	trimmed := bytes.TrimSpace(msg)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return Summary{}, invalid("message", "missing")
	}
	if trimmed[0] != '{' {
		return Summary{}, invalid("message", "not a JSON object")
	}
	var m messageFields
	if err := json.Unmarshal(trimmed, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "to" {
			return Summary{}, invalid("message.to", "want a string of digits with country code, like \"15551234567\"")
		}
		if errors.As(err, &te) && te.Field == "recipient" {
			return Summary{}, invalid("message.recipient", "want a business-scoped user ID string, like \"US.13491208655302741918\"")
		}
		return Summary{}, invalid("message", "%s", jsonProblem(err))
	}
	if m.MessagingProduct != "whatsapp" {
		if m.MessagingProduct == "" {
			return Summary{}, invalid("message.messaging_product", `missing; want "whatsapp"`)
		}
		return Summary{}, invalid("message.messaging_product", `%q; want "whatsapp"`, m.MessagingProduct)
	}
	to, bsuid, err := addressee(m.To, m.Recipient)
	if err != nil {
		return Summary{}, err
	}
	if m.RecipientType != "" && m.RecipientType != "individual" {
		return Summary{}, invalid("message.recipient_type", `%q; want "individual"`, m.RecipientType)
	}
	typ := m.Type
	if typ == "" {
		// Meta treats a message without a type as text.
		typ = "text"
	}
	has, known := m.payload(typ)
	if !known {
		return Summary{}, invalid("message.type", "unknown type %q; want one of %s", typ, strings.Join(MessageTypes, ", "))
	}
	if !has {
		return Summary{}, invalid("message."+typ, "missing: a %s message needs a %q object", typ, typ)
	}
	if err := m.checkLimits(typ); err != nil {
		return Summary{}, err
	}
	s := Summary{MessagingProduct: m.MessagingProduct, To: to, Recipient: bsuid, Type: typ}
	if m.ProductPolicy != nil {
		switch *m.ProductPolicy {
		case ProductPolicyFallback, ProductPolicyStrict:
			s.ProductPolicy = *m.ProductPolicy
		default:
			return Summary{}, invalid("message.product_policy", "%q; want %q or %q", *m.ProductPolicy, ProductPolicyFallback, ProductPolicyStrict)
		}
	}
	if typ == "template" {
		if strings.TrimSpace(m.Template.Name) == "" {
			return Summary{}, invalid("message.template.name", "missing")
		}
		if m.Template.Language == nil || m.Template.Language.Code == "" {
			return Summary{}, invalid("message.template.language.code", "missing")
		}
		s.Template = m.Template.Name
		s.Language = m.Template.Language.Code
	}
	return s, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Subject is the subject a job for phone number P is published on.
func Subject(prefix, phoneNumberID string) string {
	return prefix + "." + phoneNumberID
}

// Expired reports whether the job's not_after has passed at now.
func (j *Job) Expired(now time.Time) bool {
	return j.NotAfter != nil && now.After(*j.NotAfter)
}

// String is the job's id and number, never its recipient.
func (j *Job) String() string {
	return "job " + strconv.Quote(j.ID) + " for " + j.PhoneNumberID
}

// PeekID returns the id of a body that does not validate as a job, when
// it is a JSON object whose "id" is a valid job id, else "": a job parked
// as invalid keeps the id its producer gave it.
func PeekID(data []byte) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(v.ID, &id) != nil || ValidateID(id) != nil {
		return ""
	}
	return id
}
