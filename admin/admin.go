// Package admin serves the dead-letter operations over HTTP under /admin/
// on the worker's listener: the same deadletter functions `waq dlq` calls,
// behind a bearer token.
//
//	GET  /admin/dlq             list: NDJSON lines as `waq dlq list --json`
//	GET  /admin/dlq/{id}        one whole entry
//	GET  /admin/dlq/stats       counts and the isolation verdict
//	GET  /admin/dlq/export      a support ticket (?format=text for text)
//	POST /admin/dlq/replay      NDJSON result lines
//	POST /admin/dlq/purge       NDJSON result lines
//	GET  /admin/overview        the fleet's counts per minute (package fleet)
//
// Filters are query parameters named like the CLI's flags (reason, code,
// phone_number_id, template, since, limit, cursor); replay and purge take
// a JSON body with ids or those filters, plus dry_run, as_template,
// language and older_than.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/authlimit"
)

// Options configure the admin API.
type Options struct {
	// Token is the bearer token every request must carry. Empty turns the
	// API off: every path answers 404, as if nothing were mounted.
	Token string
	// Store is the dead-letter store.
	Store *deadletter.Store
	// Publisher republishes replayed jobs; nil makes replay answer 503.
	Publisher deadletter.Publisher
	// Fleet reads the workers' counts for /admin/overview; nil answers
	// 503 there.
	Fleet *fleet.Reader
	// MaxBody bounds a request body. Defaults to 1 MiB (10,000 ids fit).
	MaxBody int64
	// Logger records who changed what (never the token). Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Limiter limits wrong tokens per client address (429 past it); share
	// one with the console so that both draw on one budget. Defaults to a
	// limiter of the API's own with authlimit's defaults.
	Limiter *authlimit.Limiter
}

// Surface names the admin API in the limiter's counts
// (waq_auth_failures_total{surface="admin_api"}).
const Surface = "admin_api"

// NextCursorHeader carries the cursor of the next page of a list ("" or
// absent when there is none): the body holds entries only.
const NextCursorHeader = "Waq-Next-Cursor"

type server struct {
	opts Options
	sum  [32]byte
	mux  *http.ServeMux
}

