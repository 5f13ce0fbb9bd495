package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The account webhook fields waq acts on (Meta's webhook reference, 2026).
// They come on the same endpoint as the statuses, one change per entry.
const (
	FieldTemplateStatus  = "message_template_status_update"
	FieldTemplateQuality = "message_template_quality_update"
	FieldNumberQuality   = "phone_number_quality_update"
	FieldAccountUpdate   = "account_update"
)

// AccountSubjectToken is the subject token of account events:
// waq.status.account.{waba_id}. Phone number ids are digits, so it never
// meets a status subject.
const AccountSubjectToken = "account"

// maxAccountText bounds each text field of an account event kept: a
// template name is at most 512 characters, a reason a sentence.
const maxAccountText = 512

// AccountEvent is one account webhook change: a template's status or
// quality, a business number's quality and messaging limit, or a WABA's
// restriction. It is what the worker records and acts on.
type AccountEvent struct {
	// Field is the change's field (FieldTemplateStatus, ...).
	Field string `json:"field"`
	// WABAID is entry[].id; Time is entry[].time (Unix seconds, 0 when absent).
	WABAID string `json:"waba_id"`
	Time   int64  `json:"time,omitempty"`
	// Event is value.event: the template's new status (APPROVED, PAUSED,
	// DISABLED, REJECTED, PENDING_DELETION, ...), the number's event
	// (FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, ...) or the account's
	// (ACCOUNT_RESTRICTION, DISABLED_UPDATE, ACCOUNT_VIOLATION, ...). For a
	// quality change it is the new quality score (GREEN, YELLOW, RED, UNKNOWN).
	Event string `json:"event"`

	// Template: message_template_id, _name, _language and _category.
	TemplateID       string `json:"template_id,omitempty"`
	TemplateName     string `json:"template_name,omitempty"`
	TemplateLanguage string `json:"template_language,omitempty"`
	Category         string `json:"category,omitempty"`
	// Reason is value.reason (NONE, INCORRECT_CATEGORY, ...; null for a
	// deletion), with other_info's title and description when Meta gives
	// them (a pause says how long it lasts there).
	Reason string `json:"reason,omitempty"`
	// PreviousQuality is previous_quality_score of a quality change.
	PreviousQuality string `json:"previous_quality,omitempty"`

	// Number: display_phone_number, current_limit (or
	// max_daily_conversations_per_business, which replaces it) and old_limit.
	DisplayPhoneNumber string `json:"display_phone_number,omitempty"`
	CurrentLimit       string `json:"current_limit,omitempty"`
	OldLimit           string `json:"old_limit,omitempty"`

	// Account: ban_info.waba_ban_state, restriction_info[] and
	// violation_info.violation_type.
	BanState      string        `json:"ban_state,omitempty"`
	Restrictions  []Restriction `json:"restrictions,omitempty"`
	ViolationType string        `json:"violation_type,omitempty"`
}

// Restriction is one entry of account_update's restriction_info.
type Restriction struct {
	Type       string `json:"restriction_type"`
	Expiration string `json:"expiration,omitempty"`
}

// DedupID identifies one account change, the same for every redelivery of
// it: a digest of the event.
func (e AccountEvent) DedupID() string {
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	return "account/" + hex.EncodeToString(sum[:16])
}

// accountPayload is the part of a webhook body account changes are read
// from; the statuses are read by Parse.
type accountPayload struct {
	Entry []struct {
		ID      string      `json:"id"`
		Time    json.Number `json:"time"`
		Changes []struct {
			Field string       `json:"field"`
			Value accountValue `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type accountValue struct {
	Event                 string      `json:"event"`
	MessageTemplateID     json.Number `json:"message_template_id"`
	MessageTemplateName   string      `json:"message_template_name"`
	MessageTemplateLang   string      `json:"message_template_language"`
	MessageTemplateCat    string      `json:"message_template_category"`
	Reason                *string     `json:"reason"`
	PreviousQualityScore  string      `json:"previous_quality_score"`
	NewQualityScore       string      `json:"new_quality_score"`
	DisplayPhoneNumber    string      `json:"display_phone_number"`
	CurrentLimit          string      `json:"current_limit"`
	OldLimit              string      `json:"old_limit"`
	MaxDailyConversations string      `json:"max_daily_conversations_per_business"`
	OtherInfo             *struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"other_info"`
	BanInfo *struct {
		State string `json:"waba_ban_state"`
	} `json:"ban_info"`
	RestrictionInfo []Restriction `json:"restriction_info"`
	ViolationInfo   *struct {
		Type string `json:"violation_type"`
	} `json:"violation_info"`
}

// isAccountField reports whether waq reads a change of this field.
func isAccountField(f string) bool {
	switch f {
	case FieldTemplateStatus, FieldTemplateQuality, FieldNumberQuality, FieldAccountUpdate:
		return true
	}
	return false
}

// ParseAccount reads the account changes of a webhook body (Parse reads its
// statuses). A change of one of these fields that lacks what waq needs to
// act on it (a template without a name or language, a number without its
// display number, a WABA id that is not digits, text past 512 bytes or not
// UTF-8) is skipped and counted in bad. A body that is not a webhook object
// is an error.
func ParseAccount(body []byte) (events []AccountEvent, bad int, err error) {
	if !bytes.Contains(body, []byte(`_update"`)) {
		// No account field named: skip the second decode (the usual body
		// is statuses only).
		return nil, 0, nil
	}
	var p accountPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, 0, fmt.Errorf("webhook: body is not a webhook JSON object: %w", err)
	}
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			if !isAccountField(c.Field) {
				continue
			}
			ev, err := accountEvent(e.ID, e.Time, c.Field, c.Value)
			if err != nil {
				bad++
				continue
			}
			events = append(events, ev)
		}
	}
	return events, bad, nil
}

