package fakegraph

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// messageBody is the part of a message object the simulator checks.
type messageBody struct {
	MessagingProduct *string `json:"messaging_product"`
	RecipientType    string  `json:"recipient_type"`
	To               *string `json:"to"`
	// Recipient is a business-scoped user ID, used when To is absent.
	Recipient *string `json:"recipient"`
	// ProductPolicy and MessageActivitySharing are the Marketing Messages
	// API's.
	ProductPolicy          *string `json:"product_policy"`
	MessageActivitySharing *bool   `json:"message_activity_sharing"`
	Type                   *string `json:"type"`
	Text                   *struct {
		Body *string `json:"body"`
	} `json:"text"`
	Template    *templateBody `json:"template"`
	Image       present       `json:"image"`
	Audio       present       `json:"audio"`
	Video       present       `json:"video"`
	Document    present       `json:"document"`
	Sticker     present       `json:"sticker"`
	Location    present       `json:"location"`
	Contacts    present       `json:"contacts"`
	Interactive present       `json:"interactive"`
	Reaction    present       `json:"reaction"`
}

var messageTypes = []string{"audio", "contacts", "document", "image", "interactive", "location", "reaction", "sticker", "template", "text", "video"}

// recipient is who a message goes to as the request gave it: "to" when it is
// there (Meta's precedence), else "recipient", a business-scoped user ID.
func (m *messageBody) recipient() (input string, bsuid bool) {
	if m.To != nil && *m.To != "" {
		return *m.To, false
	}
	if m.Recipient != nil && *m.Recipient != "" {
		return *m.Recipient, true
	}
	return "", false
}

// checkMessage validates a message object the way the messages endpoint
// (api "messages") or the Marketing Messages API's ("marketing_messages")
// does and returns its type.
func checkMessage(m *messageBody, api string) (string, *errSpec) {
	if m.MessagingProduct == nil || *m.MessagingProduct == "" {
		return "", invalidParam("(#100) The parameter messaging_product is required.", "The parameter messaging_product is required.")
	}
	if *m.MessagingProduct != "whatsapp" {
		return "", invalidParam("(#100) Param messaging_product must be one of {WHATSAPP} - got \""+*m.MessagingProduct+"\".",
			"messaging_product must be \"whatsapp\".")
	}
	if m.RecipientType != "" && m.RecipientType != "individual" && m.RecipientType != "group" {
		return "", invalidParam("(#100) Param recipient_type must be one of {INDIVIDUAL, GROUP} - got \""+m.RecipientType+"\".",
			"recipient_type must be \"individual\".")
	}
	switch in, bsuid := m.recipient(); {
	case in == "":
		return "", invalidParam("(#100) The parameter to is required.", "The parameter to is required.")
	case !bsuid && !phoneLike(in):
		return "", invalidParam("(#100) Invalid parameter", "Param to must be a phone number with its country code, got \""+in+"\".")
	case bsuid && !isBSUID(in):
		return "", invalidParam("(#100) Invalid parameter", "Param recipient must be a business-scoped user ID (like US.13491208655302741918), got \""+in+"\".")
	}
	t := "text" // Meta's default when type is left out
	if m.Type != nil {
		t = *m.Type
	}
	if api == APIMarketingMessages {
		if e := checkMarketing(m, t); e != nil {
			return "", e
		}
	}
	var present bool
	switch t {
	case "text":
		if m.Text == nil || m.Text.Body == nil {
			return "", invalidParam("(#100) The parameter text['body'] is required.", "The parameter text['body'] is required.")
		}
		if *m.Text.Body == "" {
			return "", invalidParam("(#100) Param text['body'] must be at least 1 characters long.", "text['body'] must not be empty.")
		}
		// Meta counts characters, not bytes.
		if utf8.RuneCountInString(*m.Text.Body) > 4096 {
			return "", invalidParam("(#100) Param text['body'] must be at most 4096 characters long.", "text['body'] must be at most 4096 characters long.")
		}
		return t, nil
	case "template":
		tb := m.Template
		if tb == nil {
			return "", invalidParam("(#100) The parameter template is required.", "The parameter template is required.")
		}
		if tb.Name == nil || *tb.Name == "" {
			return "", invalidParam("(#100) The parameter template['name'] is required.", "The parameter template['name'] is required.")
		}
		if tb.Language == nil || tb.Language.Code == "" {
			return "", invalidParam("(#100) The parameter template['language'] is required.", "The parameter template['language']['code'] is required.")
		}
		return t, nil
	case "image":
		present = bool(m.Image)
	case "audio":
		present = bool(m.Audio)
	case "video":
		present = bool(m.Video)
	case "document":
		present = bool(m.Document)
	case "sticker":
		present = bool(m.Sticker)
	case "location":
		present = bool(m.Location)
	case "contacts":
		present = bool(m.Contacts)
	case "interactive":
		present = bool(m.Interactive)
	case "reaction":
		present = bool(m.Reaction)
	default:
		return "", invalidParam("(#100) Param type must be one of {"+strings.ToUpper(strings.Join(messageTypes, ", "))+"} - got \""+t+"\".",
			"The message type \""+t+"\" is not supported.")
	}
	if !present {
		return "", invalidParam("(#100) The parameter "+t+" is required.", "The parameter "+t+" is required for a message of type "+t+".")
	}
	return t, nil
}

// present records that a JSON value other than null was given, without
// keeping it.
type present bool

func (p *present) UnmarshalJSON(b []byte) error {
	*p = present(!bytes.Equal(b, []byte("null")))
	return nil
}

// count is the length of a JSON array, counted without decoding it.
type count int

func (c *count) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*c = 0
		return nil
	}
	if len(b) < 2 || b[0] != '[' {
		return errString("want an array")
	}
	n, depth, inString, empty := 0, 0, false, true
	for i := 1; i < len(b)-1; i++ {
		ch := b[i]
		switch {
		case inString:
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inString = false
			}
		case ch == '"':
			inString, empty = true, false
		case ch == '[' || ch == '{':
			depth++
			empty = false
		case ch == ']' || ch == '}':
			depth--
		case ch == ',' && depth == 0:
			n++
		case ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r':
			empty = false
		}
	}
	if !empty {
		n++
	}
	*c = count(n)
	return nil
}

// phoneLike accepts what Meta accepts in "to": digits, optionally with a
// leading +, spaces, dashes, dots and parentheses, 5 to 20 digits.
func phoneLike(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == '+' && i == 0, c == ' ', c == '-', c == '.', c == '(', c == ')':
		default:
			return false
		}
	}
	return n >= 5 && n <= 20
}

// isBSUID accepts a business-scoped user ID: an ISO 3166 alpha-2 country
// code, a period and up to 128 letters and digits ("US.13491208655302741918"),
// or a parent BSUID, with "ENT." after the country ("US.ENT.118157...").
func isBSUID(s string) bool {
	if len(s) < 4 || s[2] != '.' || !upper(s[0]) || !upper(s[1]) {
		return false
	}
	rest := s[3:]
	if len(rest) > 4 && rest[:4] == "ENT." {
		rest = rest[4:]
	}
	if len(rest) == 0 || len(rest) > 128 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !upper(c) && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func upper(c byte) bool { return c >= 'A' && c <= 'Z' }

// recipientKey is how the simulator keys a recipient (rules, windows, pair
// limits, allowed lists): a BSUID as given, a phone number by its digits.
func recipientKey(s string) string {
	if isBSUID(s) {
		return s
	}
	return digitsOnly(s)
}
