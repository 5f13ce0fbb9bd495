package deadletter

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/waqhq/waq/queue"
)

// Brief is an entry as a preview or result line shows it, so that an
// operator sees what is acted on rather than bare ids: the recipient
// masked (a number or a business-scoped user ID), the template, the code, when it was parked (its age).
type Brief struct {
	ToMasked string     `json:"to_masked,omitempty"`
	Template string     `json:"template,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Code     *int       `json:"code,omitempty"`
	ParkedAt *time.Time `json:"parked_at,omitempty"`
}

// Brief returns the entry's brief.
func (e *Entry) Brief() Brief {
	b := Brief{ToMasked: MaskRecipient(e.Addressee()), Template: e.Template, Reason: e.Reason}
	if c, ok := e.Code(); ok {
		b.Code = &c
	}
	if !e.ParkedAt.IsZero() {
		t := e.ParkedAt.UTC()
		b.ParkedAt = &t
	}
	return b
}

// briefOf is the brief of an index row read with statFields (reason,
// code, phone number, template, recipient) and its score.
func briefOf(r row) Brief {
	b := Brief{Reason: r.fields[0], Template: r.fields[3], ToMasked: MaskRecipient(r.fields[4])}
	if c, err := strconv.Atoi(r.fields[1]); err == nil {
		b.Code = &c
	}
	if r.score > 0 {
		t := time.UnixMilli(r.score).UTC()
		b.ParkedAt = &t
	}
	return b
}

// MaskRecipient hides a recipient's number but its last four characters
// ("•••••••4567"); a business-scoped user ID keeps its country prefix (and
// a parent's "ENT.") too: "US.••••••••••••••••1918". Pages, previews and
// results show recipients this way; only `waq dlq show`, `list` and the
// export for Meta support carry them in full.
func MaskRecipient(s string) string {
	if queue.IsUserID(s) {
		n := len("US.")
		if queue.IsParentUserID(s) {
			n = len("US.ENT.")
		}
		return s[:n] + maskTail(s[n:])
	}
	return maskTail(s)
}

// maskTail hides all of s but its last four characters (a third of it
// when it is shorter than eight).
func maskTail(s string) string {
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return ""
	}
	keep := 4
	if n < 8 {
		keep = n / 3
	}
	r := []rune(s)
	return strings.Repeat("•", n-keep) + string(r[n-keep:])
}

// MaskNumbers masks every run of seven or more digits in s (with a
// leading + or a business-scoped user id's "CC." prefix left as it is):
// a raw body that did not parse as a job has no recipient field to mask
// by, so any phone-number-like run is hidden.
func MaskNumbers(s string) string {
	var b strings.Builder
	run := 0
	flush := func(end int) {
		if run >= 7 {
			b.WriteString(MaskRecipient(s[end-run : end]))
		} else {
			b.WriteString(s[end-run : end])
		}
		run = 0
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			run++
			continue
		}
		flush(i)
		b.WriteByte(s[i])
	}
	flush(len(s))
	return b.String()
}
