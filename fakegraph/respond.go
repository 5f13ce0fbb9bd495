package fakegraph

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// errSpec is one Graph API error answer before it is written.
type errSpec struct {
	code      int
	status    int
	typ       string
	message   string
	details   string
	subcode   int
	userTitle string
	userMsg   string
	// noData leaves out error_data, as Graph-level errors (tokens, paths,
	// unknown objects) do.
	noData  bool
	headers []header
}

// codeError is Meta's answer for code, from the catalog.
func codeError(code int) *errSpec {
	ci := Lookup(code)
	e := &errSpec{code: code, status: ci.HTTPStatus, typ: ci.Type, message: ci.message(), details: ci.Details, subcode: ci.Subcode}
	if ci.User {
		e.userTitle, e.userMsg = ci.Title, ci.Details
	}
	if code == 190 && e.subcode == 463 {
		e.noData = true
	}
	return e
}

// scriptedError is the answer of a rule or random failure of kind error.
func scriptedError(r *Response, now time.Time) *errSpec {
	e := codeError(*r.Error)
	if e.code == 190 && e.subcode == 463 && r.Message == "" {
		e.message = expiredMessage(now.Add(-time.Hour), now)
	}
	if r.Status != 0 {
		e.status = r.Status
	}
	if r.Type != "" {
		e.typ = r.Type
	}
	if r.Message != "" {
		e.message = r.Message
	}
	if r.Details != "" {
		e.details = r.Details
		if e.userMsg != "" {
			e.userMsg = r.Details
		}
	}
	if r.Title != "" {
		e.userTitle = r.Title
		if e.userMsg == "" {
			e.userMsg = e.details
		}
	}
	switch {
	case r.Subcode > 0:
		e.subcode = r.Subcode
	case r.Subcode < 0:
		e.subcode = 0
	}
	return e
}

func invalidParam(message, details string) *errSpec {
	e := codeError(100)
	e.message = message
	e.details = details
	e.userMsg = details
	return e
}

// unknownObject is Graph's answer for an id it does not know (code 100,
// subcode 33, GraphMethodException).
func unknownObject(method, id string) *errSpec {
	return &errSpec{
		code: 100, subcode: 33, status: http.StatusBadRequest, typ: "GraphMethodException", noData: true,
		message: "Unsupported " + method + " request. Object with ID '" + id + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
	}
}

func unsupported(method, id string) *errSpec {
	return unknownObject(strings.ToLower(method), id)
}

func unknownPath(path string) *errSpec {
	e := codeError(2500)
	e.message = "Unknown path components: " + path
	e.noData = true
	return e
}

type errorEnvelope struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Message   string     `json:"message"`
	Type      string     `json:"type"`
	Code      int        `json:"code"`
	ErrorData *errorData `json:"error_data,omitempty"`
	Subcode   int        `json:"error_subcode,omitempty"`
	UserTitle string     `json:"error_user_title,omitempty"`
	UserMsg   string     `json:"error_user_msg,omitempty"`
	FBTraceID string     `json:"fbtrace_id"`
}

type errorData struct {
	MessagingProduct string `json:"messaging_product"`
	Details          string `json:"details"`
}

// The constant header values, shared by every answer (net/http only reads
// them; the full slice expressions make an append copy).
var (
	hdrJSON     = []string{"application/json; charset=UTF-8"}[:1:1]
	hdrRev      = []string{"1029384756"}[:1:1]
	hdrVersion  = []string{"v27.0"}[:1:1]
	hdrNoStore  = []string{"no-store"}[:1:1]
	hdrTraceKey = "X-Fb-Trace-Id"
)

// graphHeaders are the headers of every Graph API answer.
func graphHeaders(h http.Header, trace string) {
	h["Content-Type"] = hdrJSON
	h[hdrTraceKey] = []string{trace}
	h["X-Fb-Rev"] = hdrRev
	h["Facebook-Api-Version"] = hdrVersion
	h["Cache-Control"] = hdrNoStore
}

