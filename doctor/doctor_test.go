package doctor_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/doctor"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/queue"
)

const (
	pnGood   = "106540352242922"
	pnRed    = "106540352242923"
	pnYellow = "106540352242924"
	pnLocked = "106540352242925"
	waba     = "102290129340398"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fake serves a simulator with a registry of numbers, tokens and
// templates, and returns a graph client for it.
func fake(t *testing.T) (*fakegraph.Server, *graph.Client) {
	t.Helper()
	soon := now.Add(48 * time.Hour)
	sc := &fakegraph.Scenario{
		Tokens: []fakegraph.Token{
			{Token: "good"},
			{Token: "short", ExpiresAt: &soon},
			{Token: "no-scope", Scopes: []string{"business_management"}},
			{Token: "no-management", Scopes: []string{"whatsapp_business_messaging"}},
		},
		PhoneNumbers: []fakegraph.PhoneNumber{
			{PhoneNumberID: pnGood, WABAID: waba},
			{PhoneNumberID: pnRed, WABAID: waba, QualityRating: "RED"},
			{PhoneNumberID: pnYellow, WABAID: waba, QualityRating: "YELLOW"},
			{PhoneNumberID: pnLocked, WABAID: waba, Locked: true},
		},
		Templates: []fakegraph.Template{
			{Name: "order_update", Languages: []string{"en_US", "de"}},
			{Name: "promo", Language: "en_US", Status: "PAUSED"},
		},
	}
	f := fakegraph.New(fakegraph.Config{Scenario: sc, Now: func() time.Time { return now }})
	srv := httptest.NewServer(f)
	t.Cleanup(func() { srv.Close(); f.Close() })
	gc, err := graph.New(graph.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return f, gc
}

func registry(t *testing.T, token string) *numbers.Registry {
	t.Helper()
	r, err := numbers.Load("", func(k string) string {
		if k == numbers.DefaultTokenEnv {
			return token
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func find(t *testing.T, rs []doctor.Result, check string) doctor.Result {
	t.Helper()
	for _, r := range rs {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %q check in %+v", check, rs)
	return doctor.Result{}
}

// TestGuide is the 131000 guide's checks against the simulator: each row
// names what to check and the verdict it must give.
func TestGuide(t *testing.T) {
	_, gc := fake(t)
	tests := []struct {
		name          string
		token         string
		o             doctor.Options
		check         string
		status        doctor.Status
		detail, fix   string
		failedOverall bool
	}{
		{"token fine", "good", doctor.Options{}, "token", doctor.OK, "does not expire", "", false},
		{"graph answers", "good", doctor.Options{}, "graph", doctor.OK, "answered in", "", false},
		{"token expires soon", "short", doctor.Options{}, "token", doctor.Warn, "expires in 48h", "System User", false},
		{"token unknown", "bogus", doctor.Options{}, "token", doctor.Fail, "not valid", "System User", true},
		{"token without messaging", "no-scope", doctor.Options{}, "token", doctor.Fail, "lacks whatsapp_business_messaging", "grant", true},
		{"token without management", "no-management", doctor.Options{}, "token", doctor.Warn, "lacks whatsapp_business_management", "grant", false},
		{"number fine", "good", doctor.Options{PhoneNumberID: pnGood}, "phone_number", doctor.OK, "status CONNECTED, quality GREEN", "", false},
		{"number red", "good", doctor.Options{PhoneNumberID: pnRed}, "phone_number", doctor.Fail, "quality RED", "red", true},
		{"number yellow", "good", doctor.Options{PhoneNumberID: pnYellow}, "phone_number", doctor.Warn, "quality YELLOW", "yellow", false},
		{"number locked", "good", doctor.Options{PhoneNumberID: pnLocked}, "phone_number", doctor.Fail, "status RESTRICTED", "cannot send", true},
		{"number unknown", "good", doctor.Options{PhoneNumberID: "999"}, "phone_number", doctor.Fail, "could not be read", "phone_number_id", true},
		{"template fine", "good", doctor.Options{Template: "order_update", Language: "de", WABAID: waba}, "template", doctor.OK, "is APPROVED", "", false},
		{"template language", "good", doctor.Options{Template: "order_update", Language: "fr", WABAID: waba}, "template", doctor.Fail, "exists in en_US, de but not in fr", "language", true},
		{"template paused", "good", doctor.Options{Template: "promo", Language: "en_US", WABAID: waba}, "template", doctor.Fail, "PAUSED", "132015", true},
		{"template missing", "good", doctor.Options{Template: "nope", Language: "en_US", WABAID: waba}, "template", doctor.Fail, "does not exist", "132001", true},
		{"template without waba", "good", doctor.Options{Template: "promo", Language: "en_US"}, "template", doctor.Fail, "no WABA id", "--waba-id", true},
		{"recipient fine", "good", doctor.Options{To: "15551234567"}, "recipient", doctor.OK, "digits", "", false},
		{"recipient formatted", "good", doctor.Options{To: "+1 (555) 123-4567"}, "recipient", doctor.Fail, `write it as "15551234567"`, "country code", true},
		{"recipient user id", "good", doctor.Options{Recipient: "US.13491208655302741918"}, "recipient", doctor.OK, "US.••••••••••••••••1918 is a business-scoped user ID", "", false},
		{"recipient parent user id", "good", doctor.Options{Recipient: "US.ENT.11815799212886844830"}, "recipient", doctor.OK, "US.ENT.••••••••••••••••4830 is a parent business-scoped", "", false},
		{"recipient user id as to", "good", doctor.Options{To: "US.13491208655302741918"}, "recipient", doctor.Fail, "is a business-scoped user ID, not a number", "--recipient", true},
		{"recipient number as user id", "good", doctor.Options{Recipient: "15551234567"}, "recipient", doctor.Fail, "looks like a phone number", "--to", true},
		{"recipient bad user id", "good", doctor.Options{Recipient: "us.13491208655302741918"}, "recipient", doctor.Fail, `"•••••••••••••••••••1918" is not a business-scoped user ID`, "like US.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.Graph, o.Numbers, o.Now = gc, registry(t, tt.token), func() time.Time { return now }
			rs := doctor.Run(context.Background(), o)
			r := find(t, rs, tt.check)
			if r.Status != tt.status || !strings.Contains(r.Detail, tt.detail) || !strings.Contains(r.Fix, tt.fix) {
				t.Errorf("%s = %+v; want %s, %q, fix %q", tt.check, r, tt.status, tt.detail, tt.fix)
			}
			if doctor.Failed(rs) != tt.failedOverall {
				t.Errorf("failed overall = %v: %+v", doctor.Failed(rs), rs)
			}
			for _, r := range rs {
				if strings.Contains(r.Detail+r.Fix, tt.token) && len(tt.token) > 5 {
					t.Errorf("the token appears in %+v", r)
				}
			}
		})
	}
}

func TestGraphDown(t *testing.T) {
	gc, _ := graph.New(graph.Options{BaseURL: "http://127.0.0.1:1", Timeout: time.Second})
	rs := doctor.Run(context.Background(), doctor.Options{Graph: gc, Numbers: registry(t, "good")})
	if r := find(t, rs, "graph"); r.Status != doctor.Fail || !strings.Contains(r.Detail, "did not answer") {
		t.Errorf("graph = %+v", r)
	}
	rs = doctor.Run(context.Background(), doctor.Options{Graph: gc, Numbers: registry(t, "")})
	if r := find(t, rs, "graph"); r.Status != doctor.Fail || !strings.Contains(r.Fix, "WAQ_ACCESS_TOKEN") {
		t.Errorf("no token: %+v", r)
	}
}

func TestDeadLetterIsolation(t *testing.T) {
	r := testenv.StartRedis(t)
	store := deadletter.New(r.Client(t), deadletter.Options{})
	ctx := context.Background()
	rs := doctor.Run(ctx, doctor.Options{Store: store})
	if d := find(t, rs, "dead_letters"); d.Status != doctor.OK || !strings.Contains(d.Detail, "no job parked") {
		t.Errorf("empty = %+v", d)
	}
	code := 131026
	for i := 0; i < 9; i++ {
		err := store.Park(ctx, &deadletter.Entry{ID: "j" + string(rune('a'+i)), Reason: "undeliverable", PhoneNumberID: pnGood, To: "15551234567",
			LastError: &deadletter.LastError{Code: &code}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rs = doctor.Run(ctx, doctor.Options{Store: store})
	d := find(t, rs, "dead_letters")
	if d.Status != doctor.Warn || !strings.Contains(d.Detail, "9 parked") || !strings.Contains(d.Detail, "one recipient") || !strings.Contains(d.Fix, "check that recipient") {
		t.Errorf("isolated = %+v", d)
	}
	// Broad: many recipients, codes and numbers. The line reads
	// "detail — fix": the fix must not say "broad" again ("broad — broad").
	for i := 0; i < 12; i++ {
		c := []int{131000, 131026, 132001}[i%3]
		err := store.Park(ctx, &deadletter.Entry{ID: fmt.Sprintf("broad-%d", i), Reason: "retries_exhausted", PhoneNumberID: []string{pnGood, "200000000000002"}[i%2],
			To: fmt.Sprintf("1555000%04d", i), Template: []string{"a", "b"}[i%2], LastError: &deadletter.LastError{Code: &c}})
		if err != nil {
			t.Fatal(err)
		}
	}
	d = find(t, doctor.Run(ctx, doctor.Options{Store: store}), "dead_letters")
	if d.Status != doctor.Warn || !strings.HasSuffix(d.Detail, ": broad") || strings.Contains(strings.ToLower(d.Fix), "broad") || !strings.Contains(d.Fix, "waq dlq export") {
		t.Errorf("broad = %+v", d)
	}
}

func TestDurability(t *testing.T) {
	ctx := context.Background()
	for _, syncAlways := range []bool{true, false} {
		port := testenv.FreePort(t)
		n := testenv.StartNATSWith(t, func(o *server.Options) {
			o.HTTPHost, o.HTTPPort, o.SyncAlways = "127.0.0.1", port, syncAlways
		})
		_, js := n.Connect(t)
		if _, err := queue.EnsureStream(ctx, js, queue.StreamConfig{}); err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(n.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rs := doctor.Run(ctx, doctor.Options{NATS: nc, Stream: "WAQ_SEND", NATSMonitorURL: n.MonitorURL})
		if r := find(t, rs, "jetstream"); r.Status != doctor.OK || !strings.Contains(r.Detail, "1 replica(s), file storage") {
			t.Errorf("jetstream = %+v", r)
		}
		sync := find(t, rs, "jetstream_sync")
		if syncAlways && sync.Status != doctor.OK || !syncAlways && (sync.Status != doctor.Warn || !strings.Contains(sync.Fix, "sync_interval: always")) {
			t.Errorf("sync (always=%v) = %+v", syncAlways, sync)
		}
	}
	// No monitoring endpoint: a warning that says what to check by hand.
	n := testenv.StartNATS(t)
	nc, _ := n.Connect(t)
	rs := doctor.Run(ctx, doctor.Options{NATS: nc, Stream: "WAQ_SEND", NATSMonitorURL: "http://127.0.0.1:1"})
	if r := find(t, rs, "jetstream"); r.Status != doctor.Fail || !strings.Contains(r.Fix, "start a worker once") {
		t.Errorf("no stream = %+v", r)
	}

	aof := testenv.StartRedis(t)
	if r := find(t, doctor.Run(ctx, doctor.Options{Redis: aof.Client(t)}), "redis"); r.Status != doctor.OK || !strings.Contains(r.Detail, "AOF on") {
		t.Errorf("redis with AOF = %+v", r)
	}
	bare := testenv.StartRedis(t, "--appendonly", "no")
	if r := find(t, doctor.Run(ctx, doctor.Options{Redis: bare.Client(t)}), "redis"); r.Status != doctor.Warn || !strings.Contains(r.Fix, "appendonly yes") {
		t.Errorf("redis without AOF = %+v", r)
	}
}
