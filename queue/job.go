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

// Limits of the wire format (SPEC §1).
const (
	MaxIDLen       = 128
	MaxMetadataLen = 16
	// MaxJobBytes bounds a job body; JetStream's own default limit is 1 MiB.
	MaxJobBytes = 1 << 20
)

// Job is one message to send, as published on the stream.
type Job struct {
	// ID is the idempotency key: the same id twice is one send.
	ID string `json:"id"`
	// PhoneNumberID is the business phone number that sends.
	PhoneNumberID string `json:"phone_number_id"`
	// Message is the Graph API message object, sent as it is.
	Message json.RawMessage `json:"message"`
	// NotAfter, when set, is the time after which the job is parked as
	// expired rather than sent late.
	NotAfter *time.Time `json:"not_after,omitempty"`
	// Metadata is carried into dead-letter entries, logs and spans.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Summary is what waq reads of a message object: enough to validate it and
// to index dead-letter entries.
type Summary struct {
	MessagingProduct string
	To               string
	Type             string
	Template         string // template name, for type "template"
	Language         string // template language code, for type "template"
}

// messageFields decodes the parts of a message object waq looks at. Each
// type's payload is only checked for presence: decoding it into a present
// copies nothing.
type messageFields struct {
	MessagingProduct string  `json:"messaging_product"`
	RecipientType    string  `json:"recipient_type"`
	To               *string `json:"to"`
	Type             string  `json:"type"`
	Template         *struct {
		Name     string `json:"name"`
		Language *struct {
			Code string `json:"code"`
		} `json:"language"`
	} `json:"template"`
	Text        present `json:"text"`
	Image       present `json:"image"`
	Audio       present `json:"audio"`
	Video       present `json:"video"`
	Document    present `json:"document"`
	Sticker     present `json:"sticker"`
	Location    present `json:"location"`
	Contacts    present `json:"contacts"`
	Interactive present `json:"interactive"`
	Reaction    present `json:"reaction"`
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
		return bool(m.Text), true
	case "template":
		return m.Template != nil, true
	case "image":
		return bool(m.Image), true
	case "audio":
		return bool(m.Audio), true
	case "video":
		return bool(m.Video), true
	case "document":
		return bool(m.Document), true
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
		return nil, Summary{}, invalid("", "body is %d bytes, more than %d", len(data), MaxJobBytes)
	}
	var w struct {
		ID            string            `json:"id"`
		PhoneNumberID string            `json:"phone_number_id"`
		Message       json.RawMessage   `json:"message"`
		NotAfter      *string           `json:"not_after"`
		Metadata      map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, Summary{}, &ValidationError{Problem: "body is not a JSON job object: " + jsonProblem(err)}
	}
	j := Job{ID: w.ID, PhoneNumberID: w.PhoneNumberID, Message: w.Message, Metadata: w.Metadata}
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
	return SummarizeMessage(j.Message)
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
		return Summary{}, invalid("message", "%s", jsonProblem(err))
	}
	if m.MessagingProduct != "whatsapp" {
		if m.MessagingProduct == "" {
			return Summary{}, invalid("message.messaging_product", `missing; want "whatsapp"`)
		}
		return Summary{}, invalid("message.messaging_product", `%q; want "whatsapp"`, m.MessagingProduct)
	}
	to, err := recipient(m.To)
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
	s := Summary{MessagingProduct: m.MessagingProduct, To: to, Type: typ}
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

func recipient(to *string) (string, error) {
	if to == nil {
		return "", invalid("message.to", "missing")
	}
	if err := ValidateRecipient(*to); err != nil {
		return "", err
	}
	return *to, nil
}

// ValidateRecipient checks a recipient number: digits only, with country
// code, 8 to 15 digits (E.164 without the "+").
func ValidateRecipient(to string) error {
	if to == "" {
		return invalid("message.to", "missing")
	}
	if !digits(to) {
		want := NormalizeRecipient(to)
		if want != "" && digits(want) {
			return invalid("message.to", "%q is not digits only; write it as %q (country code first, no +, spaces or punctuation)", to, want)
		}
		return invalid("message.to", "%q is not digits only; write it with country code and nothing else, like \"15551234567\"", to)
	}
	if len(to) < 8 || len(to) > 15 {
		return invalid("message.to", "%q has %d digits; a number with country code has 8 to 15, like \"15551234567\"", to, len(to))
	}
	if to[0] == '0' {
		return invalid("message.to", "%q starts with 0; start with the country code, like \"15551234567\"", to)
	}
	return nil
}

// NormalizeRecipient strips a leading "+", "00", spaces and punctuation
// from a number, for a hint in an error message. It does not guess a
// missing country code.
func NormalizeRecipient(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if !strings.ContainsRune("+-() .", r) {
			return ""
		}
	}
	out := b.String()
	if strings.HasPrefix(strings.TrimSpace(s), "00") {
		out = strings.TrimPrefix(out, "00")
	}
	return out
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
