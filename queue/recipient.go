package queue

import (
	"strings"
)

// MaxUserIDLen bounds a business-scoped user ID: a two-letter country
// code, a dot, "ENT." for a parent BSUID, and up to 128 letters and digits
// (Meta's documented format).
const MaxUserIDLen = 2 + 1 + 4 + 128

// addressee reads a message's recipient: exactly one of to (a number) and
// recipient (a business-scoped user ID).
func addressee(to, recipient *string) (number, userID string, err error) {
	switch {
	case to != nil && recipient != nil:
		return "", "", invalid("message.recipient", "both to and recipient are set; give exactly one (to for a number, recipient for a business-scoped user ID)")
	case recipient != nil:
		if err := ValidateUserID(*recipient); err != nil {
			return "", "", err
		}
		return "", *recipient, nil
	case to == nil:
		return "", "", invalid("message.to", "missing: give to (digits with country code) or recipient (a business-scoped user ID)")
	}
	if err := ValidateRecipient(*to); err != nil {
		return "", "", err
	}
	return *to, "", nil
}

// ValidateRecipient checks a recipient number: digits only, with country
// code, 8 to 15 digits (E.164 without the "+").
func ValidateRecipient(to string) error {
	if to == "" {
		return invalid("message.to", "missing")
	}
	if !digits(to) {
		if IsUserID(to) {
			return invalid("message.to", "%q is a business-scoped user ID, not a number; put it in recipient instead of to", to)
		}
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

// ValidateUserID checks a business-scoped user ID (BSUID) as Meta formats
// it: an ISO 3166 two-letter country code in capitals, a dot, and 1 to 128
// letters and digits ("US.13491208655302741918"); a parent BSUID has "ENT."
// after the dot ("US.ENT.11815799212886844830").
func ValidateUserID(id string) error {
	if id == "" {
		return invalid("message.recipient", "missing")
	}
	if IsUserID(id) {
		return nil
	}
	if digits(id) || digits(NormalizeRecipient(id)) {
		return invalid("message.recipient", "%q looks like a phone number; a number goes in to, recipient takes a business-scoped user ID like \"US.13491208655302741918\"", id)
	}
	return invalid("message.recipient", "%q is not a business-scoped user ID; want a two-letter country code in capitals, a dot and 1 to 128 letters and digits, like \"US.13491208655302741918\" (a parent: \"US.ENT.…\")", id)
}

// IsUserID reports whether s is in the format of a business-scoped user ID
// or a parent one.
func IsUserID(s string) bool {
	if len(s) < 4 || len(s) > MaxUserIDLen || s[2] != '.' || !upper(s[0]) || !upper(s[1]) {
		return false
	}
	rest := s[3:]
	if r, ok := strings.CutPrefix(rest, "ENT."); ok {
		rest = r
	}
	if rest == "" || len(rest) > 128 {
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

// IsParentUserID reports whether s is a parent business-scoped user ID
// ("US.ENT.…"), shared across a managed business's portfolios.
func IsParentUserID(s string) bool {
	return IsUserID(s) && strings.HasPrefix(s[3:], "ENT.")
}

func upper(c byte) bool { return c >= 'A' && c <= 'Z' }

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
