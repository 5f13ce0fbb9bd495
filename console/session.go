package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/authlimit"
)

// cookieName is the session cookie.
const cookieName = "waq_console"

// session is a signed-in operator's session.
type session struct {
	nonce   string
	expires time.Time
	// csrf is the token every changing form must carry.
	csrf string
	// id names the session in the audit lines of the log: a MAC of its
	// nonce, so that the log holds nothing a cookie is made of.
	id string
}

// audit is the admin identity of an audit line: how the change came (the
// console), the session that made it and the client's address. An empty
// session (a refused sign-in) has no id.
func audit(r *http.Request, s session) slog.Attr {
	attrs := []any{"via", "console", "remote", r.RemoteAddr}
	if s.id != "" {
		attrs = append(attrs, "session", s.id)
	}
	return slog.Group("admin", attrs...)
}

// sessions issues and checks signed session cookies (see the package doc
// for why they are signed rather than stored).
type sessions struct {
	key      []byte
	tokenSum [32]byte
	ttl      time.Duration
	now      func() time.Time

	// rdb holds the sign-outs of every worker (revokedPrefix+nonce, kept
	// until the session would have expired); nil keeps them in this
	// process only.
	rdb           redis.UniversalClient
	revokedPrefix string

	mu      sync.Mutex
	revoked map[string]time.Time // nonce → when its session would expire
}

var (
	errNoSession = errors.New("no session")
	errExpired   = errors.New("session expired")
)

// errUnchecked is a good cookie whose sign-out could not be looked up:
// Redis did not answer. The request is refused (503), not let through.
type errUnchecked struct{ err error }

func (e *errUnchecked) Error() string { return "session not checked: " + e.err.Error() }

func newSessions(token string, ttl time.Duration, now func() time.Time, rdb redis.UniversalClient, keyPrefix string) *sessions {
	// The key is derived, not the token itself, so that a MAC never
	// exposes anything computed with the token as a bearer secret.
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("waq console session key v1"))
	return &sessions{key: m.Sum(nil), tokenSum: sha256.Sum256([]byte(token)), ttl: ttl, now: now, revoked: map[string]time.Time{},
		rdb: rdb, revokedPrefix: keyPrefix + ":console:signed-out:"}
}

// tokenOK compares a typed token with the admin token in constant time;
// hashing both first makes the time independent of the length too.
func (s *sessions) tokenOK(typed string) bool {
	got := sha256.Sum256([]byte(typed))
	return subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) == 1
}

func (s *sessions) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.Join(parts, "|")))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// issue starts a session and returns its cookie value:
// v1.<expiry unix seconds>.<nonce>.<mac>.
func (s *sessions) issue() (string, session) {
	n := make([]byte, 18)
	_, _ = rand.Read(n) // crypto/rand.Read does not fail (Go 1.24+)
	nonce := b64.EncodeToString(n)
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	payload := "v1." + strconv.FormatInt(exp.Unix(), 10) + "." + nonce
	return payload + "." + b64.EncodeToString(s.mac("session", payload)), s.session(nonce, exp)
}

func (s *sessions) session(nonce string, exp time.Time) session {
	return session{nonce: nonce, expires: exp, csrf: b64.EncodeToString(s.mac("csrf", nonce)), id: b64.EncodeToString(s.mac("id", nonce))[:12]}
}

// check verifies a cookie value: errNoSession when it is absent, forged or
// signed out (on any worker sharing the Redis), errExpired when it was good
// and is past its expiry, *errUnchecked when Redis could not say whether it
// was signed out.
func (s *sessions) check(ctx context.Context, v string) (session, error) {
	payload, sig, ok := cutLast(v, ".")
	if !ok {
		return session{}, errNoSession
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("session", payload)) {
		return session{}, errNoSession
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return session{}, errNoSession
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return session{}, errNoSession
	}
	exp := time.Unix(sec, 0)
	if !s.now().Before(exp) {
		return session{}, errExpired
	}
	s.mu.Lock()
	_, gone := s.revoked[parts[2]]
	s.mu.Unlock()
	if gone {
		return session{}, errNoSession
	}
	if s.rdb != nil {
		n, err := s.rdb.Exists(ctx, s.revokedPrefix+parts[2]).Result()
		if err != nil {
			return session{}, &errUnchecked{err}
		}
		if n > 0 {
			return session{}, errNoSession
		}
	}
	return s.session(parts[2], exp), nil
}

// revoke ends a session on every worker: in this process, and in Redis
// for the others, until the session would have expired anyway (so the
// sign-outs kept are at most those of one TTL). The cookie is cleared too.
// An error means the other workers were not told.
func (s *sessions) revoke(ctx context.Context, sess session) error {
	s.mu.Lock()
	now := s.now()
	for n, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, n)
		}
	}
	s.revoked[sess.nonce] = sess.expires
	s.mu.Unlock()
	left := sess.expires.Sub(now)
	if s.rdb == nil || left <= 0 {
		return nil
	}
	// A second more than the session's time: a worker whose clock runs a
	// little behind still finds the sign-out.
	return s.rdb.Set(ctx, s.revokedPrefix+sess.nonce, "1", left+time.Second).Err()
}

