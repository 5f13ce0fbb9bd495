package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/authlimit"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/worker"
)

// Prefix is the path the console is served under.
const Prefix = "/admin/ui/"

// Surface names the console in the limiter's counts
// (waq_auth_failures_total{surface="console"}).
const Surface = "console"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	// Token is the admin token (WAQ_ADMIN_TOKEN) an operator signs in
	// with. Empty turns the console off: every path answers 404.
	Token string
	// Store is the dead-letter store.
	Store *deadletter.Store
	// Publisher republishes replayed jobs; nil makes replay unavailable.
	Publisher deadletter.Publisher
	// Fleet reads the workers' counts for the overview (package fleet);
	// nil leaves the overview's counts and charts empty.
	Fleet *fleet.Reader
	// Ledger is the job records: the job page (what a replay produced)
	// and the search by wamid read it; nil shows less.
	Ledger *ledger.Ledger
	// HashRecipient is the workers' recipient hash (waq.recipient.hash):
	// the search by recipient compares hashes; nil turns it off.
	HashRecipient func(number string) string
	// Readiness returns what /readyz would answer; nil shows nothing of it.
	Readiness func() worker.Readiness
	// LowQualityMarketing and TemplateHoldMax are the workers'
	// WAQ_LOW_QUALITY_MARKETING and WAQ_TEMPLATE_HOLD_MAX, to say what a
	// hold does ("" is hold; 0 leaves a hold's end unsaid).
	LowQualityMarketing string
	TemplateHoldMax     time.Duration
	// TraceURL links a trace id to the tracing UI: a template with
	// {trace_id}, such as http://jaeger:16686/trace/{trace_id}. Empty shows
	// the trace id without a link.
	TraceURL string
	// Redis holds the sign-outs, so that signing out on one worker ends
	// the session on every worker sharing it; nil keeps a sign-out in
	// this process only.
	Redis redis.UniversalClient
	// KeyPrefix prefixes the Redis keys of sign-outs (WAQ_KEY_PREFIX).
	// Defaults to "waq".
	KeyPrefix string
	// SessionTTL is how long a sign-in lasts. Defaults to 12h.
	SessionTTL time.Duration
	// Refresh is how often the overview reloads itself. Defaults to 30s.
	Refresh time.Duration
	// Process names this process on the overview. Defaults to host-pid.
	Process string
	// Now is the clock of sessions. Defaults to time.Now.
	Now func() time.Time
	// Logger records sign-ins and changes (never the token). Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Limiter limits wrong sign-ins per client address (429 past it);
	// share one with the admin API so that both draw on one budget.
	// Defaults to a limiter of the console's own with authlimit's defaults
	// on the console's clock (Now).
	Limiter *authlimit.Limiter
}

// Console is the ops console's handler. Create it with New and mount it at
// Prefix.
type Console struct {
	opts     Options
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	static   http.Handler
	started  time.Time
}

// maxForm bounds a form body: a confirm form carries up to
// deadletter.MaxIDs ids of at most 128 bytes.
const maxForm = 2 << 20

