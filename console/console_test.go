package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/testenv"
)

// TestOff: without a token the console is not there at all.
func TestOff(t *testing.T) {
	t.Parallel()
	f := setup(t, func(o *Options) { o.Token = "" })
	c := f.client(t)
	for _, p := range []string{Prefix, Prefix + "login", Prefix + "dlq", Prefix + "static/console.css"} {
		if r := c.get(p); r.code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.code)
		}
	}
	if r := c.post(Prefix+"login", url.Values{"token": {""}}); r.code != http.StatusNotFound || c.cookie != nil {
		t.Errorf("sign-in with an empty token: %d", r.code)
	}
}

// TestSignIn: a stranger sees the sign-in page on every page and nothing
// else; a wrong token gets no session; the right one gets a strict cookie.
func TestSignIn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	for _, p := range []string{Prefix, Prefix + "dlq", Prefix + "dlq/w1", Prefix + "replay?reason=window", Prefix + "purge?id=w1",
		Prefix + "export", Prefix + "export/ticket?format=text", Prefix + "nowhere"} {
		r := c.get(p)
		if r.code != http.StatusUnauthorized || !strings.Contains(r.body, `id="signin"`) {
			t.Errorf("%s without a session: %d", p, r.code)
		}
		for _, secret := range []string{"w1", "fb-w1", "0001", "window", "Sign out"} {
			if strings.Contains(r.body, secret) && !(secret == "w1" && strings.Contains(p, "w1")) && !(secret == "window" && strings.Contains(p, "window")) {
				t.Errorf("%s without a session shows %q", p, secret)
			}
		}
	}
	// Static assets are public: the sign-in page needs its stylesheet.
	if r := c.get(Prefix + "static/console.css"); r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %q", r.code, r.header.Get("Content-Type"))
	}
	// A wrong token: 401, no cookie, the typed value not echoed.
	r := c.post(Prefix+"login", url.Values{"token": {"not-the-token-typed-here"}})
	if r.code != http.StatusUnauthorized || c.cookie != nil || strings.Contains(r.body, "not-the-token-typed-here") || !strings.Contains(r.body, "not the admin token") {
		t.Errorf("wrong token: %d cookie %v", r.code, c.cookie)
	}
	if r := c.post(Prefix+"login", url.Values{}); r.code != http.StatusUnauthorized || c.cookie != nil {
		t.Errorf("no token: %d", r.code)
	}
	// The right token: a session cookie, and back to where the stranger was.
	r = c.post(Prefix+"login", url.Values{"token": {token}, "next": {Prefix + "dlq?reason=window"}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != Prefix+"dlq?reason=window" || c.cookie == nil {
		t.Fatalf("sign-in: %d %q", r.code, r.header.Get("Location"))
	}
	sc := r.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/admin/ui/", "Max-Age=3600"} {
		if !strings.Contains(sc, want) {
			t.Errorf("cookie %q lacks %s", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("cookie over plain HTTP is Secure: %q", sc)
	}
	if r := c.get(Prefix + "dlq"); r.code != 200 || !strings.Contains(r.body, "w1") {
		t.Errorf("signed in: %d", r.code)
	}
	// Signed in, the sign-in page sends the operator on.
	if r := c.get(Prefix + "login"); r.code != http.StatusSeeOther || r.header.Get("Location") != Prefix {
		t.Errorf("login page when signed in: %d %q", r.code, r.header.Get("Location"))
	}
	// Behind a proxy that terminated TLS, the cookie is Secure.
	c2 := f.client(t)
	r = c2.do("POST", Prefix+"login", url.Values{"token": {token}}, "X-Forwarded-Proto", "https")
	if !strings.Contains(r.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("cookie over TLS: %q", r.header.Get("Set-Cookie"))
	}
	// Security headers on every page.
	r = c.get(Prefix)
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", r.header)
	}
}

// TestSafeNext: the page after sign-in stays in the console.
func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                           Prefix,
		Prefix + "dlq?reason=window": Prefix + "dlq?reason=window",
		"//evil.example/admin/ui/":   Prefix,
		"https://evil.example/":      Prefix,
		"/admin/ui/../../metrics":    Prefix,
		"/elsewhere":                 Prefix,
		"/admin/uix":                 Prefix,
		"/admin/ui\\@evil":           Prefix,
		Prefix + "login":             Prefix,
		Prefix + "dlq/w1":            Prefix + "dlq/w1",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSessionExpiry: a session ends after its TTL; a cookie whose expiry
// was changed, or that was signed with another token, is no session.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	good := *c.cookie
	f.clock.Add(59 * time.Minute)
	if r := c.get(Prefix + "dlq"); r.code != 200 {
		t.Fatalf("within the TTL: %d", r.code)
	}
	f.clock.Add(2 * time.Minute)
	r := c.get(Prefix + "dlq")
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "session has expired") || strings.Contains(r.body, "w1") {
		t.Errorf("expired: %d", r.code)
	}
	if c.cookie != nil {
		t.Error("the expired cookie was not cleared")
	}
	// Forged: a later expiry with the old signature.
	parts := strings.Split(good.Value, ".")
	parts[1] = "99999999999"
	c.cookie = &http.Cookie{Name: cookieName, Value: strings.Join(parts, ".")}
	if r := c.get(Prefix + "dlq"); r.code != http.StatusUnauthorized || strings.Contains(r.body, "expired") {
		t.Errorf("forged expiry: %d", r.code)
	}
	// Signed with another token.
	other := newSessions("another-token-another-token", time.Hour, f.clock.Now, nil, "")
	v, _ := other.issue()
	c.cookie = &http.Cookie{Name: cookieName, Value: v}
	if r := c.get(Prefix + "dlq"); r.code != http.StatusUnauthorized {
		t.Errorf("another token's session: %d", r.code)
	}
	for _, junk := range []string{"", "x", "v1.1.2", "v1..." + "a", "....", "v2.99999999999.n.sig"} {
		c.cookie = &http.Cookie{Name: cookieName, Value: junk}
		if r := c.get(Prefix); r.code != http.StatusUnauthorized {
			t.Errorf("cookie %q: %d", junk, r.code)
		}
	}
}

