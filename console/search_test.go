package console

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
)

// TestEntryAdvice: the entry page gives the next step of its code, offers
// only the replays that can help and warns of one that helps after a fix;
// a raw body that is not a job shows no number in clear.
func TestEntryAdvice(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	// A missing template: replay as it is only once it is approved.
	r := c.get(Prefix + "dlq/t1")
	for _, want := range []string{`id="advice"`, "Template does not exist", "Make sure the template is approved", "Message templates", `id="replay-warning"`, `id="replay"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("template entry lacks %q", want)
		}
	}
	// The window: no replay as it is, a replay as a template without a
	// warning.
	r = c.get(Prefix + "dlq/w1")
	if strings.Contains(r.body, `id="replay"`) || !strings.Contains(r.body, `id="replay-template"`) || strings.Contains(r.body, `id="astemplate-warning"`) ||
		!strings.Contains(r.body, "Only a template message reaches the customer") {
		t.Error("window entry: want a replay as a template only, without a warning")
	}
	// 131000 given up on: a plain replay, no warning, the ticket advice.
	r = c.get(Prefix + "dlq/r1")
	if !strings.Contains(r.body, `id="replay"`) || strings.Contains(r.body, `id="replay-warning"`) || !strings.Contains(r.body, "Direct Support ticket") {
		t.Error("131000 entry: want a replay without a warning and when to open a ticket")
	}
	// An invalid body: nothing to replay, the number masked.
	e := &deadletter.Entry{ID: "order-77", Reason: "invalid", Problem: "invalid job: not JSON", Raw: []byte(`to=15559998888&text=hi`), ParkedAt: f.clock.Now()}
	if err := f.store.Park(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	r = c.get(Prefix + "dlq/order-77")
	if r.code != 200 || strings.Contains(r.body, "15559998888") || !strings.Contains(r.body, "•••••••8888") || strings.Contains(r.body, `id="replay"`) || strings.Contains(r.body, `id="replay-template"`) {
		t.Errorf("invalid entry: %d, number masked %v, replays offered %v", r.code, !strings.Contains(r.body, "15559998888"), strings.Contains(r.body, `id="replay"`))
	}
}

// TestActionRows: previews and results show each entry's masked
// recipient, template, code and age; a replayed entry links to its job
// (what the replay produced), which shows its send once the worker made it.
func TestActionRows(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	r := c.get(Prefix + "replay?id=t1&id=w1")
	for _, want := range []string{`id="outcomes"`, "•••••••0003", "order_update", "132001", "free-form", "131047", "m ago", "fails the same way until"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	if strings.Contains(r.body, "15550000003") {
		t.Error("the preview shows a number in full")
	}
	form := formOf(t, r.body, "confirm")
	form.Set("csrf", c.csrf)
	r = c.post(Prefix+"replay", form)
	if r.code != 200 || !strings.Contains(r.body, `href="`+jobHref("t1")+`"`) || strings.Contains(r.body, `href="`+entryHref("t1")+`"`) || !strings.Contains(r.body, "•••••••0003") {
		t.Fatalf("result: %d; want links to the jobs, not the gone entries", r.code)
	}
	// The job before and after the worker sent its new generation: the
	// replay gave the ledger the attempts of the entry, which the page shows.
	if r := c.get(jobHref("t1")); r.code != 200 || strings.Contains(r.body, "No record of this job") || !strings.Contains(r.body, "132001") {
		t.Errorf("job page before the send: %d, want the parked attempt (132001)", r.code)
	}
	if err := f.ledger.RecordSent(context.Background(), "t1", 1, "wamid.T1", ledger.Attempt{At: f.clock.Now(), Gen: 1, Outcome: "sent"}, nil); err != nil {
		t.Fatal(err)
	}
	if r := c.get(jobHref("t1")); r.code != 200 || !strings.Contains(r.body, "wamid.T1") || !strings.Contains(r.body, `<dd id="outcome">sent`) {
		t.Errorf("job page after the send: %d", r.code)
	}
	if r := c.get(jobHref("t1")); strings.Contains(r.body, `id="message-status"`) || strings.Contains(r.body, `id="pricing"`) {
		t.Error("job page shows a message status or pricing none recorded")
	}
	// A send Meta held for quality assessment, priced by a status webhook.
	if err := f.ledger.RecordSentMany(context.Background(), []ledger.SentRecord{{ID: "held1", WAMID: "wamid.H1", Attempt: ledger.Attempt{At: f.clock.Now(), Outcome: "sent"}, MessageStatus: "held_for_quality_assessment"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.RecordStatusWith(context.Background(), "held1", "sent", f.clock.Now(), &ledger.Pricing{Billable: true, PricingModel: "PMP", Category: "marketing", Type: "regular"}); err != nil {
		t.Fatal(err)
	}
	if r := c.get(jobHref("held1")); r.code != 200 || !strings.Contains(r.body, `<dd id="message-status">held_for_quality_assessment`) ||
		!strings.Contains(r.body, `<dd id="pricing">PMP marketing regular, billable</dd>`) {
		t.Errorf("job page of a held, priced send: %d", r.code)
	}
	// A job still parked: its page is the entry.
	if r := c.get(jobHref("r1")); r.code != 303 || r.header.Get("Location") != entryHref("r1") {
		t.Errorf("job page of a parked job: %d %s", r.code, r.header.Get("Location"))
	}
	// Purge results show what went, with no link to it.
	r = c.get(Prefix + "purge?id=r1")
	form = formOf(t, r.body, "confirm")
	form.Set("csrf", c.csrf)
	r = c.post(Prefix+"purge", form)
	if r.code != 200 || !strings.Contains(r.body, "•••••••0004") || strings.Contains(r.body, `href="`+entryHref("r1")+`"`) {
		t.Errorf("purge result: %d", r.code)
	}
}

// TestSearchPage: by job id, fbtrace_id (of any attempt), wamid and
// recipient, the number typed only into a POST form and never echoed.
func TestSearchPage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	if err := f.ledger.RecordSent(context.Background(), "w2", 0, "wamid.W2", ledger.Attempt{At: f.clock.Now(), Outcome: "sent"}, nil); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		"t1":                         "t1",
		"fb-a-w1":                    "w1", // an earlier attempt's fbtrace_id
		"wamid.W2":                   "w2",
		f.hasher.Hash("15550000003"): "t1",
	} {
		r := c.get(Prefix + "search?q=" + url.QueryEscape(q))
		if got := strings.Join(ids(r.body), " "); r.code != 200 || got != want {
			t.Errorf("q=%s: %d %q, want %q", q, r.code, got, want)
		}
	}
	// A job that is not parked: a link to what became of it.
	if r := c.get(Prefix + "search?q=sent-job"); r.code != 200 || !strings.Contains(r.body, `href="`+jobHref("sent-job")+`"`) {
		t.Errorf("q=sent-job: %d, no job link", r.code)
	}
	// By number, in the form.
	r := c.post(Prefix+"search", url.Values{"csrf": {c.csrf}, "to": {"+15550000003"}})
	if got := strings.Join(ids(r.body), " "); r.code != 200 || got != "t1" || strings.Contains(r.body, "15550000003") {
		t.Errorf("by number: %d %q, or the number is echoed", r.code, got)
	}
	if strings.Contains(f.logs.String(), "15550000003") {
		t.Error("the number is in the log")
	}
	// Bad values: 400, nothing found.
	for _, q := range []string{"a%20b", strings.Repeat("x", 200), "r_XYZ"} {
		if r := c.get(Prefix + "search?q=" + q); r.code != 400 && (r.code != 200 || len(ids(r.body)) != 0) {
			t.Errorf("q=%s: %d", q, r.code)
		}
	}
	if r := c.get(Prefix + "search?q=t1&id=x"); r.code != 400 {
		t.Errorf("unknown parameter: %d", r.code)
	}
	if r := c.post(Prefix+"search", url.Values{"csrf": {c.csrf}, "to": {"+1 (555) 000"}}); r.code != 400 {
		t.Errorf("a number that is not one: %d", r.code)
	}
	if r := c.post(Prefix+"search", url.Values{"to": {"15550000003"}}); r.code != 403 {
		t.Errorf("no CSRF token: %d", r.code)
	}
}

// ids lists the fixture's entries a page links to.
func ids(body string) []string {
	var out []string
	for _, id := range []string{"w1", "w2", "t1", "r1"} {
		if strings.Contains(body, `href="`+entryHref(id)+`"`) {
			out = append(out, id)
		}
	}
	return out
}

// TestUserIDMasked: an entry addressed by a business-scoped user ID shows
// it masked with its country prefix (list, entry, search, previews),
// never in full; the search form takes a user ID and finds the entry by
// its hash.
func TestUserIDMasked(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.client(t)
	c.signIn()
	const id, masked = "US.13491208655302741918", "US.••••••••••••••••1918"
	code := 131062
	e := &deadletter.Entry{ID: "b1", Reason: "invalid", PhoneNumberID: "106540352242922", Recipient: id, MessageType: "template", Template: "otp",
		Job:       []byte(`{"id":"b1","phone_number_id":"106540352242922","message":{"messaging_product":"whatsapp","recipient":"` + id + `","type":"template","template":{"name":"otp","language":{"code":"en_US"}}}}`),
		LastError: &deadletter.LastError{HTTPStatus: 400, Code: &code, Message: "BSUID not supported for " + id},
		ParkedAt:  f.clock.Now()}
	if err := f.store.Park(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{Prefix + "dlq?reason=invalid", Prefix + "dlq/b1", Prefix + "search?q=b1", Prefix + "replay?id=b1", Prefix + "purge?id=b1"} {
		r := c.get(path)
		if r.code != 200 || !strings.Contains(r.body, masked) || strings.Contains(r.body, "13491208655302741918") {
			t.Errorf("%s: %d, masked user ID shown %v, in full %v", path, r.code, strings.Contains(r.body, masked), strings.Contains(r.body, "13491208655302741918"))
		}
	}
	r := c.post(Prefix+"search", url.Values{"csrf": {c.csrf}, "to": {id}})
	if r.code != 200 || !strings.Contains(r.body, `href="`+entryHref("b1")+`"`) || strings.Contains(r.body, "13491208655302741918") {
		t.Errorf("search by user ID: %d, or the ID is echoed", r.code)
	}
	if r := c.post(Prefix+"search", url.Values{"csrf": {c.csrf}, "to": {"us.1349"}}); r.code != 400 {
		t.Errorf("a user ID that is not one: %d", r.code)
	}
}
