// Package graph is a client for the parts of Meta's Graph API that waq uses:
// sending WhatsApp messages and the read endpoints `waq doctor` checks.
//
// Every answer is read with a size bound and a timeout. An answer is either
// a success, an *APIError (Meta's JSON error object, with its code and
// fbtrace_id), or a *TransportError (no answer, or one that is not a Graph
// API body: an HTML error page, a cut or oversized body). The access token
// is sent in the Authorization header and never appears in an error.
package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultVersion is the Graph API version used when none is configured.
// Meta keeps a version for two years after its successor ships.
const DefaultVersion = "v27.0"

// DefaultBaseURL is Meta's Graph API.
const DefaultBaseURL = "https://graph.facebook.com"

// Client calls the Graph API. Its zero value is not usable; use New.
type Client struct {
	base    string // scheme://host, no trailing slash
	version string
	http    *http.Client
	timeout time.Duration
	maxBody int64
}

// Options configure a Client. The zero value means the defaults.
type Options struct {
	// BaseURL defaults to https://graph.facebook.com.
	BaseURL string
	// Version defaults to DefaultVersion.
	Version string
	// Timeout bounds one request, answer included. Defaults to 15s.
	Timeout time.Duration
	// MaxBody bounds the bytes read of one answer. Defaults to 1 MiB.
	MaxBody int64
	// HTTPClient defaults to a client with keep-alive connections sized for
	// many sends in flight.
	HTTPClient *http.Client
	// H2C speaks HTTP/2 without TLS to an http:// base URL (the simulator
	// serves it). Against Meta (https) HTTP/2 is negotiated by TLS anyway:
	// many sends in flight share a few connections instead of one each.
	H2C bool
}

// New returns a client for the Graph API at opts.BaseURL.
func New(opts Options) (*Client, error) {
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("graph url %q: want http(s)://host[:port]", base)
	}
	version := opts.Version
	if version == "" {
		version = DefaultVersion
	}
	if !validVersion(version) {
		return nil, fmt.Errorf("graph version %q: want the form v27.0", version)
	}
	c := &Client{
		base:    strings.TrimRight(base, "/"),
		version: version,
		http:    opts.HTTPClient,
		timeout: opts.Timeout,
		maxBody: opts.MaxBody,
	}
	if c.timeout <= 0 {
		c.timeout = 15 * time.Second
	}
	if c.maxBody <= 0 {
		c.maxBody = 1 << 20
	}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 4096
		tr.MaxIdleConnsPerHost = 4096
		tr.IdleConnTimeout = 90 * time.Second
		if opts.H2C {
			if u.Scheme != "http" {
				return nil, fmt.Errorf("graph url %q: h2c is HTTP/2 without TLS, for an http:// URL", base)
			}
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr.Protocols = &p
		}
		c.http = &http.Client{Transport: tr}
	}
	return c, nil
}

// Version is the Graph API version the client calls.
func (c *Client) Version() string { return c.version }

// BaseURL is the Graph API host the client calls.
func (c *Client) BaseURL() string { return c.base }

func validVersion(v string) bool {
	if len(v) < 4 || v[0] != 'v' {
		return false
	}
	dot := strings.IndexByte(v, '.')
	if dot < 2 || dot == len(v)-1 {
		return false
	}
	for i := 1; i < len(v); i++ {
		if i != dot && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return true
}

// SendRequest is one message to send.
type SendRequest struct {
	PhoneNumberID string
	Token         string
	// Message is the Graph API message object, sent as the request body.
	Message json.RawMessage
	// JobID is sent as the X-Waq-Job-Id header so that a simulator can count
	// sends per job; Meta ignores it.
	JobID string
	// Edge is the endpoint the message is posted to: EdgeMessages (the
	// Cloud API, when empty) or EdgeMarketingMessages (Meta's Marketing
	// Messages API, which answers the same way).
	Edge string
}

// The Graph API edges a message can be posted to under
// /{version}/{phone_number_id}/.
const (
	EdgeMessages          = "messages"
	EdgeMarketingMessages = "marketing_messages"
)

// SendResult is an accepted message.
type SendResult struct {
	// WAMID is messages[0].id, the WhatsApp message id.
	WAMID string
	// MessageStatus is messages[0].message_status ("accepted", "held_for_quality_assessment"), when given.
	MessageStatus string
	// WAID is contacts[0].wa_id, when given: the number of a send addressed
	// by one.
	WAID string
	// UserID is contacts[0].user_id, when given: the business-scoped user
	// ID of a send addressed by one (Meta gives no wa_id then).
	UserID string
	// FBTraceID is the x-fb-trace-id header, when given.
	FBTraceID  string
	HTTPStatus int
	Usage      *Usage
}

type sendAnswer struct {
	Contacts []struct {
		Input  string `json:"input"`
		WAID   string `json:"wa_id"`
		UserID string `json:"user_id"`
	} `json:"contacts"`
	Messages []struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status"`
	} `json:"messages"`
	Error *errorBody `json:"error"`
}