// TestSignOut: signing out ends the session; its cookie, replayed, is no
// session any more.
func TestSignOut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	old := *c.cookie
	if r := c.post(Prefix+"logout", url.Values{}); r.code != http.StatusForbidden || c.cookie == nil {
		t.Errorf("sign-out without the CSRF token: %d", r.code)
	}
	r := c.post(Prefix+"logout", url.Values{"csrf": {c.csrf}})
	if r.code != 200 || !strings.Contains(r.body, "signed out") || c.cookie != nil {
		t.Fatalf("sign-out: %d %v", r.code, c.cookie)
	}
	c.cookie = &old
	if r := c.get(Prefix); r.code != http.StatusUnauthorized {
		t.Errorf("the signed-out cookie: %d", r.code)
	}
}

// TestCSRF: a POST that would change something is refused without the
// session's CSRF token, with a wrong one, or with another session's, and
// nothing changes.
func TestCSRF(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a, b := f.client(t), f.client(t)
	a.signIn()
	b.signIn()
	if a.csrf == b.csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	pv := a.get(Prefix + "replay?id=w1")
	form := formOf(t, pv.body, "confirm")
	pf := formOf(t, a.get(Prefix+"purge?id=t1").body, "confirm")
	for name, tok := range map[string]string{"missing": "", "wrong": "AAAA" + a.csrf[4:], "another session's": b.csrf} {
		for path, fm := range map[string]url.Values{"replay": form, "purge": pf} {
			v := url.Values{}
			for k, vs := range fm {
				v[k] = vs
			}
			v.Del("csrf")
			if tok != "" {
				v.Set("csrf", tok)
			}
			r := a.post(Prefix+path, v)
			if r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
				t.Errorf("%s with a %s token: %d", path, name, r.code)
			}
		}
	}
	if f.parked(t) != 4 || f.published(t) != 0 {
		t.Errorf("something changed: %d parked, %d published", f.parked(t), f.published(t))
	}
	// With the token it goes through.
	if r := a.post(Prefix+"replay", form); r.code != 200 || !strings.Contains(r.body, "Replayed <b>1</b>") {
		t.Errorf("with the token: %d", r.code)
	}
}

