package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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
