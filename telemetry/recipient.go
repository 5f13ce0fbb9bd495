package telemetry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// RecipientHasher stands in for a recipient's number in spans and logs: a
// keyed hash (HMAC-SHA256, 16 hex digits), the same for one recipient
// everywhere the key is the same, and not reversible without the key (a bare
// hash of a phone number is, by trying every number).
type RecipientHasher struct {
	pool sync.Pool // of keyed HMACs: keying costs more than hashing a number
}

// NewRecipientHasher returns a hasher with key.
func NewRecipientHasher(key []byte) *RecipientHasher {
	k := append([]byte(nil), key...)
	h := &RecipientHasher{}
	h.pool.New = func() any { return hmac.New(sha256.New, k) }
	return h
}

// Hash returns the stand-in for number ("" for "").
func (h *RecipientHasher) Hash(number string) string {
	if number == "" {
		return ""
	}
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(number))
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	h.pool.Put(m)
	var buf [2 + 16]byte
	buf[0], buf[1] = 'r', '_'
	hex.Encode(buf[2:], out[:8])
	return string(buf[:])
}