// TestList: every filter of `waq dlq list`, cursor pages, the verdict,
// numbers masked.
func TestList(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	ids := func(body string) []string {
		var out []string
		for _, id := range []string{"w1", "w2", "t1", "r1"} {
			if strings.Contains(body, `href="/admin/ui/dlq/`+id+`"`) {
				out = append(out, id)
			}
		}
		return out
	}
	for _, tt := range []struct {
		q    string
		want string
	}{
		{"", "w1 w2 t1 r1"},
		{"reason=window", "w1 w2"},
		{"code=131000", "r1"},
		{"phone_number_id=" + pn + "&template=order_update", "t1 r1"},
		{"phone_number_id=999", ""},
		{"since=150s", "w1 w2"},
		{"since=1d&reason=template&code=132001", "t1"},
		{"limit=3", "w1 w2 t1"},
	} {
		r := c.get(Prefix + "dlq?" + tt.q)
		if got := strings.Join(ids(r.body), " "); r.code != 200 || got != tt.want {
			t.Errorf("?%s: %d %q, want %q", tt.q, r.code, got, tt.want)
		}
	}
	r := c.get(Prefix + "dlq?reason=window")
	for _, want := range []string{"all 2 failures are window (131047", "•••••••0001", "fb-w1", `value="window" selected`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	if strings.Contains(r.body, "15550000001") {
		t.Error("the list shows a number in full")
	}
	// Pages: two of two, then the rest, then a link back to the first.
	r = c.get(Prefix + "dlq?limit=2")
	next := hrefOf(r.body, "next")
	if got := ids(r.body); len(got) != 2 || next == "" {
		t.Fatalf("page 1: %v next %q", got, next)
	}
	r = c.get(next)
	if got := strings.Join(ids(r.body), " "); got != "t1 r1" || !strings.Contains(r.body, "First page") {
		t.Errorf("page 2: %q", got)
	}
}

// hrefOf reads the href of the element with this id.
func hrefOf(body, id string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(body[:i], `href="`)
	if j < 0 {
		return ""
	}
	h := body[j+6:]
	return htmlUnescape(h[:strings.Index(h, `"`)])
}

// TestBadParameters: a bad parameter anywhere is a 400 page that says
// what is wrong, never a 500.
func TestBadParameters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	for path, want := range map[string]string{
		"dlq?reason=windwo":                       "unknown reason",
		"dlq?code=abc":                            "not an error code",
		"dlq?limit=-1":                            "negative",
		"dlq?limit=x":                             "not a whole number",
		"dlq?limit=20000":                         "more than",
		"dlq?since=yesterday":                     "since",
		"dlq?cursor=nope":                         "cursor",
		"dlq?phone_number_id=%2B1%20555":          "phone_number_id",
		"dlq?frob=1":                              "frob: unknown parameter",
		"dlq?reason=window&reason=template":       "more than once",
		"dlq/a%20b":                               "not a job id",
		"dlq/w1?x=1":                              "no parameters",
		"replay":                                  "Nothing is selected",
		"replay?back=/admin/ui/dlq":               "Nothing is selected",
		"replay?reason=window&as_template=x":      "language",
		"replay?id=w1&reason=window":              "not both",
		"replay?id=w1&language=en":                "as_template",
		"replay?reason=window&limit=3":            "limit: unknown parameter",
		"purge":                                   "Nothing is selected",
		"purge?reason=window&older_than=soon":     "older_than",
		"purge?older_than=1h":                     "reason",
		"purge?reason=window&since=1h":            "purge takes",
		"export?since=x":                          "since",
		"export?reason=nope":                      "unknown reason",
		"export/ticket?format=pdf":                "format",
		"export/ticket":                           "format",
		"?x=1":                                    "no parameters",
		"replay?id=" + strings.Repeat("x", 200):   "at most 128",
		"purge?id=w1&reason=window&older_than=0s": "not both",
	} {
		r := c.get(Prefix + path)
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, want) {
			t.Errorf("%s: %d, want 400 saying %q", path, r.code, want)
		}
	}
	for path, code := range map[string]int{"dlq/nope": 404, "nowhere": 404, "dlq/w1/extra": 404} {
		if r := c.get(Prefix + path); r.code != code {
			t.Errorf("%s: %d, want %d", path, r.code, code)
		}
	}
	// A confirm form that was not written by a preview.
	for _, entries := range []string{"", "w1", "w1@x", "w1@0", "a b@1", strings.Repeat("x", 200) + "@1"} {
		r := c.post(Prefix+"replay", url.Values{"csrf": {c.csrf}, "entries": {entries}})
		if r.code != http.StatusBadRequest {
			t.Errorf("replay entries %q: %d", entries, r.code)
		}
		if r := c.post(Prefix+"purge", url.Values{"csrf": {c.csrf}, "entries": {entries}}); r.code != http.StatusBadRequest {
			t.Errorf("purge entries %q: %d", entries, r.code)
		}
	}
	if r := c.post(Prefix+"replay", url.Values{"csrf": {c.csrf}, "entries": {"w1@1"}, "as_template": {"x"}}); r.code != http.StatusBadRequest {
		t.Errorf("replay as a template without a language: %d", r.code)
	}
	if f.parked(t) != 4 || f.published(t) != 0 {
		t.Errorf("bad requests changed something: %d parked, %d published", f.parked(t), f.published(t))
	}
}

