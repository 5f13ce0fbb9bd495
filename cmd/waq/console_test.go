package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/browsertest"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

const consoleToken = "console-e2e-admin-token-7d1e"

// consoleWorker is `waq worker` run in process with the admin token, in
// front of a real NATS server, Redis and the simulator (window enforced,
// template "reengage" exists).
type consoleWorker struct {
	base  string
	vars  map[string]string
	store *deadletter.Store
	led   *ledger.Ledger
	pub   *queue.Producer
}

func startConsoleWorker(t *testing.T, adminToken string, extra map[string]string) *consoleWorker {
	t.Helper()
	r := testenv.StartRedis(t)
	n := testenv.StartNATS(t)
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{"tok"}, Scenario: &fakegraph.Scenario{
		Window:    fakegraph.Window{Enforce: true},
		Templates: []fakegraph.Template{{Name: "reengage", Language: "en_US"}},
	}})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })
	port := testenv.FreePort(t)
	vars := map[string]string{
		"WAQ_REDIS_URL": r.URL, "WAQ_NATS_URL": n.URL, "WAQ_KEY_PREFIX": "con", "WAQ_ACCESS_TOKEN": "tok",
		"WAQ_GRAPH_URL": srv.URL, "WAQ_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(port), "WAQ_LOG_LEVEL": "error",
		"WAQ_ADMIN_TOKEN": adminToken, "WAQ_TRACE_URL": "http://127.0.0.1:16686/trace/{trace_id}",
	}
	for k, v := range extra {
		vars[k] = v
	}
	logs := &testenv.Buffer{} // the worker's stderr, read while it writes
	// Cleanups run last first: this one after the worker stopped.
	t.Cleanup(func() {
		if adminToken != "" && strings.Contains(logs.String(), adminToken) {
			t.Error("the admin token is in the worker's log")
		}
	})
	startWorkerCmd(t, vars, logs)
	w := &consoleWorker{base: "http://127.0.0.1:" + strconv.Itoa(port), vars: vars,
		store: deadletter.New(r.Client(t), deadletter.Options{Prefix: "con"}),
		led:   ledger.New(r.Client(t), ledger.Options{Prefix: "con"}),
		pub:   queue.NewProducer(natsJS(t, n.URL), queue.ProducerOptions{})}
	testenv.Eventually(t, 15*time.Second, func() error {
		res, err := http.Get(w.base + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("readyz %d", res.StatusCode)
		}
		return nil
	})
	return w
}

