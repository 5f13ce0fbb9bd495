// Package deadlettertest is test support, as net/http/httptest is: the
// sample dead-letter entries the tests of the commands (`waq dlq`, the
// admin API on the worker) and of the console start from. It sits beside
// the store rather than in internal/testenv, which is below it.
package deadlettertest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
)

// PhoneNumberID is the business number of every sample entry.
const PhoneNumberID = "106540352242922"

// TraceID and SpanID are the trace context every sample entry carries.
const (
	TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	SpanID  = "00f067aa0ba902b7"
)

// ParkSamples parks four entries in store, parked one to four minutes before
// now: two free-form messages outside the window (w1, w2: reason window,
// 131047), a missing template (t1: template, 132001) and a 131000 given up
// on (r1: retries_exhausted). Each has metadata tenant=acme and two
// attempts, a retry and the park.
func ParkSamples(t testing.TB, store *deadletter.Store, now time.Time) {
	t.Helper()
	now = now.UTC()
	for i, sp := range []struct {
		id, reason string
		code       int
		tpl, to    string
	}{
		{"w1", "window", 131047, "", "15550000001"},
		{"w2", "window", 131047, "", "15550000002"},
		{"t1", "template", 132001, "order_update", "15550000003"},
		{"r1", "retries_exhausted", 131000, "order_update", "15550000004"},
	} {
		msg := fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual","to":%q,"type":"text","text":{"body":"hi"}}`, sp.to)
		typ := "text"
		if sp.tpl != "" {
			msg = fmt.Sprintf(`{"messaging_product":"whatsapp","to":%q,"type":"template","template":{"name":%q,"language":{"code":"en_US"}}}`, sp.to, sp.tpl)
			typ = "template"
		}
		code := sp.code
		at := now.Add(-time.Duration(i+1) * time.Minute)
		e := &deadletter.Entry{ID: sp.id, Reason: sp.reason, Job: json.RawMessage(fmt.Sprintf(`{"id":%q,"phone_number_id":%q,"message":%s}`, sp.id, PhoneNumberID, msg)),
			PhoneNumberID: PhoneNumberID, To: sp.to, Template: sp.tpl, MessageType: typ, ParkedAt: at, Subject: "waq.send." + PhoneNumberID,
			Metadata:  map[string]string{"tenant": "acme"},
			LastError: &deadletter.LastError{HTTPStatus: 400, Code: &code, Subcode: 2494010, Type: "OAuthException", FBTraceID: "fb-" + sp.id, Title: "title " + sp.id, Message: "message to " + sp.to, Details: "details"},
			TraceID:   TraceID, SpanID: SpanID,
		}
		e.Attempts = append(e.Attempts, Attempt(at.Add(-40*time.Second), "failed", "retry", 131000, "fb-a-"+sp.id), Attempt(at, "failed", "park", code, "fb-"+sp.id))
		if err := store.Park(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// Attempt is one failed (or other outcome) attempt at a sample's trace
// context, from worker host-1, with a 30s delay.
func Attempt(at time.Time, outcome, action string, code int, fbtraceID string) ledger.Attempt {
	return ledger.Attempt{At: at, Outcome: outcome, Action: action, HTTPStatus: 400, Code: &code, FBTraceID: fbtraceID,
		TraceID: TraceID, SpanID: SpanID, Worker: "host-1", DelayMS: 30000}
}

// Total is how many entries store holds; an error fails the test.
func Total(t testing.TB, store *deadletter.Store) int64 {
	t.Helper()
	st, err := store.Stats(context.Background(), deadletter.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return st.Total
}