// TestEntry: the job as published, every field of the last error, the
// attempts, the fbtrace_id to copy, the trace link; the number masked.
func TestEntry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix + "dlq/w1")
	if r.code != 200 {
		t.Fatalf("entry: %d", r.code)
	}
	for _, want := range []string{
		`&#34;to&#34;: &#34;•••••••0001&#34;`, `&#34;body&#34;: &#34;hi&#34;`, "message to •••••••0001", // the job and the error, masked
		"http_status", "error_subcode", "2494010", "OAuthException", "error_data.details", "error_user_msg", "transport",
		`id="fbtrace" readonly value="fb-w1"`, `data-copy="fbtrace"`,
		`href="http://jaeger.test:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"`,
		`class="o-failed"`, "fb-a-w1", "&#43;40s", "retry", "next try after 30s", "host-1",
		"metadata.tenant", "acme", `id="replay-template"`, "24-hour window",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("entry lacks %q", want)
		}
	}
	if strings.Contains(r.body, "15550000001") {
		t.Error("the entry shows the number in full")
	}
	// A template message offers no as-template replay.
	if r := c.get(Prefix + "dlq/t1"); strings.Contains(r.body, `id="replay-template"`) {
		t.Error("as-template offered for a template message")
	}
	// Without a trace URL, the id and how to link it.
	f2 := setup(t, func(o *Options) { o.TraceURL = "" })
	c2 := f2.client(t)
	c2.signIn()
	if r := c2.get(Prefix + "dlq/w1"); !strings.Contains(r.body, "Set <code>WAQ_TRACE_URL</code>") || strings.Contains(r.body, "jaeger.test") {
		t.Error("no trace URL: no hint")
	}
}

// TestReplay: the preview is a dry run; the confirm replays what it showed,
// as a template; sent twice (a reload), it replays nothing twice; an entry
// parked again after the preview is left alone.
func TestReplay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix + "replay?reason=window&as_template=reengage&language=en_US")
	if r.code != 200 || !strings.Contains(r.body, "Would replay <b>2</b>") || !strings.Contains(r.body, "Nothing has changed yet") {
		t.Fatalf("preview: %d", r.code)
	}
	if f.parked(t) != 4 || f.published(t) != 0 {
		t.Fatal("the preview changed something")
	}
	form := formOf(t, r.body, "confirm")
	if form.Get("entries") != "w1@1 w2@1" || form.Get("as_template") != "reengage" {
		t.Fatalf("confirm form %v", form)
	}
	r = c.post(Prefix+"replay", form)
	if r.code != 200 || !strings.Contains(r.body, "Replayed <b>2</b>") || f.published(t) != 2 || f.parked(t) != 2 {
		t.Fatalf("replay: %d, %d published, %d parked", r.code, f.published(t), f.parked(t))
	}
	if !strings.Contains(r.body, `href="/admin/ui/dlq?reason=window"`) {
		t.Error("the result does not lead back to the list")
	}
	// A reload sends the form again: nothing more is published.
	r = c.post(Prefix+"replay", form)
	if r.code != 200 || f.published(t) != 2 || !strings.Contains(r.body, "no longer parked") {
		t.Errorf("resubmitted: %d, %d published", r.code, f.published(t))
	}
	// As a template, a template message is refused in the preview.
	r = c.get(Prefix + "replay?id=t1&as_template=x&language=en")
	if !strings.Contains(r.body, "Would replay <b>0</b>") || !strings.Contains(r.body, "already template") || strings.Contains(r.body, `id="do"`) {
		t.Errorf("as-template on a template: %d", r.code)
	}
	// The worker parks r1 again (a newer generation) between preview and
	// confirm: the confirm leaves it alone.
	r = c.get(Prefix + "replay?id=r1")
	form = formOf(t, r.body, "confirm")
	e, err := f.store.Get(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	e.Replayed = 1
	if err := f.store.Park(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	r = c.post(Prefix+"replay", form)
	if !strings.Contains(r.body, "parked again since the preview") || f.published(t) != 2 {
		t.Errorf("re-parked: %d published", f.published(t))
	}
}

// TestReplayWithoutPublisher: the preview works, the confirm says why not.
func TestReplayWithoutPublisher(t *testing.T) {
	t.Parallel()
	f := setup(t, func(o *Options) { o.Publisher = nil })
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix + "replay?id=w1")
	if r.code != 200 || !strings.Contains(r.body, "cannot publish") || strings.Contains(r.body, `id="do"`) {
		t.Errorf("preview: %d", r.code)
	}
	if r := c.post(Prefix+"replay", formOf(t, r.body, "confirm")); r.code != http.StatusServiceUnavailable || f.parked(t) != 4 {
		t.Errorf("confirm: %d", r.code)
	}
}