func (a *sendAnswer) apiError() *errorBody { return a.Error }

// getAnswer keeps a read endpoint's raw answer for the caller's own type.
type getAnswer struct {
	Error *errorBody `json:"error"`
	raw   []byte
}

func (a *getAnswer) apiError() *errorBody { return a.Error }

// answer is a decoded body that may hold Meta's error object.
type answer interface{ apiError() *errorBody }

type errorBody struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	Code      *int   `json:"code"`
	Subcode   int    `json:"error_subcode"`
	Title     string `json:"title"`
	UserTitle string `json:"error_user_title"`
	UserMsg   string `json:"error_user_msg"`
	FBTraceID string `json:"fbtrace_id"`
	ErrorData *struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Send posts one message to /{version}/{phone_number_id}/messages (or the
// request's other edge). It returns a *SendResult, or an error that is an
// *APIError, a *TransportError, or the caller's context error when ctx
// ended first.
func (c *Client) Send(ctx context.Context, req SendRequest) (*SendResult, error) {
	edge := req.Edge
	switch edge {
	case "":
		edge = EdgeMessages
	case EdgeMessages, EdgeMarketingMessages:
	default:
		return nil, fmt.Errorf("graph api: unknown edge %q; want %q or %q", edge, EdgeMessages, EdgeMarketingMessages)
	}
	endpoint := c.base + "/" + c.version + "/" + url.PathEscape(req.PhoneNumberID) + "/" + edge
	var ans sendAnswer
	status, hdr, err := c.do(ctx, http.MethodPost, endpoint, req.Token, req.Message, req.JobID, &ans)
	if err != nil {
		return nil, err
	}
	if len(ans.Messages) == 0 || ans.Messages[0].ID == "" {
		return nil, &TransportError{Kind: TransportNoCode, HTTPStatus: status, FBTraceID: hdr.Get("x-fb-trace-id"),
			Err: errors.New("success answer without messages[0].id")}
	}
	res := &SendResult{
		WAMID:         ans.Messages[0].ID,
		MessageStatus: ans.Messages[0].MessageStatus,
		FBTraceID:     hdr.Get("x-fb-trace-id"),
		HTTPStatus:    status,
		Usage:         ParseUsage(hdr),
	}
	if len(ans.Contacts) > 0 {
		res.WAID, res.UserID = ans.Contacts[0].WAID, ans.Contacts[0].UserID
	}
	return res, nil
}

// Get reads a Graph API object: GET /{version}/{path}?{query}, decoding a
// success into out. Query values (which may hold a token, as debug_token's
// input_token does) never appear in an error.
func (c *Client) Get(ctx context.Context, path string, query url.Values, token string, out any) error {
	endpoint := c.base + "/" + c.version + "/" + strings.TrimLeft(path, "/")
	if len(query) > 0 {
		endpoint += "?" + query.Encode()
	}
	var ans getAnswer
	_, _, err := c.do(ctx, http.MethodGet, endpoint, token, nil, "", &ans)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(ans.raw, out); err != nil {
		return &TransportError{Kind: TransportNotJSON, Err: fmt.Errorf("decode %s: %v", redactPath(path), err)}
	}
	return nil
}

// do runs one request and decodes a 2xx JSON answer into out. A JSON error
// object (at any status) becomes an *APIError.
func (c *Client) do(ctx context.Context, method, endpoint, token string, body []byte, jobID string, out answer) (int, http.Header, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(rctx, method, endpoint, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("graph api: build request: %w", redactErr(err))
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		hreq.Header.Set("Authorization", "Bearer "+token)
	}
	if jobID != "" {
		hreq.Header.Set("X-Waq-Job-Id", jobID)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		kind := TransportConnect
		if rctx.Err() != nil || isTimeout(err) {
			kind = TransportTimeout
		}
		return 0, nil, &TransportError{Kind: kind, Err: redactErr(err)}
	}
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<10 {
			bufPool.Put(buf)
		}
	}()
	n, rerr := buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
	fbtrace := resp.Header.Get("x-fb-trace-id")
	if n > c.maxBody {
		return resp.StatusCode, resp.Header, &TransportError{Kind: TransportTooLarge, HTTPStatus: resp.StatusCode, FBTraceID: fbtrace,
			Err: fmt.Errorf("answer larger than %d bytes", c.maxBody)}
	}
	if rerr != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		kind := TransportCut
		if rctx.Err() != nil || isTimeout(rerr) {
			kind = TransportTimeout
		}
		return resp.StatusCode, resp.Header, &TransportError{Kind: kind, HTTPStatus: resp.StatusCode, FBTraceID: fbtrace, Err: redactErr(rerr)}
	}
	return resp.StatusCode, resp.Header, decodeAnswer(resp.StatusCode, resp.Header, buf.Bytes(), out)
}