// csrfOK compares a form's token with the session's in constant time.
func (sess session) csrfOK(got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(sess.csrf))
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// secure says whether the browser reached us over TLS, directly or through
// a proxy that terminates it; the cookie is Secure then. (A wrong header
// only makes the cookie stricter, never weaker.)
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// signedIn runs h for a request with a good session; anyone else gets the
// sign-in page with 401 and nothing of what they asked for.
func (c *Console) signedIn(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sess session
		err := errNoSession
		if ck, cerr := r.Cookie(cookieName); cerr == nil {
			sess, err = c.sessions.check(r.Context(), ck.Value)
			var unchecked *errUnchecked
			if errors.As(err, &unchecked) {
				// The cookie is kept: it may well be good once Redis answers.
				c.opts.Logger.Warn("console: session not checked", "error", unchecked.err)
				c.fail(w, r, session{}, http.StatusServiceUnavailable, "Your session could not be checked: Redis did not answer. Try again in a moment.")
				return
			}
			if err != nil {
				c.setCookie(w, r, "", -1)
			}
		}
		if err != nil {
			msg := ""
			if errors.Is(err, errExpired) {
				msg = "Your session has expired. Sign in again."
			}
			next := ""
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			c.showLogin(w, http.StatusUnauthorized, msg, next)
			return
		}
		h(w, r, sess)
	})
}

// csrf refuses a POST without the session's CSRF token, before anything
// is done.
func (c *Console) csrf(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, s session) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			if tooLarge(err) {
				c.fail(w, r, s, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is larger than the console takes (%d MiB). Nothing was changed; select fewer entries.", maxForm>>20))
				return
			}
			c.fail(w, r, s, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
		if !s.csrfOK(r.PostForm.Get("csrf")) {
			c.opts.Logger.Warn("console: form refused: missing or wrong CSRF token", "path", r.URL.Path, audit(r, s))
			c.fail(w, r, s, http.StatusForbidden, "This form did not come from this console session (its CSRF token is missing or stale). Nothing was changed. Reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// maxLoginForm bounds the sign-in form: a token and a next path.
const maxLoginForm = 64 << 10

// tooLarge says whether a form failed to parse because its body passed
// http.MaxBytesReader's bound: that is 413, not a malformed form's 400.
func tooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

type loginData struct {
	Message string
	Next    string
}

func (c *Console) showLogin(w http.ResponseWriter, status int, msg, next string) {
	c.render(w, status, "login", page{Title: "Sign in", Data: loginData{Message: msg, Next: safeNext(next)}})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(cookieName); err == nil {
		if _, err := c.sessions.check(r.Context(), ck.Value); err == nil {
			http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
			return
		}
	}
	c.showLogin(w, http.StatusOK, "", r.URL.Query().Get("next"))
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		if tooLarge(err) {
			c.showLogin(w, http.StatusRequestEntityTooLarge, "The form is larger than a sign-in form can be.", "")
			return
		}
		c.showLogin(w, http.StatusBadRequest, "The form could not be read.", "")
		return
	}
	next := r.PostForm.Get("next")
	if wait, limited := c.opts.Limiter.Limited(r, Surface); limited {
		w.Header().Set("Retry-After", authlimit.RetryAfter(wait))
		c.showLogin(w, http.StatusTooManyRequests, "Too many wrong tokens from your address: try again in "+authlimit.RetryAfter(wait)+" seconds.", next)
		return
	}
	if !c.sessions.tokenOK(r.PostForm.Get("token")) {
		c.opts.Limiter.Failed(r, Surface)
		// The typed token is never logged nor shown again.
		c.opts.Logger.Warn("console: sign-in refused: wrong token", audit(r, session{}))
		c.showLogin(w, http.StatusUnauthorized, "That is not the admin token.", next)
		return
	}
	value, sess := c.sessions.issue()
	c.setCookie(w, r, value, int(c.opts.SessionTTL/time.Second))
	c.opts.Logger.Info("console: signed in", audit(r, sess))
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s session) {
	err := c.sessions.revoke(r.Context(), s)
	c.setCookie(w, r, "", -1)
	if err != nil {
		c.opts.Logger.Warn("console: signed out in this worker only: the sign-out could not be stored in Redis", audit(r, s), "error", err)
		c.render(w, http.StatusServiceUnavailable, "login", page{Title: "Signed out here only", Data: loginData{
			Message: "You are signed out of this worker, but Redis did not answer, so other workers may still take this session until it expires. Sign in and out again once Redis is back."}})
		return
	}
	c.opts.Logger.Info("console: signed out", audit(r, s))
	c.render(w, http.StatusOK, "login", page{Title: "Signed out", Data: loginData{Message: "You are signed out."}})
}

// safeNext keeps a redirect after sign-in inside the console: a path under
// Prefix, never another host.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(path.Clean(u.Path)+"/", Prefix) || strings.Contains(next, "\\") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(u.Path, Prefix+"login") {
		return Prefix
	}
	return u.RequestURI()
}