// New returns the handler of /admin/. It answers 401 to a request without
// the right token before looking at anything else, and does nothing for it;
// past a few of those a minute from one address, 429 to every request from
// it (Retry-After says when to try again).
func New(opts Options) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Limiter == nil {
		opts.Limiter = authlimit.New(authlimit.Options{})
	}
	s := &server{opts: opts, sum: sha256.Sum256([]byte(opts.Token)), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /admin/dlq", s.list)
	s.mux.HandleFunc("GET /admin/dlq/stats", s.stats)
	s.mux.HandleFunc("GET /admin/dlq/export", s.export)
	s.mux.HandleFunc("GET /admin/dlq/{id}", s.show)
	s.mux.HandleFunc("POST /admin/dlq/replay", s.replay)
	s.mux.HandleFunc("POST /admin/dlq/purge", s.purge)
	s.mux.HandleFunc("GET /admin/overview", s.overview)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token == "" {
		http.NotFound(w, r)
		return
	}
	if wait, limited := s.opts.Limiter.Limited(r, Surface); limited {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		writeError(w, http.StatusTooManyRequests, "too many wrong tokens from this address: try again in "+authlimit.RetryAfter(wait)+"s")
		return
	}
	if !s.authorized(r) {
		s.opts.Limiter.Failed(r, Surface)
		w.Header().Set("WWW-Authenticate", `Bearer realm="waq admin"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized compares the bearer token in constant time. Hashing both
// sides first makes the comparison independent of the length too.
func (s *server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], s.sum[:]) == 1
}

// query reads the filter parameters of a GET.
func query(r *http.Request) deadletter.Params {
	q := r.URL.Query()
	return deadletter.Params{
		Reason: q.Get("reason"), Code: q.Get("code"), PhoneNumberID: q.Get("phone_number_id"),
		Template: q.Get("template"), To: q.Get("to"), Recipient: q.Get("recipient"), Since: q.Get("since"), Limit: q.Get("limit"), Cursor: q.Get("cursor"),
	}
}

// knownQuery refuses query parameters no operation takes: a typo in a
// filter would otherwise select everything.
func knownQuery(w http.ResponseWriter, r *http.Request, extra ...string) bool {
	for k := range r.URL.Query() {
		switch k {
		case "reason", "code", "phone_number_id", "template", "to", "recipient", "since", "limit", "cursor":
			continue
		}
		ok := false
		for _, e := range extra {
			ok = ok || k == e
		}
		if !ok {
			writeError(w, http.StatusBadRequest, "unknown query parameter "+k)
			return false
		}
	}
	return true
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	if !knownQuery(w, r) {
		return
	}
	f, cursor, limit, err := query(r).ListArgs()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, err := s.opts.Store.List(r.Context(), f, cursor, limit)
	if err != nil {
		s.fail(w, "list", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if page.Next != "" {
		w.Header().Set(NextCursorHeader, page.Next)
	}
	enc := json.NewEncoder(w)
	for _, e := range page.Entries {
		if err := enc.Encode(e.Summary()); err != nil {
			return
		}
	}
}

func (s *server) show(w http.ResponseWriter, r *http.Request) {
	e, err := s.opts.Store.Show(r.Context(), r.PathValue("id"))
	if errors.Is(err, deadletter.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if err != nil {
		s.fail(w, "show", err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	if !knownQuery(w, r) {
		return
	}
	p := query(r)
	if p.Limit != "" || p.Cursor != "" {
		writeError(w, http.StatusBadRequest, "stats takes no limit or cursor")
		return
	}
	f, err := p.Filter()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := s.opts.Store.Stats(r.Context(), f)
	if err != nil {
		s.fail(w, "stats", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) export(w http.ResponseWriter, r *http.Request) {
	if !knownQuery(w, r, "format") {
		return
	}
	p := query(r)
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "text" {
		writeError(w, http.StatusBadRequest, "format: want json or text")
		return
	}
	if p.Limit != "" || p.Cursor != "" {
		writeError(w, http.StatusBadRequest, "export takes no limit or cursor")
		return
	}
	f, err := p.Filter()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	x, err := s.opts.Store.Export(r.Context(), f)
	if err != nil {
		s.fail(w, "export", err)
		return
	}
	if format == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = x.WriteText(w)
		return
	}
	writeJSON(w, http.StatusOK, x)
}

// body is the JSON body of replay and purge.
type body struct {
	IDs           []string        `json:"ids"`
	Reason        string          `json:"reason"`
	Code          json.RawMessage `json:"code"`
	PhoneNumberID string          `json:"phone_number_id"`
	Template      string          `json:"template"`
	To            string          `json:"to"`
	Recipient     string          `json:"recipient"`
	Since         string          `json:"since"`
	DryRun        bool            `json:"dry_run"`
	AsTemplate    string          `json:"as_template"`
	Language      string          `json:"language"`
	OlderThan     string          `json:"older_than"`
}

// readBody decodes the body strictly: an unknown field (a "dryrun" typo)
// must not turn a dry run into the real thing.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) (deadletter.Params, bool) {
	if r.URL.RawQuery != "" {
		writeError(w, http.StatusBadRequest, "give the parameters in the JSON body, not the query")
		return deadletter.Params{}, false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	dec.DisallowUnknownFields()
	var b body
	err := dec.Decode(&b)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("want one JSON object, got more after it")
			if errors.As(terr, new(*http.MaxBytesError)) {
				err = terr
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than the limit")
		return deadletter.Params{}, false
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "request body: want a JSON object with ids or a reason")
		return deadletter.Params{}, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return deadletter.Params{}, false
	}
	return deadletter.Params{
		IDs: b.IDs, Reason: b.Reason, Code: codeText(b.Code), PhoneNumberID: b.PhoneNumberID, Template: b.Template,
		To: b.To, Recipient: b.Recipient, Since: b.Since, DryRun: b.DryRun, AsTemplate: b.AsTemplate, Language: b.Language, OlderThan: b.OlderThan,
	}, true
}

// codeText reads code given as a number (131047) or a string ("131047");
// the shared parameter check says what is wrong with anything else.
func codeText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (s *server) replay(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req, err := p.ReplayRequest()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.opts.Publisher == nil {
		writeError(w, http.StatusServiceUnavailable, "replay is not available: no publisher")
		return
	}
	out := newStream(w)
	tot, err := s.opts.Store.Replay(r.Context(), s.opts.Publisher, req, func(res deadletter.ReplayResult) error { return out.line(res) })
	s.opts.Logger.Info("admin: dead-letter replay", audit(r), "dry_run", req.DryRun, "filter", req.Filter.Params(),
		"ids", len(req.IDs), "as_template", req.AsTemplate, "replayed", tot.Done, "failed", tot.Failed, "error", errString(err))
	out.end(err)
}

func (s *server) purge(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req, err := p.PurgeRequest()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := newStream(w)
	tot, err := s.opts.Store.Purge(r.Context(), req, func(res deadletter.PurgeResult) error { return out.line(res) })
	s.opts.Logger.Info("admin: dead-letter purge", audit(r), "dry_run", req.DryRun, "filter", req.Filter.Params(),
		"older_than", req.OlderThan.String(), "ids", len(req.IDs), "purged", tot.Done, "failed", tot.Failed, "error", errString(err))
	out.end(err)
}

// audit is the admin identity of an audit line: how the change came (the
// API, with the admin token), the client's address and what it says it is
// (its User-Agent, cut to 80 bytes).
func audit(r *http.Request) slog.Attr {
	ua := r.UserAgent()
	if len(ua) > 80 {
		ua = ua[:80]
	}
	return slog.Group("admin", "via", "api", "remote", r.RemoteAddr, "user_agent", ua)
}

// stream writes NDJSON result lines as they come, flushing now and then so
// that a long replay shows progress.
type stream struct {
	w   http.ResponseWriter
	enc *json.Encoder
	rc  *http.ResponseController
	n   int
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, enc: json.NewEncoder(w), rc: http.NewResponseController(w)}
}

func (s *stream) line(v any) error {
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	if s.n++; s.n%100 == 0 {
		_ = s.rc.Flush()
	}
	return nil
}

// end closes the stream; an operation that stopped as a whole (not one
// entry) adds a last line {"error": "..."} without an id, since the status
// was sent with the first line.
func (s *stream) end(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		_ = s.enc.Encode(map[string]string{"error": err.Error()})
	}
	_ = s.rc.Flush()
}

// fail answers a store error: 503, since it is Redis that failed.
func (s *server) fail(w http.ResponseWriter, op string, err error) {
	s.opts.Logger.Warn("admin: "+op+" failed", "error", err)
	writeError(w, http.StatusServiceUnavailable, op+": "+err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
