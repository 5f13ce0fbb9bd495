package console

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/waqhq/waq/internal/browsertest"
)

// TestBrowserSurface: the hardened surface as an operator's browser meets
// it. The static directory lists nothing; wrong tokens typed into the
// sign-in form are refused, then limited with a page that says for how
// long; an oversized form is 413 and leaves the session alone; and a
// sign-out on one worker ends the session on a second worker behind the
// same Redis, even for a browser that kept the old cookie.
func TestBrowserSurface(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	f := setup(t, func(o *Options) { o.Refresh = time.Hour })
	srvB := httptest.NewServer(New(f.opts)) // a second worker on the same Redis
	t.Cleanup(srvB.Close)
	a, second := f.srv.URL+Prefix, srvB.URL+Prefix
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	b.Do("the static directory", chromedp.Navigate(a+"static/"), chromedp.WaitVisible(css("body")))
	if text := b.Text("body"); !strings.Contains(text, "404") || strings.Contains(text, "console.css") {
		t.Errorf("static/ shows %q", text)
	}

	for i := range 6 {
		b.Do("a wrong token", chromedp.Navigate(a+"login"), chromedp.WaitVisible(css("#signin")),
			chromedp.SendKeys(css("#token"), "not-the-admin-token"), chromedp.Submit(css("#signin")),
			chromedp.WaitVisible(css(".banner.warn")))
		msg := b.Text(".banner.warn")
		switch {
		case i < 5 && !strings.Contains(msg, "not the admin token"):
			t.Errorf("wrong token %d: %q", i+1, msg)
		case i == 5 && !strings.Contains(msg, "Too many wrong tokens from your address: try again in 12 seconds"):
			t.Errorf("the sixth wrong token: %q", msg)
		}
	}
	b.Screenshot("sign-in-limited")
	f.clock.Add(12 * time.Second)
	b.Do("sign in after the wait", chromedp.Navigate(a), chromedp.WaitVisible(css("#signin")),
		chromedp.SendKeys(css("#token"), token), chromedp.Submit(css("#signin")),
		chromedp.WaitVisible(css("body.page-overview")))

	// A form over 2 MiB (the sign-out form, padded): 413, still signed in.
	browsertest.Eval[bool](b, `(() => { const f = document.querySelector("form.signout"); const i = document.createElement("input");
		i.type = "hidden"; i.name = "pad"; i.value = "x".repeat(3 << 20); f.appendChild(i); f.submit(); return true })()`)
	b.Do("the oversized form", chromedp.WaitVisible(css("body.page-error")))
	if text := b.Text("main"); !strings.Contains(text, "larger than the console takes") {
		t.Errorf("oversized form page: %q", text)
	}
	b.Screenshot("form-too-large")
	b.Do("still signed in", chromedp.Navigate(a+"dlq"), chromedp.WaitVisible(css("body.page-list")))

	// The same session on the second worker (cookies do not depend on the port).
	b.Do("the second worker", chromedp.Navigate(second+"dlq"), chromedp.WaitVisible(css("body.page-list")))
	cookies, err := chromedp.Call(b.Ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{second}})
	if err != nil {
		t.Fatal(err)
	}
	var kept string
	for _, c := range cookies.Cookies {
		if c.Name == cookieName {
			kept = c.Value
		}
	}
	if kept == "" {
		t.Fatal("no session cookie in the browser")
	}
	b.Do("sign out on the first worker", chromedp.Navigate(a), chromedp.WaitVisible(css("form.signout")),
		chromedp.Click(css("form.signout button")), chromedp.WaitVisible(css("#signin")))
	if msg := b.Text(".banner.warn"); !strings.Contains(msg, "signed out") {
		t.Errorf("after sign-out: %q", msg)
	}
	// A browser that kept the cookie (another tab, a copy) gets nowhere on
	// the second worker.
	if _, err := chromedp.Call(b.Ctx, network.SetCookie, network.SetCookieParams{Name: cookieName, Value: kept, URL: second}); err != nil {
		t.Fatal(err)
	}
	b.Do("the second worker after the sign-out", chromedp.Navigate(second+"dlq"), chromedp.WaitVisible(css("#signin")))
	if strings.Contains(b.Text("main"), "w1") {
		t.Error("the second worker shows entries after the sign-out")
	}
	b.Screenshot("signed-out-everywhere")
}
