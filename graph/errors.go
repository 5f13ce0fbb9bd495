package graph

import (
	"errors"
	"fmt"
	"strconv"
)

// APIError is an error answer of the Graph API: a JSON body with an "error"
// object. Find it with errors.As.
type APIError struct {
	// HTTPStatus is the status line's code (400, 401, 500, ...).
	HTTPStatus int `json:"http_status"`
	// Code is error.code, the number the policy is keyed on.
	Code int `json:"code"`
	// Subcode is error.error_subcode; 0 when absent.
	Subcode int `json:"error_subcode,omitempty"`
	// Type is error.type, e.g. "OAuthException".
	Type string `json:"type,omitempty"`
	// Title is error.title or, when absent, error.error_user_title.
	Title string `json:"title,omitempty"`
	// Message is error.message, e.g. "(#131000) Something went wrong".
	Message string `json:"message,omitempty"`
	// Details is error.error_data.details, Meta's most specific explanation.
	Details string `json:"details,omitempty"`
	// UserTitle and UserMsg are error.error_user_title / error_user_msg.
	UserTitle string `json:"error_user_title,omitempty"`
	UserMsg   string `json:"error_user_msg,omitempty"`
	// FBTraceID is error.fbtrace_id (or the x-fb-trace-id header), the id
	// Meta support asks for.
	FBTraceID string `json:"fbtrace_id,omitempty"`
	// Usage holds the rate-limit headers of the answer, when there were any.
	Usage *Usage `json:"-"`
}

func (e *APIError) Error() string {
	s := "graph api: http " + strconv.Itoa(e.HTTPStatus) + ": code " + strconv.Itoa(e.Code)
	if e.Subcode != 0 {
		s += "/" + strconv.Itoa(e.Subcode)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Details != "" {
		s += " (" + e.Details + ")"
	}
	if e.FBTraceID != "" {
		s += " fbtrace_id=" + e.FBTraceID
	}
	return s
}

// TransportKind says why an answer could not be used at all.
type TransportKind string

// The transport failures. All of them are transient from the policy's point
// of view: the request may or may not have reached Meta.
const (
	TransportTimeout  TransportKind = "timeout"   // no complete answer in time
	TransportConnect  TransportKind = "connect"   // refused, reset, DNS, TLS
	TransportNotJSON  TransportKind = "not_json"  // an HTML error page, plain text
	TransportCut      TransportKind = "cut"       // the body ended early
	TransportTooLarge TransportKind = "too_large" // the body passed the read bound
	TransportNoCode   TransportKind = "no_code"   // JSON, but neither a success nor an error object
)

// TransportError is an answer that could not be used: no answer, or one that
// is not a Graph API JSON body. HTTPStatus is 0 when there was no answer.
type TransportError struct {
	Kind       TransportKind
	HTTPStatus int
	FBTraceID  string
	Err        error
}

func (e *TransportError) Error() string {
	s := "graph api: " + string(e.Kind)
	if e.HTTPStatus != 0 {
		s += ": http " + strconv.Itoa(e.HTTPStatus)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *TransportError) Unwrap() error { return e.Err }

// Failure is what the policy needs to know of a failed attempt, whatever
// shape the failure took.
type Failure struct {
	HTTPStatus int
	HasCode    bool // the answer carried an error code (0 is a real code)
	Code       int
	Subcode    int  // 0 when absent
	Transport  bool // no usable answer (timeout, refused, not JSON, cut, too large)
	FBTraceID  string
}

// Classify turns an error of Client.Send into a Failure. The second result
// is false when err is not a Graph API or transport error (for example a
// cancelled context), which the caller must not count as an attempt.
func Classify(err error) (Failure, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return Failure{HTTPStatus: ae.HTTPStatus, HasCode: true, Code: ae.Code, Subcode: ae.Subcode, FBTraceID: ae.FBTraceID}, true
	}
	var te *TransportError
	if errors.As(err, &te) {
		return Failure{HTTPStatus: te.HTTPStatus, Transport: true, FBTraceID: te.FBTraceID}, true
	}
	return Failure{}, false
}

// String is a short form for logs: "131000", "http 503", "transport".
func (f Failure) String() string {
	switch {
	case f.HasCode:
		if f.Subcode != 0 {
			return fmt.Sprintf("%d/%d", f.Code, f.Subcode)
		}
		return strconv.Itoa(f.Code)
	case f.Transport && f.HTTPStatus != 0:
		return fmt.Sprintf("transport (http %d)", f.HTTPStatus)
	case f.Transport:
		return "transport"
	default:
		return fmt.Sprintf("http %d", f.HTTPStatus)
	}
}