// decodeAnswer turns a complete answer body into out, an *APIError or a
// *TransportError. It is the one parser of Graph API answers.
func decodeAnswer(status int, hdr http.Header, data []byte, out answer) error {
	fbtrace := hdr.Get("x-fb-trace-id")
	if err := json.Unmarshal(data, out); err != nil {
		kind := TransportNotJSON
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && isEOFSyntax(err) {
			kind = TransportCut
		}
		return &TransportError{Kind: kind, HTTPStatus: status, FBTraceID: fbtrace,
			Err: fmt.Errorf("%s answer: %s", contentKind(hdr), snippet(data))}
	}
	if e := out.apiError(); e != nil {
		if e.Code == nil {
			return &TransportError{Kind: TransportNoCode, HTTPStatus: status, FBTraceID: fbtrace,
				Err: errors.New("error object without a code")}
		}
		ae := &APIError{
			HTTPStatus: status,
			Code:       *e.Code,
			Subcode:    e.Subcode,
			Type:       e.Type,
			Title:      e.Title,
			Message:    e.Message,
			UserTitle:  e.UserTitle,
			UserMsg:    e.UserMsg,
			FBTraceID:  e.FBTraceID,
			Usage:      ParseUsage(hdr),
		}
		if ae.Title == "" {
			ae.Title = ae.UserTitle
		}
		if e.ErrorData != nil {
			ae.Details = e.ErrorData.Details
		}
		if ae.FBTraceID == "" {
			ae.FBTraceID = fbtrace
		}
		return ae
	}
	if status < 200 || status > 299 {
		return &TransportError{Kind: TransportNoCode, HTTPStatus: status, FBTraceID: fbtrace,
			Err: errors.New("non-2xx answer without an error object")}
	}
	if g, ok := out.(*getAnswer); ok {
		g.raw = append([]byte(nil), data...)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

func isEOFSyntax(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return strings.Contains(err.Error(), "unexpected end of JSON input")
}

func contentKind(h http.Header) string {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "non-JSON"
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return "non-JSON (" + ct + ")"
}

// snippet keeps the start of a body for an error message, printable only.
func snippet(b []byte) string {
	const max = 120
	if len(b) > max {
		b = b[:max]
	}
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
	return fmt.Sprintf("%q", s)
}

// redactErr removes the query string from a *url.Error so that a token
// passed as a query value never reaches a log.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactPath(ue.URL), Err: ue.Err}
	}
	return err
}

func redactPath(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}