// TestPurge: by reason asks how old first; the preview is a dry run; the
// confirm purges what it showed.
func TestPurge(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix + "purge?reason=window")
	if r.code != 200 || !strings.Contains(r.body, `name="older_than"`) || strings.Contains(r.body, `id="confirm"`) {
		t.Fatalf("purge by reason: %d", r.code)
	}
	r = c.get(Prefix + "purge?reason=window&older_than=90s")
	if !strings.Contains(r.body, "Would purge <b>1</b>") || f.parked(t) != 4 {
		t.Fatalf("preview: %d", r.code)
	}
	form := formOf(t, r.body, "confirm")
	if form.Get("entries") != "w2@1" {
		t.Fatalf("confirm form %v", form)
	}
	if r := c.post(Prefix+"purge", form); r.code != 200 || !strings.Contains(r.body, "Purged <b>1</b>") || f.parked(t) != 3 {
		t.Errorf("purge: %d, %d parked", r.code, f.parked(t))
	}
	// By ids, with one already gone.
	r = c.get(Prefix + "purge?id=w1&id=w2")
	if !strings.Contains(r.body, "Would purge <b>1</b>; <b>1</b> cannot be") {
		t.Errorf("preview by ids: %s", r.body)
	}
	if r := c.post(Prefix+"purge", formOf(t, r.body, "confirm")); !strings.Contains(r.body, "Purged <b>1</b>") || f.parked(t) != 2 {
		t.Errorf("purge by ids: %d parked", f.parked(t))
	}
}

// TestExport: the preview masks the recipients; the file is the CLI's.
func TestExport(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix + "export?reason=window")
	if r.code != 200 || !strings.Contains(r.body, "all 2 failures are window (131047") || !strings.Contains(r.body, "•••••••0001 (1)") || strings.Contains(r.body, "1555000000") {
		t.Errorf("preview: %d", r.code)
	}
	text := hrefOf(r.body, "download")
	r = c.get(text)
	if r.code != 200 || !strings.Contains(r.header.Get("Content-Disposition"), "attachment") || !strings.Contains(r.body, "Failed messages: 2 in 1 groups") || !strings.Contains(r.body, "15550000001 (1)") {
		t.Errorf("ticket: %d %q", r.code, r.body)
	}
	r = c.get(Prefix + "export/ticket?reason=window&format=json")
	var x deadletter.Export
	if r.code != 200 || json.Unmarshal([]byte(r.body), &x) != nil || x.Total != 2 {
		t.Errorf("ticket json: %d", r.code)
	}
}