// writeErrorBody writes Meta's error body and returns the trace id.
func writeErrorBody(w http.ResponseWriter, e *errSpec) string {
	trace := newTraceID()
	obj := errorObject{Message: e.message, Type: e.typ, Code: e.code, Subcode: e.subcode,
		UserTitle: e.userTitle, UserMsg: e.userMsg, FBTraceID: trace}
	if !e.noData && e.details != "" {
		obj.ErrorData = &errorData{MessagingProduct: "whatsapp", Details: e.details}
	}
	body, _ := json.Marshal(errorEnvelope{Error: obj})
	h := w.Header()
	graphHeaders(h, trace)
	for _, kv := range e.headers {
		h.Set(kv.k, kv.v)
	}
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+strings.ReplaceAll(e.message, `"`, `'`)+`"`)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
	return trace
}

// writeError writes an error answer of the messages endpoint.
func (s *Server) writeError(w http.ResponseWriter, send *Send, e *errSpec) {
	send.FBTraceID = writeErrorBody(w, e)
	send.Outcome = OutcomeError
	send.Code = &e.code
	send.HTTPStatus = e.status
}

// writeGraphError writes an error answer outside the messages endpoint.
func (s *Server) writeGraphError(w http.ResponseWriter, r *http.Request, e *errSpec) {
	writeErrorBody(w, e)
}

