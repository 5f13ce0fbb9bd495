package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/webhook"
)

const secret = "app-secret-for-tests"

func sign(body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

const failedBody = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550100","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.AAA","status":"failed","timestamp":"1764072000","recipient_id":"15551234567","errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},{"id":"wamid.BBB","status":"delivered","timestamp":"1764072001","recipient_id":"15557654321"}]},"field":"messages"}]}]}`

func TestParse(t *testing.T) {
	sts, others, err := webhook.Parse([]byte(failedBody))
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || others != 0 {
		t.Fatalf("statuses %d, others %d", len(sts), others)
	}
	f := sts[0]
	if f.WAMID != "wamid.AAA" || f.Status != "failed" || f.PhoneNumberID != "106540352242922" || f.WABAID != "102290129340398" ||
		len(f.Errors) != 1 || f.Errors[0].Code != 131047 || !strings.Contains(f.Errors[0].Details(), "24 hours") {
		t.Errorf("failed status = %+v", f)
	}
	if !f.Time().Equal(time.Unix(1764072000, 0)) {
		t.Errorf("time = %v", f.Time())
	}
	if sts[1].DedupID() != "wamid.BBB/delivered/1764072001" {
		t.Errorf("dedup id = %s", sts[1].DedupID())
	}
	// Inbound messages and other fields are counted, not returned.
	in := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"metadata":{"phone_number_id":"1"},"messages":[{"from":"1555","id":"wamid.in","type":"text"}]},"field":"messages"},{"value":{},"field":"account_update"}]}]}`
	sts, others, err = webhook.Parse([]byte(in))
	if err != nil || len(sts) != 0 || others != 2 {
		t.Errorf("inbound: %v %d %v", sts, others, err)
	}
	for _, bad := range []string{`not json`, `[]`, `{"object":"page","entry":[]}`, `{"object":"whatsapp_business_account","entry":"x"}`} {
		if _, _, err := webhook.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestValidSignature(t *testing.T) {
	good := sign(failedBody)
	if !webhook.ValidSignature(secret, []byte(failedBody), good) {
		t.Fatal("a valid signature was refused")
	}
	for name, c := range map[string]struct{ secret, body, header string }{
		"wrong secret": {"other", failedBody, good},
		"cut body":     {secret, failedBody[:len(failedBody)-10], good},
		"no prefix":    {secret, failedBody, strings.TrimPrefix(good, "sha256=")},
		"sha1":         {secret, failedBody, "sha1=" + strings.TrimPrefix(good, "sha256=")},
		"not hex":      {secret, failedBody, "sha256=zz"},
		"short":        {secret, failedBody, good[:20]},
		"empty":        {secret, failedBody, ""},
		"body changed": {secret, failedBody + " ", good},
	} {
		if webhook.ValidSignature(c.secret, []byte(c.body), c.header) {
			t.Errorf("%s: accepted", name)
		}
	}
}

type fixture struct {
	srv    *httptest.Server
	stream jetstream.Stream
	counts map[string]int
}

func setup(t *testing.T) *fixture {
	t.Helper()
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	s, err := queue.EnsureStream(context.Background(), js, queue.StreamConfig{Name: "WAQ_EVENTS", SubjectPrefix: webhook.DefaultSubjectPrefix})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{stream: s, counts: map[string]int{}}
	h := &webhook.Handler{AppSecret: secret, VerifyToken: "verify-me", JS: js, Count: func(r string, n int) { f.counts[r] += n }}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) post(t *testing.T, body, sig string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) stored(t *testing.T) uint64 {
	t.Helper()
	info, err := f.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestSubscriptionCheck(t *testing.T) {
	f := setup(t)
	get := func(q url.Values) (int, string) {
		resp, err := http.Get(f.srv.URL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {"1158201444"}})
	if code != 200 || body != "1158201444" {
		t.Errorf("good check: %d %q", code, body)
	}
	for _, q := range []url.Values{
		{"hub.mode": {"subscribe"}, "hub.verify_token": {"wrong"}, "hub.challenge": {"1"}},
		{"hub.mode": {"unsubscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {"1"}},
		{"hub.challenge": {"1"}},
	} {
		if code, body := get(q); code != 403 || body == "1" {
			t.Errorf("%v: %d %q", q, code, body)
		}
	}
}

func TestPostStoresOnlySigned(t *testing.T) {
	f := setup(t)
	if code := f.post(t, failedBody, sign(failedBody)); code != 200 {
		t.Fatalf("signed post: %d", code)
	}
	if n := f.stored(t); n != 2 {
		t.Fatalf("%d events stored, want 2 (one per status)", n)
	}
	// Meta delivers the same webhook again: JetStream keeps one of each.
	if code := f.post(t, failedBody, sign(failedBody)); code != 200 {
		t.Fatalf("redelivery: %d", code)
	}
	if n := f.stored(t); n != 2 {
		t.Errorf("after a redelivery: %d events, want 2", n)
	}
	bad := []struct {
		name, body, sig string
		code            int
	}{
		{"no signature", failedBody, "", 401},
		{"wrong secret", failedBody, "sha256=" + strings.Repeat("ab", 32), 401},
		{"cut body", failedBody[:200], sign(failedBody), 401},
		{"tampered", strings.Replace(failedBody, "131047", "131000", 1), sign(failedBody), 401},
		{"too large", `{"x":"` + strings.Repeat("a", webhook.MaxBody) + `"}`, "sha256=00", 413},
	}
	for _, b := range bad {
		if code := f.post(t, b.body, b.sig); code != b.code {
			t.Errorf("%s: %d, want %d", b.name, code, b.code)
		}
	}
	if n := f.stored(t); n != 2 {
		t.Errorf("refused posts stored events: %d", n)
	}
	if f.counts["invalid_signature"] != 4 || f.counts["too_large"] != 1 || f.counts["stored"] != 4 {
		t.Errorf("counts = %v", f.counts)
	}
	// Signed but not understood: 200 (so Meta stops), nothing stored.
	if code := f.post(t, `{"object":"page"}`, sign(`{"object":"page"}`)); code != 200 || f.stored(t) != 2 {
		t.Errorf("unparsed: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPut, f.srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("PUT: %v %v", resp, err)
	}
}

// TestPostWithoutJetStreamIs503: an event that cannot be stored is not
// acknowledged to Meta, which will deliver it again.
func TestPostWithoutJetStreamIs503(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	// No WAQ_EVENTS stream: the publish has nowhere to go.
	h := &webhook.Handler{AppSecret: secret, VerifyToken: "v", JS: js}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(failedBody))
	req.Header.Set("X-Hub-Signature-256", sign(failedBody))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
}

func TestDecodeEvent(t *testing.T) {
	if _, err := webhook.DecodeEvent([]byte(`{"id":"w","status":"sent","phone_number_id":"1"}`)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{``, `{}`, `{"id":"w"}`, `[1]`} {
		if _, err := webhook.DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("DecodeEvent(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(failedBody))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"statuses":[{"id":"x","status":"sent","timestamp":1}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sts, _, err := webhook.Parse(body)
		if err != nil {
			if len(sts) != 0 {
				t.Fatal("statuses with an error")
			}
			return
		}
		for _, s := range sts {
			if s.WAMID == "" || s.Status == "" || s.PhoneNumberID == "" || strings.ContainsAny(s.PhoneNumberID, ".*> ") {
				t.Fatalf("a status the worker cannot route: %+v", s)
			}
			if _, err := webhook.DecodeEvent(mustJSON(t, s)); err != nil && !errors.Is(err, nil) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseBSUIDPricingSystem: statuses keep recipient_user_id,
// recipient_parent_user_id and pricing; a pricing of another shape is
// dropped, not the status; system messages come back by type.
func TestParseBSUIDPricingSystem(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},
"statuses":[
 {"id":"wamid.1","status":"delivered","timestamp":"1","recipient_user_id":"US.13491208655302741918","recipient_parent_user_id":"US.ENT.11815799212886844830",
  "pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}},
 {"id":"wamid.2","status":"sent","timestamp":"2","recipient_id":"15551234567","pricing":"free"},
 {"id":"wamid.3","status":"sent","timestamp":"3","pricing":{"billable":"yes"}},
 {"id":"wamid.4","status":"read","timestamp":"4","pricing":null}],
"messages":[{"type":"system","system":{"type":"user_changed_user_id","user_id":"US.1"}},{"type":"text","text":{"body":"hi"}},{"type":"system","system":7}]}}]}]}`
	sts, _, system, err := webhook.ParseSystem([]byte(body))
	if err != nil || len(sts) != 4 {
		t.Fatalf("%d statuses, %v", len(sts), err)
	}
	if s := sts[0]; s.RecipientUserID != "US.13491208655302741918" || s.RecipientParentUserID != "US.ENT.11815799212886844830" || s.Pricing == nil ||
		*s.Pricing != (webhook.Pricing{Billable: true, PricingModel: "PMP", Category: "marketing", Type: "regular"}) {
		t.Errorf("first: %+v %+v", s, s.Pricing)
	}
	for _, s := range sts[1:] {
		if s.Pricing != nil {
			t.Errorf("%s: pricing %+v from an odd value", s.WAMID, s.Pricing)
		}
	}
	if strings.Join(system, ",") != "user_changed_user_id,other" {
		t.Errorf("system messages %v", system)
	}
	// The event as stored keeps the new fields.
	data, _ := json.Marshal(sts[0])
	ev, err := webhook.DecodeEvent(data)
	if err != nil || ev.RecipientUserID != sts[0].RecipientUserID || ev.Pricing == nil || ev.Pricing.Category != "marketing" {
		t.Errorf("event %+v %v", ev, err)
	}
}