// TestOverview: two workers' counts, summed per minute by the fleet's
// buckets, as tiles and charts: send attempts without the throttled, the
// throttled by scope, the consumer's counts that agree with each other;
// the readiness with why, since and until.
func TestOverview(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix)
	if r.code != 200 || !strings.Contains(r.body, "Collecting") || !strings.Contains(r.body, `http-equiv="refresh" content="30"`) {
		t.Errorf("overview, no counts: %d", r.code)
	}
	start := f.clock.Now()
	m1, p1 := f.metrics, f.pub
	m2, p2 := f.worker(t, "test-worker-2")
	for i := 0; i < 5; i++ {
		m1.Sends.WithLabelValues("sent", pn).Add(10)
		m1.Sends.WithLabelValues("failed", pn).Add(3)
		m1.APIErrors.WithLabelValues("131000").Add(2)
		m1.Retries.WithLabelValues("131000").Add(2)
		m1.Parked.WithLabelValues("window").Add(1)
		m1.Throttled.WithLabelValues("pace").Add(4)
		f.cons["test-worker-1"] = fleet.Consumer{Pending: int64(100 * i), AckPending: 7, At: f.clock.Now()}
		m2.Sends.WithLabelValues("sent", pn).Add(5)
		m2.Sends.WithLabelValues("throttled", pn).Add(1)
		m2.Throttled.WithLabelValues("number").Add(1)
		publish(t, p1, p2)
		f.clock.Add(time.Minute)
	}
	f.clock.Add(-time.Minute + time.Second) // within the last minute reported
	r = c.get(Prefix)
	for _, want := range []string{
		"The fleet's view", "test-worker-1", "test-worker-2", "Workers reporting",
		"<svg", `class="s-sent"`, `class="s-failed"`, `class="r-window"`, `class="t-pace"`, `class="t-number"`, "g-pending",
		"sent: 15,", // a minute's bar: both workers
		">90<",      // 5 × (10 + 3 + 5) attempts; the 5 rate-limit answers are not among them
		"11.1% of send attempts", "10 retried",
		">25<", "pace 20", "number 5", "5 answered with a rate limit",
		">400<", "7 delivered, unacknowledged: 0 held by workers (0 being sent), 7 waiting for a retry or redelivery",
		"190: access token expired", "7m ago", "130429: rate lowered", "61.5 of 80 mps", "Dead-letter store",
		// The lowered rate's since and until (set at setup, on the clock's start).
		when(start.Add(-2 * time.Minute)), when(start.Add(90 * time.Second)),
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(r.body, "s-throttled") {
		t.Error("throttled sends are drawn among the send attempts")
	}
	f.ready.Ready = false
	if r := c.get(Prefix); !strings.Contains(r.body, "Not ready") {
		t.Error("not ready not shown")
	}
	// Two hours later neither worker reported: none listed, no counts.
	f.clock.Add(2 * time.Hour)
	c.signIn() // the session lasted an hour
	if r := c.get(Prefix); !strings.Contains(r.body, "none in the last seconds") || strings.Contains(r.body, "test-worker-2") || !strings.Contains(r.body, "Collecting") {
		t.Errorf("overview after two hours: %d", r.code)
	}
	if r := c.get(Prefix + "?x=1"); r.code != 400 {
		t.Errorf("overview with a parameter: %d", r.code)
	}
	// The fleet's Redis does not answer: the page still draws, and says why
	// the counts are missing.
	gone := testenv.StartRedis(t)
	rd := fleet.NewReader(gone.Client(t), "con", nil)
	gone.Stop()
	g := setup(t, func(o *Options) { o.Fleet = rd })
	gc := g.client(t)
	gc.signIn()
	if r := gc.get(Prefix); r.code != 200 || !strings.Contains(r.body, "The fleet's counts are missing: Redis did not answer") {
		t.Errorf("overview, Redis down: %d", r.code)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"15551234567": "•••••••4567", "": "", "1234": "•••4", "123": "••3", "+15551234567": "••••••••4567"} {
		if got := mask(in); got != want {
			t.Errorf("mask(%q) = %q, want %q", in, got, want)
		}
	}
	m := newMasker("15551234567")
	if got := m.job([]byte(`{"id":"x","message":{"to":"15551234567","text":{"body":"call 15551234567"}}}`)); strings.Contains(got, "15551234567") {
		t.Errorf("job %s", got)
	}
	var none masker
	if got := none.job([]byte(`{"to":"+1 (555) 123-4567","type":"text"}`)); strings.Contains(got, "555") {
		t.Errorf("message %s", got)
	}
}
