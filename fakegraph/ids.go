package fakegraph

import (
	"encoding/base64"
	"math/rand/v2"
	"sync/atomic"
)

const traceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

// newTraceID returns a fresh fbtrace_id shaped like Meta's: 23 characters of
// the URL-safe base64 alphabet ("Az8or2yhqkZfEZ-_4Qn_Bam").
func newTraceID() string {
	var b [23]byte
	var r uint64
	for i := range b {
		if i%10 == 0 { // 10 characters use 60 of the 64 random bits
			r = rand.Uint64()
		}
		b[i] = traceAlphabet[r&63]
		r >>= 6
	}
	return string(b[:])
}

// wamidSeq makes every wamid of a process unique; the mix below spreads it so
// that consecutive ids do not look alike.
var wamidSeq atomic.Uint64

var wamidSeed = rand.Uint64()

// mix64 is SplitMix64's finalizer: a bijection, so distinct inputs give
// distinct outputs.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

const hexUpper = "0123456789ABCDEF"

// newWAMID returns a unique WhatsApp message id shaped like Meta's:
// "wamid." and the base64 of a small record that holds the recipient's
// number and an upper-case hex message key
// ("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI...").
func newWAMID(waID string) string {
	return string(appendWAMID(make([]byte, 0, 6+base64.StdEncoding.EncodedLen(3+64+6+18+1)), waID))
}

// appendWAMID appends a fresh wamid (see newWAMID) to b, built on the stack.
func appendWAMID(b []byte, waID string) []byte {
	if len(waID) > 64 {
		waID = waID[:64]
	}
	key := mix64(wamidSeq.Add(1) ^ wamidSeed)
	extra := byte(rand.Uint32())
	var rawArr [3 + 64 + 6 + 18 + 1]byte
	raw := append(rawArr[:0], 0x1C, 0x18, byte(len(waID)))
	raw = append(raw, waID...)
	raw = append(raw, 0x15, 0x02, 0x00, 0x11, 0x18, 0x12)
	for i := 15; i >= 0; i-- {
		raw = append(raw, hexUpper[(key>>(uint(i)*4))&15])
	}
	raw = append(raw, hexUpper[extra>>4], hexUpper[extra&15], 0x00)
	b = append(b, "wamid."...)
	return base64.StdEncoding.AppendEncode(b, raw)
}
