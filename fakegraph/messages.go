package fakegraph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// decision is what the simulator answers one send.
type decision struct {
	resp  *Response // a scripted answer; nil for the simulator's own
	err   *errSpec  // the simulator's own error; nil with resp nil is a success
	usage []header  // rate-limit headers
	waID  string    // the recipient: wa_id, or the BSUID when bsuid
	input string    // "to" (or "recipient") as the request gave it
	bsuid bool      // sent to a business-scoped user ID
	// status is messages[].message_status of an accepted send.
	status string
	phone  *phoneInfo
	// async is a failure to report by webhook after accepting.
	async *AsyncFailure
	// slot is the strict throughput window that admitted the send at
	// slotAt; released unless the send is accepted.
	slot   *slidingWindow
	slotAt time.Time
}

type header struct{ k, v string }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// messages serves POST /{version}/{phone_number_id}/messages and, with api
// APIMarketingMessages, /marketing_messages.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, phoneID, api string) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	n, rerr := buf.ReadFrom(io.LimitReader(r.Body, s.maxBody+1))
	s.answerSend(w, r, phoneID, api, buf.Bytes(), n > s.maxBody || rerr != nil)
	if buf.Cap() <= 64<<10 {
		bufPool.Put(buf)
	}
}

// answerSend checks a send to the messages endpoint with every check and
// scenario decision, answers it and counts it.
func (s *Server) answerSend(w http.ResponseWriter, r *http.Request, phoneID, api string, body []byte, tooLarge bool) {
	sn := s.snap.Load()
	now := s.now()
	send := Send{Time: now, PhoneNumberID: phoneID, JobID: r.Header.Get("X-Waq-Job-Id"), API: api}
	if send.JobID == "" {
		sum := sha256.Sum256(body)
		send.JobID = "body:" + hex.EncodeToString(sum[:8])
	}
	d := s.decide(sn, r, &send, body, tooLarge, now)
	if d.resp != nil {
		s.writeScripted(w, r, sn, &send, &d)
	} else {
		s.wait(r.Context(), sn.latency.delay())
		if d.err != nil {
			d.err.headers = append(d.err.headers, d.usage...)
			s.writeError(w, &send, d.err)
		} else {
			s.writeAccept(w, &send, &d)
		}
	}
	if d.slot != nil && send.Outcome != OutcomeAccepted {
		d.slot.release(d.slotAt)
	}
	s.stats.record(&send)
	if s.cfg.OnSend != nil {
		s.cfg.OnSend(send)
	}
	if send.Outcome == OutcomeAccepted {
		s.hooks.accepted(sn, &send, d.phone, d.async)
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("send", "job_id", send.JobID, "phone_number_id", send.PhoneNumberID,
			"outcome", send.Outcome, "code", send.Code, "http_status", send.HTTPStatus, "rule", send.Rule)
	}
}

// decide checks a send the way Meta does: token, phone number, body, then
// the scripted rules and random failures, then the account, the limits, the
// recipient, the template and the window.
func (s *Server) decide(sn *snapshot, r *http.Request, send *Send, body []byte, tooLarge bool, now time.Time) decision {
	var d decision
	if e := sn.checkToken(bearer(r), now); e != nil {
		d.err = e
		return d
	}
	d.phone = sn.phone(send.PhoneNumberID)
	if d.phone == nil {
		d.err = unknownObject("post", send.PhoneNumberID)
		return d
	}
	if tooLarge {
		d.err = invalidParam("(#100) The request body is too large.", "The request body is larger than the simulator's bound of "+strconv.FormatInt(s.maxBody, 10)+" bytes.")
		return d
	}
	var msg messageBody
	if err := json.Unmarshal(body, &msg); err != nil {
		d.err = invalidParam("(#100) Invalid parameter", "The request body is not a valid JSON object: "+err.Error())
		return d
	}
	msgType, e := checkMessage(&msg, send.API)
	if e != nil {
		if in, _ := msg.recipient(); in != "" {
			send.To = in
		}
		d.err = e
		return d
	}
	d.input, d.bsuid = msg.recipient()
	d.waID = recipientKey(d.input)
	send.To = d.waID
	send.Type = msgType
	if msg.Template != nil {
		send.Template = *msg.Template.Name
	}

	for _, lr := range sn.rules {
		if lr.matches(send, msgType) && lr.take() {
			send.Rule = lr.Name
			d.resp = &lr.Respond
			d.async = lr.Respond.Async
			d.status = lr.Respond.MessageStatus
			return d
		}
	}
	if len(sn.random) > 0 {
		u, cum := rand.Float64(), 0.0
		for i := range sn.random {
			f := &sn.random[i]
			if f.PhoneNumberID != "" && f.PhoneNumberID != send.PhoneNumberID {
				continue
			}
			cum += f.Rate
			if u < cum {
				send.Rule = "random-" + strconv.Itoa(i+1)
				d.resp = &f.Respond
				d.async = f.Respond.Async
				d.status = f.Respond.MessageStatus
				return d
			}
		}
	}

	if sn.locked[send.PhoneNumberID] || sn.locked[d.phone.WABAID] {
		d.err = codeError(131031)
		return d
	}
	if e := s.checkLimits(sn, send, &d, now); e != nil {
		d.err = e
		return d
	}
	if len(d.phone.AllowedRecipients) > 0 && !slices.Contains(d.phone.AllowedRecipients, d.waID) {
		d.err = codeError(131030)
		return d
	}
	if d.phone.displayDigits != "" && d.phone.displayDigits == d.waID && len(sn.phones) > 0 {
		d.err = codeError(131021)
		return d
	}
	if msg.Template != nil && len(sn.templates) > 0 {
		if e := sn.checkTemplate(msg.Template, d.phone.WABAID, d.bsuid, send.API); e != nil {
			d.err = e
			return d
		}
	}
	if sn.window.Enforce && msgType != "template" && !s.windowOpen(sn, send.PhoneNumberID, d.waID, now) {
		if sn.window.Async && sn.webhooks.URL != "" {
			d.async = &AsyncFailure{Error: Code(131047)}
			send.Rule = "window"
		} else {
			d.err = codeError(131047)
		}
	}
	return d
}

// wait sleeps d unless ctx ends first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.hooks.done:
		return false
	}
}

func (l Latency) delay() time.Duration {
	d := l.Base.D()
	if l.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(l.Jitter)))
	}
	return d
}
