package fakegraph

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func TestThroughputLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{
		Limits:       Limits{Throughput: Throughput{Enabled: true}},
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone}, {PhoneNumberID: "200", MPS: 8, WABAID: "9"}},
	}})
	// 80 mps allows a burst of 20; the 21st send at the same instant is throttled.
	for i := range 20 {
		if _, err := e.send(t, strconv.Itoa(i), text("1555000"+strconv.Itoa(1000+i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	_, err := e.send(t, "over", text("15559999999"))
	ae := apiError(t, err, 130429)
	if ae.HTTPStatus != 429 || ae.Details != "Cloud API message throughput has been reached." {
		t.Errorf("got %+v", ae)
	}
	// Another number has its own bucket (8 mps: a burst of 2).
	for i := range 2 {
		if _, err := e.sendFrom(t, "200", "b"+strconv.Itoa(i), text("15559999999")); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.sendFrom(t, "200", "b3", text("15559999999"))
	apiError(t, err, 130429)
	// A quarter of a second refills 20 sends at 80 mps.
	e.clock.Add(250 * time.Millisecond)
	for i := range 20 {
		if _, err := e.send(t, "after"+strconv.Itoa(i), text("1555100"+strconv.Itoa(1000+i))); err != nil {
			t.Fatalf("after the refill, send %d: %v", i, err)
		}
	}
	_, err = e.send(t, "over2", text("15559999998"))
	apiError(t, err, 130429)
}

func TestPairLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Limits: Limits{Pair: PairLimit{Enabled: true}}}})
	for i := range 3 {
		if _, err := e.send(t, strconv.Itoa(i), text(testTo)); err != nil {
			t.Fatalf("burst send %d: %v", i, err)
		}
	}
	_, err := e.send(t, "4", text(testTo))
	ae := apiError(t, err, 131056)
	if ae.HTTPStatus != 429 {
		t.Errorf("got %+v", ae)
	}
	// Other recipients are not held back.
	if _, err := e.send(t, "other", text("15550001111")); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(5 * time.Second)
	_, err = e.send(t, "5", text(testTo))
	apiError(t, err, 131056)
	e.clock.Add(time.Second)
	if _, err := e.send(t, "6", text(testTo)); err != nil {
		t.Fatalf("after 6s: %v", err)
	}
}

func TestAppAndWABALimits(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Limits: Limits{
		App:          CallLimit{Calls: 5, Per: Duration(time.Hour)},
		WABA:         CallLimit{Calls: 3, Per: Duration(10 * time.Minute)},
		UsageHeaders: true,
	}}})
	for i := range 3 {
		res, err := e.send(t, strconv.Itoa(i), text(testTo))
		if err != nil {
			t.Fatal(err)
		}
		if res.Usage == nil || res.Usage.App == nil || res.Usage.App.CallCount != (i+1)*20 {
			t.Errorf("send %d: usage %+v", i, res.Usage)
		}
	}
	// The WABA's budget of 3 is spent: 80007 with the time to regain access.
	e.clock.Add(150 * time.Second)
	_, err := e.send(t, "w", text(testTo))
	ae := apiError(t, err, 80007)
	if ae.HTTPStatus != 429 || ae.Usage == nil {
		t.Fatalf("got %+v", ae)
	}
	if got := ae.Usage.RegainAccessIn(); got != 8*time.Minute {
		t.Errorf("regain access in %v, want 8m (7m30s rounded up)", got)
	}
	// The app's budget of 5 ends with the next call: code 4.
	e.clock.Add(10 * time.Minute)
	if _, err := e.send(t, "a5", text(testTo)); err != nil {
		t.Fatal(err)
	}
	_, err = e.send(t, "a6", text(testTo))
	ae = apiError(t, err, 4)
	if ae.Message != "(#4) Application request limit reached" || ae.Usage == nil || ae.Usage.App == nil || ae.Usage.App.CallCount != 100 {
		t.Errorf("got %+v usage %+v", ae, ae.Usage)
	}
	e.clock.Add(time.Hour)
	if _, err := e.send(t, "a7", text(testTo)); err != nil {
		t.Fatalf("after an hour: %v", err)
	}
}