var errAccountEvent = errors.New("account event: incomplete or malformed")

// accountEvent checks and keeps one change.
func accountEvent(waba string, at json.Number, field string, v accountValue) (AccountEvent, error) {
	if !validSubjectToken(waba) {
		return AccountEvent{}, errAccountEvent
	}
	ev := AccountEvent{Field: field, WABAID: waba, Event: strings.ToUpper(v.Event)}
	if n, err := at.Int64(); err == nil && n > 0 {
		ev.Time = n
	}
	switch field {
	case FieldTemplateStatus, FieldTemplateQuality:
		ev.TemplateID = v.MessageTemplateID.String()
		ev.TemplateName, ev.TemplateLanguage = v.MessageTemplateName, v.MessageTemplateLang
		ev.Category = strings.ToUpper(v.MessageTemplateCat)
		if field == FieldTemplateQuality {
			ev.Event, ev.PreviousQuality = strings.ToUpper(v.NewQualityScore), strings.ToUpper(v.PreviousQualityScore)
		}
		var reason, title, desc string
		if v.Reason != nil {
			reason = *v.Reason
		}
		if v.OtherInfo != nil {
			title, desc = v.OtherInfo.Title, v.OtherInfo.Description
		}
		ev.Reason = joinReason(reason, title, desc)
		if ev.TemplateName == "" || ev.TemplateLanguage == "" || strings.ContainsAny(ev.TemplateName+ev.TemplateLanguage, ":|") {
			return AccountEvent{}, errAccountEvent
		}
	case FieldNumberQuality:
		ev.DisplayPhoneNumber = digits(v.DisplayPhoneNumber)
		ev.CurrentLimit, ev.OldLimit = v.CurrentLimit, v.OldLimit
		if ev.CurrentLimit == "" {
			ev.CurrentLimit = v.MaxDailyConversations
		}
		if !validSubjectToken(ev.DisplayPhoneNumber) {
			return AccountEvent{}, errAccountEvent
		}
	case FieldAccountUpdate:
		if v.BanInfo != nil {
			ev.BanState = strings.ToUpper(v.BanInfo.State)
		}
		if v.ViolationInfo != nil {
			ev.ViolationType = v.ViolationInfo.Type
		}
		if len(v.RestrictionInfo) > 16 {
			return AccountEvent{}, errAccountEvent
		}
		ev.Restrictions = v.RestrictionInfo
	}
	if ev.Event == "" {
		return AccountEvent{}, errAccountEvent
	}
	for _, s := range []string{ev.Event, ev.TemplateID, ev.TemplateName, ev.TemplateLanguage, ev.Category, ev.Reason,
		ev.PreviousQuality, ev.CurrentLimit, ev.OldLimit, ev.BanState, ev.ViolationType} {
		if len(s) > maxAccountText || !utf8.ValidString(s) {
			return AccountEvent{}, errAccountEvent
		}
	}
	for _, r := range ev.Restrictions {
		if r.Type == "" || len(r.Type) > 128 || len(r.Expiration) > 64 {
			return AccountEvent{}, errAccountEvent
		}
	}
	return ev, nil
}

// joinReason puts a pause's title and description after the reason.
func joinReason(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" && p != "NONE" {
			out = append(out, p)
		}
	}
	s := strings.Join(out, ": ")
	if len(s) > maxAccountText {
		s = s[:maxAccountText]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// digits keeps the digits of a display number ("+1 555-0100" → "15550100").
func digits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && i < 64; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// DecodeAccountEvent reads an account event as stored on the stream.
func DecodeAccountEvent(data []byte) (AccountEvent, error) {
	var e AccountEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return AccountEvent{}, fmt.Errorf("account event: %w", err)
	}
	if !isAccountField(e.Field) || e.Event == "" || !validSubjectToken(e.WABAID) {
		return AccountEvent{}, errors.New("account event: no field, event or WABA id")
	}
	return e, nil
}

// IsAccountSubject reports whether an event's subject is an account
// event's ({prefix}.account.{waba_id}) rather than a status's.
func IsAccountSubject(subject string) bool {
	return strings.Contains(subject, "."+AccountSubjectToken+".")
}