// park publishes free-form messages (parked as window) and a template
// message that is sent, and waits for the worker to have done both.
func (w *consoleWorker) park(t *testing.T, ids ...string) {
	t.Helper()
	for i, id := range ids {
		job := &queue.Job{ID: id, PhoneNumberID: "106540352242922", Metadata: map[string]string{"tenant": "acme"},
			Message: json.RawMessage(fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1555777%04d","type":"text","text":{"body":"your order shipped"}}`, i))}
		if _, err := w.pub.Publish(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	sent := &queue.Job{ID: "sent-1", PhoneNumberID: "106540352242922",
		Message: json.RawMessage(`{"messaging_product":"whatsapp","to":"15557770999","type":"template","template":{"name":"reengage","language":{"code":"en_US"}}}`)}
	if _, err := w.pub.Publish(context.Background(), sent); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range ids {
			if _, err := w.store.Get(context.Background(), id); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
		st, err := w.led.Load(context.Background(), "sent-1")
		if err != nil || !st.Sent() {
			return fmt.Errorf("sent-1 not sent yet (%v)", err)
		}
		return nil
	})
}

// TestConsoleMounted: the worker serves the console only with the admin
// token; a POST without the CSRF token changes nothing.
func TestConsoleMounted(t *testing.T) {
	t.Parallel()
	off := startConsoleWorker(t, "", nil)
	if res, err := http.Get(off.base + "/admin/ui/"); err != nil || res.StatusCode != 404 {
		t.Errorf("console without a token: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	w := startConsoleWorker(t, consoleToken, nil)
	w.park(t, "http-a")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := http.Get(w.base + "/admin/ui/dlq")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 401 || strings.Contains(string(body), "http-a") {
		t.Errorf("without a session: %d", res.StatusCode)
	}
	res, err = noRedirect.PostForm(w.base+"/admin/ui/login", url.Values{"token": {consoleToken}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "waq_console" {
			cookie = c
		}
	}
	if res.StatusCode != 303 || cookie == nil {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	get := func(path string) string {
		req, _ := http.NewRequest("GET", w.base+path, nil)
		req.AddCookie(cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		return string(b)
	}
	preview := get("/admin/ui/replay?id=http-a&as_template=reengage&language=en_US")
	entries := regexp.MustCompile(`name="entries" value="([^"]*)"`).FindStringSubmatch(preview)
	if entries == nil || entries[1] != "http-a@1" {
		t.Fatalf("preview: %v", entries)
	}
	post := func(form url.Values) int {
		req, _ := http.NewRequest("POST", w.base+"/admin/ui/replay", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	form := url.Values{"entries": {entries[1]}, "as_template": {"reengage"}, "language": {"en_US"}}
	if code := post(form); code != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d", code)
	}
	form.Set("csrf", "forged")
	if code := post(form); code != http.StatusForbidden {
		t.Errorf("POST with a forged CSRF token: %d", code)
	}
	if _, err := w.store.Get(context.Background(), "http-a"); err != nil {
		t.Errorf("the entry is gone after refused POSTs: %v", err)
	}
	form.Set("csrf", regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(preview)[1])
	if code := post(form); code != 200 {
		t.Errorf("POST with the CSRF token: %d", code)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		st, err := w.led.Load(context.Background(), "http-a")
		if err != nil || !st.Sent() {
			return fmt.Errorf("http-a not sent (%v)", err)
		}
		return nil
	})
}

// TestConsoleInBrowser is the operator's story in a real browser: a wrong
// token sees nothing; sign in; filter the dead letters to window; open an
// entry; replay it as a template; see it leave the list (and get sent).
// Every page is saved as a screenshot (WAQ_ARTIFACTS to keep them).
func TestConsoleInBrowser(t *testing.T) {
	b := browsertest.Start(t, 2*time.Minute)
	// Traces go to a collector that takes everything, so that entries carry
	// trace ids for the console to link.
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(otlp.Close)
	w := startConsoleWorker(t, consoleToken, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL})
	w.park(t, "order-1001", "order-1002", "order-1003")
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// A wrong token: the sign-in page again, nothing of the store.
	b.Do("open the console", chromedp.Navigate(w.base+"/admin/ui/"), chromedp.WaitVisible(css("#signin")))
	b.Screenshot("signin")
	b.Do("wrong token", chromedp.SendKeys(css("#token"), "wrong-token-wrong-token"), chromedp.Submit(css("#signin")),
		chromedp.WaitVisible(css("body.page-login .banner")))
	if body := b.Text("body"); !strings.Contains(body, "not the admin token") || strings.Contains(body, "order-100") {
		t.Fatalf("wrong token shows: %q", body)
	}
	b.Screenshot("wrong-token")
	b.Do("direct link without a session", chromedp.Navigate(w.base+"/admin/ui/dlq?reason=window"), chromedp.WaitVisible(css("#signin")))
	if body := b.Text("body"); strings.Contains(body, "order-100") {
		t.Fatalf("no session shows: %q", body)
	}

	// Sign in: back to the page that was asked for.
	b.Do("sign in", chromedp.SendKeys(css("#token"), consoleToken), chromedp.Submit(css("#signin")), chromedp.WaitVisible(css("body.page-list")))
	b.Do("overview", chromedp.Click(css(`header nav a[href="/admin/ui/"]`)), chromedp.WaitVisible(css("body.page-overview figure.chart svg")))
	if body := b.Text("main"); !strings.Contains(body, "The fleet's view") || !strings.Contains(body, "Ready") {
		t.Errorf("overview: %q", body)
	}
	b.Screenshot("overview")

	// The dead letters, filtered to window with the form.
	b.Do("dead letters", chromedp.Click(css(`header nav a[href="/admin/ui/dlq"]`)), chromedp.WaitVisible(css("body.page-list table.list")))
	b.Do("filter to window", chromedp.SetValue(css("#f-reason"), "window"), chromedp.Submit(css("#filters")),
		chromedp.WaitReady(css(`body.page-list option[value="window"][selected]`)))
	if !strings.Contains(b.Location(), "reason=window") {
		t.Errorf("filtered location %s", b.Location())
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("table.list a.id").length`); n != 3 {
		t.Errorf("%d window entries listed, want 3", n)
	}
	list := b.Text("main")
	if !strings.Contains(list, "all 3 failures") && !strings.Contains(list, "131047 on 3 jobs") || strings.Contains(list, "15557770000") || !strings.Contains(list, "•••••••0000") {
		t.Errorf("list: %q", list)
	}
	b.Screenshot("dead-letters-window")

	// An entry.
	b.Do("open an entry", chromedp.Click(css(`a.id[href="/admin/ui/dlq/order-1002"]`)), chromedp.WaitVisible(css("body.page-entry #fbtrace")))
	fb := browsertest.Eval[string](b, `document.getElementById("fbtrace").value`)
	trace := browsertest.Eval[string](b, `(document.getElementById("trace") || {}).href || ""`)
	if fb == "" || !strings.HasPrefix(trace, "http://127.0.0.1:16686/trace/") || len(trace) != len("http://127.0.0.1:16686/trace/")+32 {
		t.Errorf("fbtrace_id %q, trace link %q", fb, trace)
	}
	if copyShown := browsertest.Eval[bool](b, `!document.querySelector("button[data-copy]").hidden`); !copyShown {
		t.Error("the copy button is not shown with JavaScript on")
	}
	if body := b.Text("main"); strings.Contains(body, "15557770001") || !strings.Contains(body, "131047") {
		t.Errorf("entry: %q", body)
	}
	b.Screenshot("entry")

	// Replay it as a template: the dry run first, then the result.
	b.Do("replay as a template", chromedp.SendKeys(css("#as_template"), "reengage"), chromedp.SendKeys(css("#language"), "en_US"),
		chromedp.Click(css("#replay-template")), chromedp.WaitVisible(css("body.page-action #confirm")))
	if body := b.Text("main"); !strings.Contains(body, "Would replay 1") || !strings.Contains(body, "as template reengage") {
		t.Errorf("preview: %q", body)
	}
	b.Screenshot("replay-preview")
	if _, err := w.store.Get(context.Background(), "order-1002"); err != nil {
		t.Fatalf("the preview removed the entry: %v", err)
	}
	b.Do("confirm", chromedp.Click(css("#do")), chromedp.WaitVisible(css("body.page-action #back")))
	if body := b.Text("main"); !strings.Contains(body, "Replayed 1") {
		t.Errorf("result: %q", body)
	}
	b.Screenshot("replay-result")

	// Back to the list: it left.
	b.Do("back to the list", chromedp.Click(css("#back")), chromedp.WaitVisible(css("body.page-list table.list")))
	if n := browsertest.Eval[int](b, `document.querySelectorAll("table.list a.id").length`); n != 2 {
		t.Errorf("%d window entries listed after the replay, want 2", n)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll('a.id[href="/admin/ui/dlq/order-1002"]').length`); n != 0 {
		t.Error("the replayed entry is still listed")
	}
	b.Screenshot("dead-letters-after")
	testenv.Eventually(t, 20*time.Second, func() error {
		st, err := w.led.Load(context.Background(), "order-1002")
		if err != nil || !st.Sent() {
			return fmt.Errorf("order-1002 not sent (%v)", err)
		}
		return nil
	})

	// The other pages, for a look: the support ticket and a purge preview.
	b.Do("support ticket", chromedp.Navigate(w.base+"/admin/ui/export?reason=window"), chromedp.WaitVisible(css("body.page-export #download")))
	if body := b.Text("main"); strings.Contains(body, "15557770000") {
		t.Errorf("export shows a number: %q", body)
	}
	b.Screenshot("export")
	b.Do("purge preview", chromedp.Navigate(w.base+"/admin/ui/purge?reason=window&older_than=0s"), chromedp.WaitVisible(css("body.page-action #confirm")))
	b.Screenshot("purge-preview")
	b.Do("a bad filter", chromedp.Navigate(w.base+"/admin/ui/dlq?reason=windwo"), chromedp.WaitVisible(css("body.page-list .banner.error")))
	b.Screenshot("bad-filter")
	b.Do("a gone entry", chromedp.Navigate(w.base+"/admin/ui/dlq/order-1002"), chromedp.WaitVisible(css("body.page-error")))
	b.Screenshot("not-found")

	// Sign out: the console is closed again.
	b.Do("sign out", chromedp.Click(css("form.signout button")), chromedp.WaitVisible(css("#signin")))
	b.Do("after signing out", chromedp.Navigate(w.base+"/admin/ui/dlq"), chromedp.WaitVisible(css("#signin")))
	if body := b.Text("body"); strings.Contains(body, "order-100") {
		t.Errorf("signed out, the list shows: %q", body)
	}
}
