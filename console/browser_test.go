package console

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/browsertest"
	"github.com/waqhq/waq/ledger"
)

// TestBrowserOverview draws an hour of two workers' counts in a real
// browser: the tiles sum both, the charts are there and sized, the throttled
// rows say since when and until when, and the pages read without
// JavaScript.
// (The operator's story with a worker is cmd/waq's TestConsoleInBrowser.)
func TestBrowserOverview(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	f := setup(t, func(o *Options) { o.Refresh = time.Hour }) // no reload while the test looks
	m := f.metrics
	m2, p2 := f.worker(t, "test-worker-2")
	// An hour with a 131000 burst in its middle, and a few parks; the second
	// worker sends 20 a minute and is paced now and then.
	sent := 0.0
	for i := 0; i < slots; i++ {
		s := math.Round(40 + 25*math.Sin(float64(i)/6))
		sent += s + 20
		m.Sends.WithLabelValues("sent", pn).Add(s)
		m2.Sends.WithLabelValues("sent", pn).Add(20)
		if i > 25 && i < 35 {
			m.Sends.WithLabelValues("failed", pn).Add(12)
			m.APIErrors.WithLabelValues("131000").Add(11)
			m.Sends.WithLabelValues("throttled", pn).Add(4)
			m.Throttled.WithLabelValues("number").Add(4)
		}
		if i%5 == 0 {
			m2.Throttled.WithLabelValues("pace").Add(6)
		}
		if i%7 == 0 {
			m.Parked.WithLabelValues("window").Add(3)
		}
		if i%11 == 0 {
			m.Parked.WithLabelValues("template").Add(1)
		}
		f.cons["test-worker-1"] = fleet.Consumer{Pending: int64(math.Max(0, 300-float64((i-30)*(i-30)))), AckPending: 12, At: f.clock.Now()}
		publish(t, f.pub, p2)
		if i < slots-1 {
			f.clock.Add(time.Minute)
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.Do("sign in", chromedp.Navigate(f.srv.URL+Prefix), chromedp.WaitVisible(css("#signin")),
		chromedp.SendKeys(css("#token"), token), chromedp.Submit(css("#signin")),
		chromedp.WaitVisible(css("body.page-overview figure.chart svg")))
	if n := browsertest.Eval[int](b, `document.querySelectorAll("figure.chart svg rect").length`); n < 100 {
		t.Errorf("%d bars drawn", n)
	}
	// A bar is as wide as a slot of the chart as the browser lays it out.
	if w := browsertest.Eval[float64](b, `document.querySelector("figure.chart svg rect").getBoundingClientRect().width`); w < 4 {
		t.Errorf("bars %.1fpx wide", w)
	}
	body := b.Text("main")
	for _, want := range []string{"131000 ERRORS", "190: access token expired", "130429: rate lowered", "PARKED", "WORKERS REPORTING", "test-worker-2"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	// The tiles as the browser shows them: both workers' sends, the
	// throttled apart from them.
	if got, want := b.Text("#tile-attempts .v"), num(sent+9*12); got != want {
		t.Errorf("send attempts tile %q, want %q", got, want)
	}
	if got := b.Text("#tile-throttled .v"); got != num(9*4+12*6) {
		t.Errorf("throttled tile %q, want %s", got, num(9*4+12*6))
	}
	if got := b.Text("#tile-workers .v"); got != "2" {
		t.Errorf("workers tile %q", got)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("figure.chart").length`); n != 5 {
		t.Errorf("%d charts", n)
	}
	// The lowered rate's row: since and until, not dashes.
	for _, col := range []int{5, 6} {
		if got := b.Text(fmt.Sprintf("#throttled tbody tr td:nth-child(%d)", col)); !strings.Contains(got, " UTC") || strings.Contains(got, "—") {
			t.Errorf("throttled row, column %d: %q", col, got)
		}
	}
	b.Screenshot("overview-hour")

	// Without JavaScript everything reads; only the copy button stays away.
	if _, err := chromedp.Call(b.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.Do("list without JavaScript", chromedp.Navigate(f.srv.URL+Prefix+"dlq"), chromedp.WaitVisible(css("body.page-list table.list")))
	b.Screenshot("list-no-js")
	b.Do("entry without JavaScript", chromedp.Navigate(f.srv.URL+Prefix+"dlq/w1"), chromedp.WaitVisible(css("body.page-entry #fbtrace")))
	// DOM reads only: the page's scripts (and so Evaluate) are off.
	if hidden, err := chromedp.Run(b.Ctx, chromedp.AttributeValue(css("button[data-copy]"), "hidden")); err != nil || !hidden.Exists {
		t.Errorf("the copy button is not hidden without JavaScript (%v)", err)
	}
	// Hidden means not laid out: no box model.
	if _, err := chromedp.Run(b.Ctx, chromedp.Dimensions(css("button[data-copy]"))); err == nil {
		t.Error("the copy button is laid out without JavaScript")
	}
	if html, err := chromedp.Run(b.Ctx, chromedp.OuterHTML(css("main"))); err != nil || !strings.Contains(html, "131047") || !strings.Contains(html, "•••••••0001") {
		t.Errorf("entry without JavaScript: %v", err)
	}
	b.Screenshot("entry-no-js")
}

// TestBrowserSearchAndAdvice is issue 22's console story in a real browser:
// search by fbtrace_id, wamid, job id and a recipient's number (typed into
// the POST form, never shown); open a result and read its next step, with
// only the replays that can help; an invalid body shows its number masked.
func TestBrowserSearchAndAdvice(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	f := setup(t, func(o *Options) { o.Refresh = time.Hour })
	ctx := context.Background()
	if err := f.ledger.RecordSent(ctx, "w2", 0, "wamid.W2", ledger.Attempt{At: f.clock.Now(), Outcome: "sent"}, nil); err != nil {
		t.Fatal(err)
	}
	raw := &deadletter.Entry{ID: "order-77", Reason: "invalid", Problem: "invalid job: not JSON", Raw: []byte(`to=15559998888&text=hi`), ParkedAt: f.clock.Now()}
	if err := f.store.Park(ctx, raw); err != nil {
		t.Fatal(err)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.Do("sign in", chromedp.Navigate(f.srv.URL+Prefix+"search"), chromedp.WaitVisible(css("#signin")),
		chromedp.SendKeys(css("#token"), token), chromedp.Submit(css("#signin")), chromedp.WaitVisible(css("body.page-search #search")))
	results := func() []string {
		t.Helper()
		return browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll("#results a.id")).map(a => a.textContent)`)
	}
	for _, c := range []struct{ q, want, by string }{
		{"fb-a-w1", "w1", "fbtrace_id"}, // an earlier attempt's
		{"wamid.W2", "w2", "wamid"},
		{"t1", "t1", "by id"},
	} {
		b.Do("search "+c.q, chromedp.Navigate(f.srv.URL+Prefix+"search"), chromedp.WaitVisible(css("#q")),
			chromedp.SendKeys(css("#q"), c.q), chromedp.Submit(css("#search")), chromedp.WaitVisible(css("#found")))
		if got := results(); len(got) != 1 || got[0] != c.want || !strings.Contains(b.Text("#found"), c.by) {
			t.Errorf("search %s: %v, %q", c.q, got, b.Text("#found"))
		}
	}
	b.Screenshot("search-job-id")

	// By number: the form posts it, the page shows the result and not the
	// number, and the address bar does not carry it.
	b.Do("search by number", chromedp.Navigate(f.srv.URL+Prefix+"search"), chromedp.WaitVisible(css("#to")),
		chromedp.SendKeys(css("#to"), "+15550000003"), chromedp.Submit(css("#search-to")), chromedp.WaitVisible(css("#found")))
	if got := results(); len(got) != 1 || got[0] != "t1" {
		t.Errorf("by number: %v", got)
	}
	if html := browsertest.Eval[string](b, `document.documentElement.outerHTML`); strings.Contains(html, "15550000003") || strings.Contains(b.Location(), "15550000003") {
		t.Error("the number searched for is on the page or in its address")
	}
	b.Screenshot("search-recipient")

	// The result's entry: its next step, and a replay as it is that warns.
	b.Do("open the result", chromedp.Click(css(`#results a.id`)), chromedp.WaitVisible(css("body.page-entry #advice")))
	if next := b.Text("#next"); !strings.Contains(next, "template") {
		t.Errorf("next step of a missing template: %q", next)
	}
	if fit := b.Text("#fit"); !strings.Contains(fit, "only after the fix") {
		t.Errorf("replay fit: %q", fit)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("#replay-warning").length`); n != 1 {
		t.Error("no warning beside a replay that fails the same way until the template is fixed")
	}
	b.Screenshot("entry-next-step")

	// A window failure: only the replay as a template is offered.
	b.Do("window entry", chromedp.Navigate(f.srv.URL+Prefix+"dlq/w1"), chromedp.WaitVisible(css("body.page-entry #advice")))
	if asIs, asTemplate := browsertest.Eval[int](b, `document.querySelectorAll("#replay").length`), browsertest.Eval[int](b, `document.querySelectorAll("#replay-template").length`); asIs != 0 || asTemplate != 1 {
		t.Errorf("window entry offers replay as it is %d, as a template %d", asIs, asTemplate)
	}

	// An invalid body: masked, and nothing to replay.
	b.Do("invalid entry", chromedp.Navigate(f.srv.URL+Prefix+"dlq/order-77"), chromedp.WaitVisible(css("body.page-entry #advice")))
	main := b.Text("main")
	if strings.Contains(main, "15559998888") || !strings.Contains(main, "•••••••8888") {
		t.Errorf("invalid entry's raw body: %q", main)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll("#replay, #replay-template").length`); n != 0 {
		t.Errorf("an invalid body offers %d replays", n)
	}
	b.Screenshot("entry-invalid-masked")
}