func TestBlocksAndLocks(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	ctx := context.Background()
	if err := e.ctl.BlockWABA(ctx, DefaultWABAID, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err := e.send(t, "w", text(testTo))
	ae := apiError(t, err, 80007)
	if ae.Usage.RegainAccessIn() != 2*time.Minute {
		t.Errorf("regain %v", ae.Usage.RegainAccessIn())
	}
	e.clock.Add(90 * time.Second)
	if _, err := e.send(t, "w2", text(testTo)); err != nil {
		t.Fatalf("after the block: %v", err)
	}
	if err := e.ctl.BlockApp(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = e.send(t, "a", text(testTo))
	apiError(t, err, 4)
	if err := e.ctl.BlockApp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.ctl.Lock(ctx, testPhone); err != nil {
		t.Fatal(err)
	}
	_, err = e.send(t, "l", text(testTo))
	ae = apiError(t, err, 131031)
	if ae.HTTPStatus != 403 {
		t.Errorf("locked: %+v", ae)
	}
	if _, err := e.sendFrom(t, "777", "other", text(testTo)); err != nil {
		t.Errorf("another number was locked too: %v", err)
	}
	if err := e.ctl.Unlock(ctx, testPhone); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(t, "u", text(testTo)); err != nil {
		t.Fatalf("unlocked: %v", err)
	}
	// Locking the WABA locks its numbers.
	if err := e.ctl.Lock(ctx, DefaultWABAID); err != nil {
		t.Fatal(err)
	}
	_, err = e.sendFrom(t, "777", "waba", text(testTo))
	apiError(t, err, 131031)
}

func TestPhoneRegistry(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{PhoneNumbers: []PhoneNumber{
		{PhoneNumberID: testPhone, DisplayPhoneNumber: "+1 555-010-0001", Locked: true},
		{PhoneNumberID: "300", DisplayPhoneNumber: "+1 555-010-0003"},
	}}})
	_, err := e.sendFrom(t, "999", "x", text(testTo))
	ae := apiError(t, err, 100)
	if ae.Subcode != 33 || ae.Type != "GraphMethodException" {
		t.Errorf("unknown number: %+v", ae)
	}
	_, err = e.send(t, "locked", text(testTo))
	apiError(t, err, 131031)
	_, err = e.sendFrom(t, "300", "self", text("15550100003"))
	apiError(t, err, 131021)
	if _, err := e.sendFrom(t, "300", "ok", text(testTo)); err != nil {
		t.Fatal(err)
	}
}

func TestCustomerServiceWindow(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Window: Window{Enforce: true, Open: []OpenWindow{{To: "+1 555 000 2222"}}}}})
	_, err := e.send(t, "closed", text(testTo))
	ae := apiError(t, err, 131047)
	if ae.HTTPStatus != 400 || ae.Message != "(#131047) Re-engagement message" {
		t.Errorf("got %+v", ae)
	}
	// Templates need no window.
	if _, err := e.send(t, "tmpl", tmpl(testTo, "any", "en_US", 0)); err != nil {
		t.Fatal(err)
	}
	// The scenario's open window, then one opened by an inbound message.
	if _, err := e.send(t, "open", text("15550002222")); err != nil {
		t.Fatal(err)
	}
	if err := e.ctl.Inbound(context.Background(), testPhone, testTo, "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.send(t, "after-inbound", text(testTo)); err != nil {
		t.Fatal(err)
	}
	// The inbound opened the window with that number only.
	_, err = e.sendFrom(t, "444", "other-number", text(testTo))
	apiError(t, err, 131047)
	// It closes after 24 hours.
	e.clock.Add(24*time.Hour - time.Second)
	if _, err := e.send(t, "late", text(testTo)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Second)
	_, err = e.send(t, "too-late", text(testTo))
	apiError(t, err, 131047)
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Templates: []Template{
		{Name: "order_update", Languages: []string{"en_US", "pt_BR"}, BodyParams: 2},
		{Name: "spring_sale", Language: "en_US", Status: "PAUSED", Category: "MARKETING"},
		{Name: "old_promo", Language: "en_US", Status: "DISABLED"},
		{Name: "draft", Language: "en_US", Status: "PENDING"},
	}}})
	if _, err := e.send(t, "ok", tmpl(testTo, "order_update", "pt_BR", 2)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, lang string
		params     int
		code       int
		details    string
	}{
		{"order_update", "de", 2, 132001, "template name (order_update) does not exist in de"},
		{"missing", "en_US", 0, 132001, "template name (missing) does not exist in en_US"},
		{"draft", "en_US", 0, 132001, "template name (draft) does not exist in en_US (status PENDING)"},
		{"spring_sale", "en_US", 0, 132015, ""},
		{"old_promo", "en_US", 0, 132016, ""},
		{"order_update", "en_US", 1, 132000, "body: number of localizable_params (1) does not match the expected number of params (2)"},
	}
	for _, c := range cases {
		_, err := e.send(t, c.name, tmpl(testTo, c.name, c.lang, c.params))
		ae := apiError(t, err, c.code)
		if c.details != "" && ae.Details != c.details {
			t.Errorf("%s/%s: details %q, want %q", c.name, c.lang, ae.Details, c.details)
		}
		if c.code == 132001 && ae.HTTPStatus != 404 {
			t.Errorf("132001 answered http %d", ae.HTTPStatus)
		}
	}
}

func TestScriptedThrottleHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{
		{Match: Match{JobID: "waba"}, Respond: Response{Error: Code(80007), RegainAccess: Duration(150 * time.Second)}},
		{Match: Match{JobID: "waba-default"}, Respond: Response{Error: Code(80007)}},
		{Match: Match{JobID: "app"}, Respond: Response{Error: Code(4)}},
	}}})
	_, err := e.send(t, "waba", text(testTo))
	if got := apiError(t, err, 80007).Usage.RegainAccessIn(); got != 3*time.Minute {
		t.Errorf("regain %v, want 3m", got)
	}
	_, err = e.send(t, "waba-default", text(testTo))
	if got := apiError(t, err, 80007).Usage.RegainAccessIn(); got != time.Minute {
		t.Errorf("default regain %v, want 1m", got)
	}
	_, err = e.send(t, "app", text(testTo))
	if u := apiError(t, err, 4).Usage; u == nil || u.App == nil || u.App.CallCount != 100 {
		t.Errorf("app usage %+v", u)
	}
}
