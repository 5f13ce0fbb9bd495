// Package httpsrv makes the HTTP servers of waq with deadlines on the
// whole request, not only its headers: a client that announces a large
// body and sends it a byte at a time holds a connection (and, before the
// admin token is checked, an unauthenticated one) for at most BodyTimeout.
package httpsrv

import (
	"errors"
	"io"
	"log"
	"net/http"
	"sync"
	"time"
)

// Timeouts of a server. The zero value means the defaults.
type Timeouts struct {
	// Header bounds reading a request's headers. Defaults to 10s.
	Header time.Duration
	// Body bounds reading a request's body, from the handler's start.
	// Defaults to 30s.
	Body time.Duration
	// Idle bounds a keep-alive connection between requests. Defaults to 2m.
	Idle time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Header <= 0 {
		t.Header = 10 * time.Second
	}
	if t.Body <= 0 {
		t.Body = 30 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 2 * time.Minute
	}
	return t
}

// New returns a server of h with the timeouts t; errorLog may be nil.
func New(h http.Handler, t Timeouts, errorLog *log.Logger) *http.Server {
	t = t.withDefaults()
	return &http.Server{Handler: BodyDeadline(h, t.Body), ReadHeaderTimeout: t.Header, IdleTimeout: t.Idle, ErrorLog: errorLog}
}

// BodyDeadline bounds the reading of each request's body to d from the
// start of the handler. The deadline is lifted as soon as the body has
// been read to its end, so that nothing but the body is bounded by it (a
// replay streaming its results for minutes is not), and requests without
// a body get none. A body the handler left unread keeps it, so that the
// server's discard of the rest after the handler is bounded too.
func BodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			// Not a connection that takes deadlines (a test recorder).
			h.ServeHTTP(w, r)
			return
		}
		b := &body{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

// body lifts the read deadline once the body is read to its end.
type body struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done()
	}
	return n, err
}

func (b *body) done() { b.once.Do(b.lift) }