// writeAccept writes Meta's success answer.
func (s *Server) writeAccept(w http.ResponseWriter, send *Send, d *decision) {
	trace := newTraceID()
	wamid := newWAMID(d.waID)
	b := make([]byte, 0, 160+len(d.input)+len(wamid))
	status := d.status
	if status == "" {
		status = StatusAccepted
	}
	b = append(b, `{"messaging_product":"whatsapp","contacts":[{"input":`...)
	b = appendJSONString(b, d.input)
	if d.bsuid {
		b = append(b, `,"user_id":`...) // a BSUID send has no wa_id
	} else {
		b = append(b, `,"wa_id":`...)
	}
	b = appendJSONString(b, d.waID)
	b = append(b, `}],"messages":[{"id":"`...)
	b = append(b, wamid...)
	b = append(b, `","message_status":`...)
	b = appendJSONString(b, status)
	b = append(b, `}]}`...)
	h := w.Header()
	graphHeaders(h, trace)
	for _, kv := range d.usage {
		h.Set(kv.k, kv.v)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	send.Outcome = OutcomeAccepted
	send.HTTPStatus = http.StatusOK
	send.WAMID = wamid
	send.MessageStatus = status
	send.FBTraceID = trace
}

// writeScripted writes the answer of a rule or random failure.
func (s *Server) writeScripted(w http.ResponseWriter, r *http.Request, sn *snapshot, send *Send, d *decision) {
	resp := d.resp
	k := resp.kind()
	delay := sn.latency.delay() + resp.Delay.D()
	if k == KindSlow && resp.Delay == 0 {
		delay += 5 * time.Second
	}
	if !s.wait(r.Context(), delay) && k != KindHang {
		// The client gave up (or the server is closing) while we waited:
		// nobody reads an answer.
		send.Outcome = "abandoned"
		if r.Context().Err() == nil {
			s.drop(w)
		}
		return
	}
	switch k {
	case KindAccept, KindSlow:
		s.writeAccept(w, send, d)
	case KindError:
		e := scriptedError(resp, s.now())
		regain := resp.RegainAccess.D()
		if regain <= 0 {
			regain = time.Minute
		}
		switch e.code {
		case 4:
			e.headers = append(e.headers, header{"X-App-Usage", appUsageHeader(100)})
		case 80007:
			e.headers = append(e.headers, header{"X-Business-Use-Case-Usage", bucUsageHeader(d.phone.WABAID, 100, regain)})
		}
		s.writeError(w, send, e)
	case KindHTML:
		status := orDefault(resp.Status, http.StatusBadGateway)
		body := resp.Body
		if body == "" {
			body = htmlPage(status)
		}
		s.writeRaw(w, send, k, status, orString(resp.ContentType, "text/html; charset=utf-8"), body)
	case KindRaw:
		s.writeRaw(w, send, k, orDefault(resp.Status, http.StatusOK), orString(resp.ContentType, "application/json; charset=UTF-8"), resp.Body)
	case KindNoCode:
		status := orDefault(resp.Status, http.StatusInternalServerError)
		trace := newTraceID()
		body := `{"error":{"message":"An unknown error occurred","type":"OAuthException","is_transient":true,"fbtrace_id":"` + trace + `"}}`
		if status >= 200 && status <= 299 {
			body = `{"messaging_product":"whatsapp","contacts":[],"messages":[]}`
		}
		w.Header().Set("X-Fb-Trace-Id", trace)
		s.writeRaw(w, send, k, status, "application/json; charset=UTF-8", body)
		send.FBTraceID = trace
	case KindCut:
		s.writeCut(w, send, resp)
	case KindHuge:
		s.writeHuge(w, send, resp)
	case KindHang:
		select {
		case <-r.Context().Done():
		case <-s.hooks.done:
			s.drop(w)
		}
		send.Outcome = string(k)
	case KindDrop:
		s.drop(w)
		send.Outcome = string(k)
	}
}

func orDefault(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

func orString(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func (s *Server) writeRaw(w http.ResponseWriter, send *Send, k Kind, status int, contentType, body string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	send.Outcome = string(k)
	send.HTTPStatus = status
}

// writeCut declares the whole of a success body but writes half of it; the
// server then closes the connection, so the client reads an unexpected EOF.
func (s *Server) writeCut(w http.ResponseWriter, send *Send, resp *Response) {
	trace := newTraceID()
	full := `{"messaging_product":"whatsapp","contacts":[{"input":"` + send.To + `","wa_id":"` + send.To + `"}],"messages":[{"id":"` + newWAMID(send.To) + `","message_status":"accepted"}]}`
	if resp.Body != "" {
		full = resp.Body
	}
	status := orDefault(resp.Status, http.StatusOK)
	h := w.Header()
	graphHeaders(h, trace)
	h["Content-Length"] = []string{strconv.Itoa(len(full) + 1)}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(full[:len(full)/2]))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.drop(w)
	send.Outcome = string(KindCut)
	send.HTTPStatus = status
	send.FBTraceID = trace
}

// hugeChunk is the padding of huge answers, shared by all of them.
var hugeChunk = []byte(strings.Repeat("x", 32<<10))

// writeHuge writes a valid JSON body of resp.Size bytes (5 MiB by default).
func (s *Server) writeHuge(w http.ResponseWriter, send *Send, resp *Response) {
	size := orDefault(resp.Size, 5<<20)
	trace := newTraceID()
	head := `{"messaging_product":"whatsapp","contacts":[],"messages":[],"padding":"`
	tail := `"}`
	pad := max(size-len(head)-len(tail), 0)
	status := orDefault(resp.Status, http.StatusOK)
	h := w.Header()
	graphHeaders(h, trace)
	h["Content-Length"] = []string{strconv.Itoa(len(head) + pad + len(tail))}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(head))
	for pad > 0 {
		n := min(pad, len(hugeChunk))
		if _, err := w.Write(hugeChunk[:n]); err != nil {
			break
		}
		pad -= n
	}
	_, _ = w.Write([]byte(tail))
	send.Outcome = string(KindHuge)
	send.HTTPStatus = status
	send.FBTraceID = trace
}

// drop closes the connection under the handler.
func (s *Server) drop(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	if err == nil {
		_ = conn.Close()
		return
	}
	// Not an HTTP/1 connection (or already written to): abort the answer,
	// which net/http turns into a closed connection or a reset stream.
	panic(http.ErrAbortHandler)
}

func htmlPage(status int) string {
	text := http.StatusText(status)
	return `<!DOCTYPE html>
<html lang="en" id="facebook"><head><title>Facebook | Error</title><meta charset="utf-8"></head>
<body><div id="content"><h1>Sorry, something went wrong.</h1>
<p>We're working on it and we'll get it fixed as soon as we can.</p>
<p>` + strconv.Itoa(status) + ` ` + text + `</p></div></body></html>
`
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
