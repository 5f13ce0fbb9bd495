package telemetry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// RecipientHasher stands in for a recipient's number in spans and logs: a
// keyed hash (HMAC-SHA256, 16 hex digits), the same for one recipient
// everywhere the key is the same, and not reversible without the key (a bare
// hash of a phone number is, by trying every number).
type RecipientHasher struct{ key []byte }

// NewRecipientHasher returns a hasher with key.
func NewRecipientHasher(key []byte) *RecipientHasher {
	return &RecipientHasher{key: append([]byte(nil), key...)}
}

// Hash returns the stand-in for number ("" for "").
func (h *RecipientHasher) Hash(number string) string {
	if number == "" {
		return ""
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(number))
	return "r_" + hex.EncodeToString(m.Sum(nil)[:8])
}
