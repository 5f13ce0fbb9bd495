package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/authlimit"
)

// TestStaticNoListing: the assets are served without sign-in, files only:
// the directory itself, however it is spelt, is 404 and lists nothing.
func TestStaticNoListing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	for _, p := range []string{"static/", "static", "static/.", "static/./", "static//", "static/nope/", "static/../static/"} {
		r := c.get(Prefix + p)
		if strings.Contains(r.body, "console.css") || strings.Contains(r.body, "icon.svg") {
			t.Errorf("GET %s%s lists the directory (%d):\n%s", Prefix, p, r.code, r.body)
		}
		if r.code == http.StatusOK {
			t.Errorf("GET %s%s: 200", Prefix, p)
		}
	}
	if r := c.get(Prefix + "static/"); r.code != http.StatusNotFound {
		t.Errorf("GET %sstatic/: %d, want 404", Prefix, r.code)
	}
	for _, p := range []string{"static/console.css", "static/console.js", "static/icon.svg"} {
		if r := c.get(Prefix + p); r.code != http.StatusOK || r.body == "" {
			t.Errorf("GET %s%s: %d", Prefix, p, r.code)
		}
	}
}

// TestFormTooLarge: a form over the bound is 413 with a page that says
// so, both signed in (a change form) and at the sign-in; nothing changes.
func TestFormTooLarge(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	big := strings.Repeat("x", maxLoginForm+1)
	if r := c.post(Prefix+"login", url.Values{"token": {big}}); r.code != http.StatusRequestEntityTooLarge || c.cookie != nil || !strings.Contains(r.body, "larger than") {
		t.Errorf("oversized sign-in form: %d", r.code)
	}
	c.signIn()
	huge := strings.Repeat("w1,", maxForm/3+1)
	for _, p := range []string{"replay", "purge", "search", "logout"} {
		r := c.post(Prefix+p, url.Values{"csrf": {c.csrf}, "ids": {huge}})
		if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "larger than") {
			t.Errorf("oversized %s form: %d", p, r.code)
		}
	}
	if f.parked(t) != 4 || f.published(t) != 0 {
		t.Errorf("something changed: %d parked, %d published", f.parked(t), f.published(t))
	}
	// The session survived: the oversized sign-out did not sign out.
	if r := c.get(Prefix); r.code != http.StatusOK {
		t.Errorf("after the oversized forms: %d", r.code)
	}
	// Just under the bound is read (and refused for what it says, not its size).
	if r := c.post(Prefix+"replay", url.Values{"csrf": {c.csrf}, "ids": {"w1"}, "pad": {strings.Repeat("x", 1000)}}); r.code == http.StatusRequestEntityTooLarge {
		t.Errorf("a small form: %d", r.code)
	}
}

// TestSignInLimit: 300 wrong sign-ins from one address get five 401s,
// then 429 with Retry-After and a page that says why, counted; the right
// token is refused too while the address is limited, and signs in once the
// wait has passed. Another address signs in meanwhile.
func TestSignInLimit(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	counts := map[string]int{}
	var lim *authlimit.Limiter
	f := setup(t, func(o *Options) {
		lim = authlimit.New(authlimit.Options{Now: o.Now, Count: func(surface, result string) {
			mu.Lock()
			counts[surface+" "+result]++
			mu.Unlock()
		}})
		o.Limiter = lim
	})
	c := f.client(t)
	codes := map[int]int{}
	for i := range 300 {
		r := c.post(Prefix+"login", url.Values{"token": {"wrong-" + strconv.Itoa(i)}})
		codes[r.code]++
		if c.cookie != nil {
			t.Fatal("a wrong token got a session")
		}
		if r.code == http.StatusTooManyRequests {
			ra, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 12 || !strings.Contains(r.body, "Too many wrong tokens") {
				t.Fatalf("429: Retry-After %q, page %s", r.header.Get("Retry-After"), r.body)
			}
		}
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 295 {
		t.Errorf("answers to 300 wrong sign-ins: %v, want 5 × 401 then 295 × 429", codes)
	}
	mu.Lock()
	if counts["console wrong_token"] != 5 || counts["console limited"] != 295 {
		t.Errorf("counted %v", counts)
	}
	mu.Unlock()
	if r := c.post(Prefix+"login", url.Values{"token": {token}}); r.code != http.StatusTooManyRequests || c.cookie != nil {
		t.Errorf("the right token while limited: %d", r.code)
	}
	// Another address is not limited (the limiter keys by RemoteAddr).
	other := &http.Request{RemoteAddr: "192.0.2.10:4000"}
	if _, limited := lim.Limited(other, Surface); limited {
		t.Error("another address is limited")
	}
	f.clock.Add(12 * time.Second)
	c.signIn()
}

// TestSignOutEveryWorker: two consoles (two workers) on one Redis take
// the same session; signing out on one ends it on the other, and on a
// third started afterwards. Another session stays good.
func TestSignOutEveryWorker(t *testing.T) {
	t.Parallel()
	f := setup(t)
	second := func() string {
		srv := httptest.NewServer(New(f.opts))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	b := second()
	a := f.client(t)
	a.signIn()
	kept := f.client(t)
	kept.signIn()
	cookie := *a.cookie
	onB := &client{t: t, f: f, base: b, cookie: &cookie}
	if r := onB.get(Prefix + "dlq"); r.code != http.StatusOK {
		t.Fatalf("the session on the second worker: %d", r.code)
	}
	if r := a.post(Prefix+"logout", url.Values{"csrf": {a.csrf}}); r.code != http.StatusOK || a.cookie != nil {
		t.Fatalf("sign-out: %d", r.code)
	}
	if r := onB.get(Prefix + "dlq"); r.code != http.StatusUnauthorized || strings.Contains(r.body, "w1") {
		t.Errorf("the signed-out session on the second worker: %d", r.code)
	}
	onC := &client{t: t, f: f, base: second(), cookie: &cookie}
	if r := onC.get(Prefix); r.code != http.StatusUnauthorized {
		t.Errorf("the signed-out session on a worker started later: %d", r.code)
	}
	onB.cookie = kept.cookie
	if r := onB.get(Prefix); r.code != http.StatusOK {
		t.Errorf("another session on the second worker after the sign-out: %d", r.code)
	}
	// The sign-out is kept as long as the session would have lasted, no longer.
	ttl, err := f.opts.Redis.TTL(context.Background(), "con:console:signed-out:"+strings.Split(cookie.Value, ".")[2]).Result()
	if err != nil || ttl <= 0 || ttl > f.opts.SessionTTL+time.Second {
		t.Errorf("the sign-out's TTL %v (%v), want up to the session's %v", ttl, err, f.opts.SessionTTL)
	}

	// Redis down: a session that cannot be checked is refused (503, its
	// cookie kept), and so is a sign-out with it, before anything is done.
	f.redis.Stop()
	if r := onB.get(Prefix); r.code != http.StatusServiceUnavailable || onB.cookie == nil || !strings.Contains(r.body, "could not be checked") {
		t.Errorf("a session while Redis is down: %d", r.code)
	}
	if r := kept.post(Prefix+"logout", url.Values{"csrf": {kept.csrf}}); r.code != http.StatusServiceUnavailable {
		t.Errorf("sign-out while Redis is down: %d", r.code)
	}
}
