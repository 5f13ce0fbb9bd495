package fakegraph

import (
	"io"
	"net/http"
	"sync"
)

// The lean mode (Config.Fast) answers a send the way Meta's servers cost a
// sender: nothing. A benchmark that runs the simulator on the same machine
// as the worker otherwise measures the simulator as much as the worker. The
// success answer is Meta's (contacts with input and wa_id, messages with a
// wamid and message_status), written into a pooled buffer; the body is read
// to its end (keep-alive needs it) and scanned only for the top-level "to".

// fastBuf holds a request body or an answer; pooled, so the lean path does
// not allocate one per request.
var fastBuf = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooled bounds the buffers put back: one huge body must not stay.
const maxPooled = 64 << 10

// fastMessages serves POST /{version}/{phone_number_id}/messages in the lean
// mode.
func (s *Server) fastMessages(w http.ResponseWriter, r *http.Request, phoneID string) {
	in := fastBuf.Get().(*[]byte)
	defer putBuf(in)
	body, tooLarge, err := readBody(r.Body, (*in)[:0], s.maxBody)
	*in = body
	sn := s.snap.Load()
	now := s.now()
	to, ok := topLevelString(body, "to") // BSUID sends ("recipient") take the full path
	// Rules added while it runs (the control API, AddRules) are answered:
	// every send takes the full path until they are cleared (the
	// scenario's own rules are not).
	if sn.addedRules || !ok || tooLarge || err != nil || !phoneLike(to) || len(to) > 64 ||
		sn.phone(phoneID) == nil || sn.checkToken(bearer(r), now) != nil {
		// What the lean path cannot accept, the full checks answer with
		// Meta's error (or accept: a "to" written with escapes).
		s.answerSend(w, r, phoneID, "messages", body, tooLarge || err != nil)
		return
	}
	if sn.latency.Base > 0 || sn.latency.Jitter > 0 {
		s.wait(r.Context(), sn.latency.delay())
	}

	out := fastBuf.Get().(*[]byte)
	defer putBuf(out)
	b := append((*out)[:0], `{"messaging_product":"whatsapp","contacts":[{"input":"`...)
	b = append(b, to...)
	b = append(b, `","wa_id":"`...)
	waID := digitsOnly(to) // allocates only when to has more than digits
	b = append(b, waID...)
	b = append(b, `"}],"messages":[{"id":"`...)
	idStart := len(b)
	b = appendWAMID(b, waID)
	idEnd := len(b)
	b = append(b, `","message_status":"accepted"}]}`...)
	*out = b
	// Content-Length is set by net/http: the answer is written at once.
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)

	jobID := r.Header.Get("X-Waq-Job-Id")
	s.stats.acceptedJob(jobID)
	if s.cfg.OnSend != nil {
		s.cfg.OnSend(Send{Time: now, JobID: jobID, PhoneNumberID: phoneID, To: waID,
			Outcome: OutcomeAccepted, HTTPStatus: http.StatusOK, WAMID: string(b[idStart:idEnd])})
	}
}

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		fastBuf.Put(b)
	}
}

// readBody appends r to b until its end; tooLarge once it passes max bytes
// (the rest is left unread).
func readBody(r io.Reader, b []byte, max int64) (_ []byte, tooLarge bool, _ error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > max {
			return b, true, nil
		}
		if err == io.EOF {
			return b, false, nil
		}
		if err != nil {
			return b, false, err
		}
	}
}

// topLevelString finds the string value of key among the members of the
// JSON object b, skipping nested values without decoding them; like
// encoding/json, the last of repeated keys wins. ok is false when b is not
// an object, the key is missing or its value is not a plain string (escapes
// included: the full checks handle those). Nested values are skipped by
// counting brackets, not validated.
func topLevelString(b []byte, key string) (val string, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return "", false
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		ks, ke, esc, next := scanString(b, i)
		if next < 0 {
			return "", false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipSpace(b, i+1)
		match := !esc && string(b[ks:ke]) == key
		if match && (i >= len(b) || b[i] != '"') {
			return "", false
		}
		vs, ve := i+1, 0
		if i = skipValue(b, i); i < 0 {
			return "", false
		}
		if match {
			ve = i - 1
			if _, _, vesc, _ := scanString(b, vs-1); vesc {
				return "", false
			}
			val, ok = string(b[vs:ve]), true
		}
		i = skipSpace(b, i)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			if skipSpace(b, i+1) != len(b) {
				return "", false
			}
			return val, ok
		default:
			return "", false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the JSON string starting at b[i] == '"': its contents
// are b[start:end], esc says whether they need decoding (escapes, or bytes
// beyond ASCII, which encoding/json may replace), next is the index after
// the closing quote (-1 when there is none).
func scanString(b []byte, i int) (start, end int, esc bool, next int) {
	start = i + 1
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			esc = true
			j++
		case c == '"':
			return start, j, esc, j + 1
		case c >= 0x80:
			esc = true
		}
	}
	return 0, 0, false, -1
}

// skipValue returns the index after the JSON value at b[i], or -1. Nested
// objects and arrays are skipped by counting brackets outside strings; the
// value is not validated (the full checks are not run on this path).
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		_, _, _, next := scanString(b, i)
		return next
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				_, _, _, next := scanString(b, i)
				if next < 0 {
					return -1
				}
				i = next - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default: // a number, true, false or null
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return -1
	}
}