// New returns the console. It does nothing until it serves a request.
func New(opts Options) *Console {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Limiter == nil {
		opts.Limiter = authlimit.New(authlimit.Options{Now: opts.Now})
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "waq"
	}
	if opts.Process == "" {
		host, _ := os.Hostname()
		opts.Process = host + "-" + strconv.Itoa(os.Getpid())
	}
	c := &Console{
		opts:     opts,
		sessions: newSessions(opts.Token, opts.SessionTTL, opts.Now, opts.Redis, opts.KeyPrefix),
		pages:    parsePages(),
		mux:      http.NewServeMux(),
		started:  opts.Now(),
	}
	sub, _ := fs.Sub(staticFS, "static")
	c.static = http.StripPrefix(Prefix+"static/", staticFiles(sub))

	c.mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	c.mux.HandleFunc("POST "+Prefix+"login", c.login)
	c.mux.Handle("POST "+Prefix+"logout", c.signedIn(c.csrf(c.logout)))
	c.mux.Handle("GET "+Prefix+"{$}", c.signedIn(c.overview))
	c.mux.Handle("GET "+Prefix+"dlq", c.signedIn(c.list))
	c.mux.Handle("GET "+Prefix+"dlq/{id}", c.signedIn(c.entry))
	c.mux.Handle("GET "+Prefix+"replay", c.signedIn(c.replayPreview))
	c.mux.Handle("POST "+Prefix+"replay", c.signedIn(c.csrf(c.replay)))
	c.mux.Handle("GET "+Prefix+"purge", c.signedIn(c.purgePreview))
	c.mux.Handle("POST "+Prefix+"purge", c.signedIn(c.csrf(c.purge)))
	c.mux.Handle("GET "+Prefix+"search", c.signedIn(c.search))
	c.mux.Handle("POST "+Prefix+"search", c.signedIn(c.csrf(c.searchRecipient)))
	c.mux.Handle("GET "+Prefix+"job/{id}", c.signedIn(c.job))
	c.mux.Handle("GET "+Prefix+"export", c.signedIn(c.exportPreview))
	c.mux.Handle("GET "+Prefix+"export/ticket", c.signedIn(c.exportTicket))
	c.mux.Handle("GET "+Prefix+"static/", c.static)
	// Anything else: the sign-in page for a stranger, 404 for an operator,
	// so that the console's shape is not shown to someone without a token.
	c.mux.Handle(Prefix, c.signedIn(func(w http.ResponseWriter, r *http.Request, s session) {
		c.fail(w, r, s, http.StatusNotFound, "There is no such page in the console.")
	}))
	return c
}

// staticFiles serves the embedded assets, files only: a directory (static/
// itself) is 404 rather than a listing, since the assets are served
// without sign-in and a listing would show the console's make-up.
func staticFiles(sub fs.FS) http.Handler {
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if st, err := fs.Stat(sub, name); name == "" || err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console's pages; with no token configured, 404.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.opts.Token == "" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	// Nothing from elsewhere: the pages use their own stylesheet and
	// script only, and are never framed (clickjacking a replay button).
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// A trace link must not tell the tracing UI which entry was open.
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// handler is a page handler of a signed-in operator.
type handler func(w http.ResponseWriter, r *http.Request, s session)

// page is what every template gets.
type page struct {
	Name    string // the template's name, the body's class: page-NAME
	Title   string
	Nav     string
	CSRF    string
	Refresh int // seconds; 0: none
	Prefix  string
	Flash   string
	Error   string
	Data    any
}

func parsePages() map[string]*template.Template {
	// base.html is the layout; _*.html are partials every page may use.
	base := template.Must(template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/_*.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" || strings.HasPrefix(name, "_") {
			continue
		}
		t := template.Must(base.Clone())
		out[name] = template.Must(t.ParseFS(templateFS, n))
	}
	return out
}

// render writes a page. It renders into a buffer first, so that a template
// error is a clean 500 page rather than half a page (it is a bug: the
// tests render every page).
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	p.Prefix, p.Name = Prefix, name
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "base.html", p); err != nil {
		c.opts.Logger.Error("console: page does not render", "page", name, "error", err)
		http.Error(w, "the console could not draw this page; the log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page: 400 for bad parameters, 404, 503 when Redis or
// NATS does not answer. Never a 500 for what a request or a dependency did.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s session, status int, msg string) {
	c.render(w, status, "error", page{Title: http.StatusText(status), CSRF: s.csrf, Data: struct {
		Status  int
		Message string
	}{status, msg}})
}

// storeFailed answers an error of a store operation: bad parameters are
// 400, a missing entry 404, anything else is Redis failing, 503.
func (c *Console) storeFailed(w http.ResponseWriter, r *http.Request, s session, op string, err error) {
	var pe *deadletter.ParamError
	switch {
	case errors.As(err, &pe):
		c.fail(w, r, s, http.StatusBadRequest, pe.Error())
	case errors.Is(err, deadletter.ErrNotFound):
		c.fail(w, r, s, http.StatusNotFound, "No dead-letter entry has that id: it was replayed, purged or has expired.")
	case errors.Is(err, context.Canceled):
		// The browser went away; nobody reads the answer.
	default:
		c.opts.Logger.Warn("console: "+op+" failed", "error", err)
		c.fail(w, r, s, http.StatusServiceUnavailable, fmt.Sprintf("%s: the dead-letter store did not answer (%v). Nothing was changed by this page; try again.", op, err))
	}
}
