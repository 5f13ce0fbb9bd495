package fakegraph

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

const testSecret = "app-secret"

// receivedHook is one webhook as a receiver got it.
type receivedHook struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				MessagingProduct string `json:"messaging_product"`
				Metadata         struct {
					DisplayPhoneNumber string `json:"display_phone_number"`
					PhoneNumberID      string `json:"phone_number_id"`
				} `json:"metadata"`
				Messages []struct {
					From string `json:"from"`
					Type string `json:"type"`
					Text struct {
						Body string `json:"body"`
					} `json:"text"`
				} `json:"messages"`
				Statuses []struct {
					ID              string `json:"id"`
					Status          string `json:"status"`
					Timestamp       string `json:"timestamp"`
					RecipientID     string `json:"recipient_id"`
					RecipientUserID string `json:"recipient_user_id"`
					Pricing         *struct {
						Category string `json:"category"`
					} `json:"pricing"`
					Errors []struct {
						Code      int    `json:"code"`
						Title     string `json:"title"`
						Message   string `json:"message"`
						ErrorData struct {
							Details string `json:"details"`
						} `json:"error_data"`
					} `json:"errors"`
				} `json:"statuses"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

func (h *receivedHook) status() string {
	v := h.Entry[0].Changes[0].Value
	if len(v.Statuses) == 0 {
		return "inbound"
	}
	return v.Statuses[0].Status
}

// receiver is a webhook endpoint that checks signatures and can be told to
// fail.
type receiver struct {
	ts       *httptest.Server
	mu       sync.Mutex
	hooks    []receivedHook
	raw      [][]byte // the bodies of hooks
	attempts int
	failN    int // answer 500 to the first failN deliveries
	badSig   int
	errs     chan error
}

func newReceiver(t *testing.T, failN int) *receiver {
	rc := &receiver{failN: failN, errs: make(chan error, 100)}
	rc.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(testSecret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.attempts++
		if !hmac.Equal([]byte(r.Header.Get("X-Hub-Signature-256")), []byte(want)) {
			rc.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if rc.attempts <= rc.failN {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var h receivedHook
		if err := json.Unmarshal(body, &h); err != nil || len(h.Entry) != 1 || len(h.Entry[0].Changes) != 1 {
			select {
			case rc.errs <- err:
			default:
			}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.hooks = append(rc.hooks, h)
		rc.raw = append(rc.raw, body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.ts.Close)
	return rc
}

func (rc *receiver) got() []receivedHook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedHook{}, rc.hooks...)
}

func (rc *receiver) statuses() []string {
	var out []string
	for _, h := range rc.got() {
		out = append(out, h.status())
	}
	return out
}

func (rc *receiver) check(t *testing.T) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig > 0 {
		t.Errorf("%d webhooks with a bad signature", rc.badSig)
	}
	select {
	case err := <-rc.errs:
		t.Errorf("a webhook did not decode: %v", err)
	default:
	}
}

func hooksScenario(url string) Webhooks {
	return Webhooks{URL: url, AppSecret: testSecret, RetryBackoff: Duration(time.Millisecond)}
}

func TestStatusWebhooks(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	w := hooksScenario(rc.ts.URL)
	w.Statuses = []string{"sent", "delivered", "read"}
	e := setup(t, Config{Scenario: &Scenario{Webhooks: w, PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, WABAID: "555", DisplayPhoneNumber: "+1 555-010-0001"}}}})
	res, err := e.send(t, "j", tmpl(testTo, "t", "en_US", 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "three webhooks", func() bool { return len(rc.got()) == 3 })
	rc.check(t)
	for i, h := range rc.got() {
		v := h.Entry[0].Changes[0].Value
		st := v.Statuses[0]
		if h.Object != "whatsapp_business_account" || h.Entry[0].ID != "555" || h.Entry[0].Changes[0].Field != "messages" ||
			v.MessagingProduct != "whatsapp" || v.Metadata.PhoneNumberID != testPhone || v.Metadata.DisplayPhoneNumber != "15550100001" {
			t.Errorf("webhook %d: %+v", i, h)
		}
		if st.ID != res.WAMID || st.RecipientID != testTo || st.Status != []string{"sent", "delivered", "read"}[i] ||
			st.Pricing == nil || st.Pricing.Category != "utility" || len(st.Errors) != 0 {
			t.Errorf("status %d: %+v", i, st)
		}
		if ts, err := strconv.ParseInt(st.Timestamp, 10, 64); err != nil || ts != e.clock.Now().Unix() {
			t.Errorf("timestamp %q", st.Timestamp)
		}
	}
	// The receiver records a webhook before the simulator reads its answer.
	eventually(t, "three deliveries counted", func() bool { return e.sim.Stats(false).Webhooks.Delivered == 3 })
	ws := e.sim.Stats(false).Webhooks
	if ws.Scheduled != 3 || ws.Delivered != 3 || ws.ByStatus["read"] != 1 || ws.Failed != 0 {
		t.Errorf("webhook stats %+v", ws)
	}
}

func TestAsyncFailures(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	e := setup(t, Config{Scenario: &Scenario{
		Webhooks: hooksScenario(rc.ts.URL),
		Window:   Window{Enforce: true, Async: true},
		Rules: []Rule{{Match: Match{JobID: "undeliverable"}, Respond: Response{Async: &AsyncFailure{
			Error: Code(131026), After: []string{"sent"}, Details: "not on WhatsApp"}}}},
	}})
	res, err := e.send(t, "undeliverable", tmpl(testTo, "t", "en_US", 0))
	if err != nil {
		t.Fatalf("the send is accepted first: %v", err)
	}
	eventually(t, "sent then failed", func() bool { return len(rc.got()) == 2 })
	hooks := rc.got()
	if hooks[0].status() != "sent" || hooks[1].status() != "failed" {
		t.Fatalf("statuses %v", rc.statuses())
	}
	f := hooks[1].Entry[0].Changes[0].Value.Statuses[0]
	if f.ID != res.WAMID || len(f.Errors) != 1 || f.Errors[0].Code != 131026 || f.Errors[0].Title != "Message undeliverable" ||
		f.Errors[0].Message == "" || f.Errors[0].ErrorData.Details != "not on WhatsApp" || f.Pricing != nil {
		t.Errorf("failed status %+v", f)
	}

	// A free-form message outside the window: accepted, then 131047.
	res, err = e.send(t, "window", text("15550003333"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the window failure", func() bool { return len(rc.got()) == 3 })
	f = rc.got()[2].Entry[0].Changes[0].Value.Statuses[0]
	if f.Status != "failed" || f.ID != res.WAMID || f.Errors[0].Code != 131047 {
		t.Errorf("window failure %+v", f)
	}
	if s := e.sim.Sends(1)[0]; s.Rule != "window" || s.Outcome != "accepted" {
		t.Errorf("the send is logged as %+v", s)
	}
	rc.check(t)
}

func TestWebhookDuplicatesAndReorder(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	w := hooksScenario(rc.ts.URL)
	w.DuplicateRate, w.Duplicates, w.ReorderRate = 1, 2, 1
	e := setup(t, Config{Scenario: &Scenario{Webhooks: w}})
	if _, err := e.send(t, "j", text(testTo)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "six webhooks", func() bool { return len(rc.got()) == 6 })
	got := rc.statuses()
	want := []string{"delivered", "delivered", "delivered", "sent", "sent", "sent"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	eventually(t, "six deliveries counted", func() bool { return e.sim.Stats(false).Webhooks.Delivered == 6 })
	if ws := e.sim.Stats(false).Webhooks; ws.Duplicates != 4 || ws.Delivered != 6 || ws.Scheduled != 6 {
		t.Errorf("stats %+v", ws)
	}
	rc.check(t)
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 2)
	w := hooksScenario(rc.ts.URL)
	w.Statuses = []string{"sent"}
	e := setup(t, Config{Scenario: &Scenario{Webhooks: w}})
	if _, err := e.send(t, "j", text(testTo)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the webhook after two failures", func() bool { return e.sim.Stats(false).Webhooks.Delivered == 1 })
	ws, err := e.ctl.Webhooks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ws.Retried != 2 || ws.Delivered != 1 || len(ws.Recent) != 3 || ws.Recent[0].HTTPStatus != 500 || ws.Recent[2].Attempt != 3 {
		t.Errorf("stats %+v", ws)
	}

	// A receiver that never answers 200 gets the bounded retries, then the
	// simulator gives up and goes on with the next status.
	rc2 := newReceiver(t, 1000)
	w2 := hooksScenario(rc2.ts.URL)
	w2.Retries = 2
	e2 := setup(t, Config{Scenario: &Scenario{Webhooks: w2}})
	if _, err := e2.send(t, "j", text(testTo)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both statuses given up", func() bool { return e2.sim.Stats(false).Webhooks.Failed == 2 })
	rc2.mu.Lock()
	attempts := rc2.attempts
	rc2.mu.Unlock()
	if ws := e2.sim.Stats(false).Webhooks; attempts != 6 || ws.Retried != 4 || ws.Delivered != 0 {
		t.Errorf("attempts %d, stats %+v", attempts, ws)
	}
}

func TestInboundWebhook(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	e := setup(t, Config{WebhookURL: rc.ts.URL, AppSecret: testSecret})
	if err := e.ctl.Inbound(context.Background(), testPhone, "+1 555 123 4567", "order status?"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the inbound webhook", func() bool { return len(rc.got()) == 1 })
	m := rc.got()[0].Entry[0].Changes[0].Value.Messages
	if len(m) != 1 || m[0].From != testTo || m[0].Type != "text" || m[0].Text.Body != "order status?" {
		t.Errorf("inbound %+v", m)
	}
	rc.check(t)
}

func TestCloseAndResetDropPendingWebhooks(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	w := hooksScenario(rc.ts.URL)
	w.Delay = Duration(time.Hour)
	e := setup(t, Config{Scenario: &Scenario{Webhooks: w}})
	if _, err := e.send(t, "a", text(testTo)); err != nil {
		t.Fatal(err)
	}
	if ws := e.sim.Stats(false).Webhooks; ws.Pending != 1 {
		t.Fatalf("pending %+v", ws)
	}
	e.sim.Reset()
	if ws := e.sim.Stats(false).Webhooks; ws.Pending != 0 {
		t.Errorf("after reset %+v", ws)
	}
	if _, err := e.send(t, "b", text(testTo)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.sim.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a webhook due in an hour")
	}
	if ws := e.sim.Stats(false).Webhooks; ws.Dropped != 2 || ws.Delivered != 0 {
		t.Errorf("after close %+v", ws)
	}
	// Sends after Close are still answered, their webhooks dropped.
	if _, err := e.send(t, "c", text(testTo)); err != nil {
		t.Fatal(err)
	}
	if ws := e.sim.Stats(false).Webhooks; ws.Dropped != 4 {
		t.Errorf("after a send past close %+v", ws)
	}
	if len(rc.got()) != 0 {
		t.Errorf("webhooks delivered: %v", rc.statuses())
	}
}

func TestNoWebhooksWithoutURL(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{{Respond: Response{Async: &AsyncFailure{Error: Code(131049)}}}}}})
	if _, err := e.send(t, "j", text(testTo)); err != nil {
		t.Fatal(err)
	}
	if ws := e.sim.Stats(false).Webhooks; ws.Scheduled != 0 {
		t.Errorf("stats %+v", ws)
	}
}
