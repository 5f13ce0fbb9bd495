package fakegraph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/graph"
)

// appendixA is every code SPEC Appendix A names.
var appendixA = []int{
	131000, 1, 2, 131016, 133004,
	131057, 2494100,
	130429, 4, 80007,
	131056,
	131047,
	132000, 132001, 132005, 132007, 132012, 132015, 132016, 132018, 132068, 132069,
	131026, 130472, 130497, 131049, 131050,
	100, 131008, 131009, 131021, 131051, 131053, 131055, 135000,
	0, 3, 10, 190, 200, 201, 250, 299, 33, 368, 131005, 131031, 131037, 131042, 131045, 131048, 131064, 133010,
}

var traceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{23}$`)

func TestSendAcceptedLikeMeta(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	res, err := e.send(t, "job-1", text("+1 (555) 123-4567"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.WAMID, "wamid.HBg") {
		t.Errorf("wamid %q: want Meta's shape wamid.HBg...", res.WAMID)
	}
	if res.MessageStatus != "accepted" || res.WAID != testTo || res.HTTPStatus != 200 {
		t.Errorf("got status %q wa_id %q http %d", res.MessageStatus, res.WAID, res.HTTPStatus)
	}
	if !traceRE.MatchString(res.FBTraceID) {
		t.Errorf("x-fb-trace-id %q: want 23 characters like Meta's", res.FBTraceID)
	}

	// The raw answer holds contacts[0].input as given.
	resp, body := e.raw(t, "tok", `{"messaging_product":"whatsapp","to":"+15551234567","text":{"body":"hi"}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	contacts := body["contacts"].([]any)[0].(map[string]any)
	if contacts["input"] != "+15551234567" || contacts["wa_id"] != testTo || body["messaging_product"] != "whatsapp" {
		t.Errorf("answer %v", body)
	}
}

func TestTraceIDsAreFresh(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	last := map[byte]int{}
	for range 1000 {
		id := newTraceID()
		if !traceRE.MatchString(id) || seen[id] {
			t.Fatalf("trace id %q malformed or repeated", id)
		}
		seen[id] = true
		last[id[22]]++
	}
	if len(last) < 32 {
		t.Errorf("the last character takes only %d values: not random", len(last))
	}
}

func TestWAMIDsAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := range 100000 {
		id := newWAMID(testTo)
		if seen[id] {
			t.Fatalf("wamid %q repeated after %d ids", id, i)
		}
		seen[id] = true
	}
}

func TestEveryAppendixACodeParses(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	for _, code := range appendixA {
		if !Known(code) {
			t.Errorf("code %d of Appendix A has no texts in the catalog", code)
		}
		if _, err := e.sim.AddRules(Rule{Match: Match{JobID: "code-" + strconv.Itoa(code)}, Times: 1, Respond: Response{Error: Code(code)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, code := range appendixA {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			_, err := e.send(t, "code-"+strconv.Itoa(code), text(testTo))
			ae := apiError(t, err, code)
			info := Lookup(code)
			if ae.HTTPStatus != info.HTTPStatus {
				t.Errorf("http status %d, want %d", ae.HTTPStatus, info.HTTPStatus)
			}
			if ae.Subcode != info.Subcode {
				t.Errorf("subcode %d, want %d", ae.Subcode, info.Subcode)
			}
			if ae.Type != "OAuthException" {
				t.Errorf("type %q, want OAuthException", ae.Type)
			}
			if !traceRE.MatchString(ae.FBTraceID) {
				t.Errorf("fbtrace_id %q", ae.FBTraceID)
			}
			if code != 190 && ae.Details != info.Details {
				t.Errorf("details %q, want %q", ae.Details, info.Details)
			}
			if info.Message == "" && code != 190 && ae.Message != "(#"+strconv.Itoa(code)+") "+info.Title {
				t.Errorf("message %q, want (#%d) %s", ae.Message, code, info.Title)
			}
			if info.User && (ae.UserTitle != info.Title || ae.UserMsg == "") {
				t.Errorf("error_user_title %q / error_user_msg %q", ae.UserTitle, ae.UserMsg)
			}
		})
	}
}

func TestStatusesPerCodeAsMetaDocuments(t *testing.T) {
	t.Parallel()
	want := map[int]int{190: 401, 0: 401, 131000: 500, 100: 400, 131047: 400, 130429: 429, 131056: 429,
		4: 429, 80007: 429, 10: 403, 131031: 403, 132001: 404, 2: 503, 133004: 503, 3: 500, 250: 403}
	for code, status := range want {
		if got := Lookup(code).HTTPStatus; got != status {
			t.Errorf("code %d answers http %d, want %d", code, got, status)
		}
	}
	if got := Lookup(987654); got.HTTPStatus != 400 || got.Type != "OAuthException" {
		t.Errorf("an unknown code answers %+v", got)
	}
}

func TestErrorBodyShape(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{{Respond: Response{Error: Code(131000), Subcode: 2494010}}}}})
	resp, body := e.raw(t, "tok", string(text(testTo)))
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	obj := body["error"].(map[string]any)
	data := obj["error_data"].(map[string]any)
	if obj["message"] != "(#131000) Something went wrong" || obj["type"] != "OAuthException" ||
		obj["code"] != float64(131000) || obj["error_subcode"] != float64(2494010) ||
		data["messaging_product"] != "whatsapp" || data["details"] == "" {
		t.Errorf("error body %v", obj)
	}
	if obj["fbtrace_id"] != resp.Header.Get("x-fb-trace-id") {
		t.Errorf("fbtrace_id %v differs from the header %q", obj["fbtrace_id"], resp.Header.Get("x-fb-trace-id"))
	}
	// Fresh per answer.
	_, body2 := e.raw(t, "tok", string(text(testTo)))
	if body2["error"].(map[string]any)["fbtrace_id"] == obj["fbtrace_id"] {
		t.Error("fbtrace_id repeated")
	}
}

func TestScriptedOverrides(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{{Respond: Response{
		Error: Code(131009), Status: 422, Message: "(#131009) Parameter value is not valid", Details: "to: bad", Title: "Bad", Subcode: -1,
	}}}}})
	_, err := e.send(t, "j", text(testTo))
	ae := apiError(t, err, 131009)
	if ae.HTTPStatus != 422 || ae.Details != "to: bad" || ae.UserTitle != "Bad" || ae.Title != "Bad" || ae.Subcode != 0 {
		t.Errorf("got %+v", ae)
	}
}

func TestTransportAnswers(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	cases := []struct {
		job    string
		resp   Response
		kind   graph.TransportKind
		status int
	}{
		{"html", Response{Kind: KindHTML}, graph.TransportNotJSON, 502},
		{"html-503", Response{Kind: KindHTML, Status: 503}, graph.TransportNotJSON, 503},
		{"cut", Response{Kind: KindCut}, graph.TransportCut, 200},
		{"huge", Response{Kind: KindHuge}, graph.TransportTooLarge, 200},
		{"huge-small", Response{Kind: KindHuge, Size: 2 << 20}, graph.TransportTooLarge, 200},
		{"nocode", Response{Kind: KindNoCode}, graph.TransportNoCode, 500},
		{"nocode-200", Response{Kind: KindNoCode, Status: 200}, graph.TransportNoCode, 200},
		{"raw-text", Response{Kind: KindRaw, Status: 504, Body: "upstream timed out", ContentType: "text/plain"}, graph.TransportNotJSON, 504},
		{"drop", Response{Kind: KindDrop}, graph.TransportConnect, 0},
	}
	for _, c := range cases {
		if _, err := e.sim.AddRules(Rule{Match: Match{JobID: c.job}, Times: 1, Respond: c.resp}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		t.Run(c.job, func(t *testing.T) {
			_, err := e.send(t, c.job, text(testTo))
			var te *graph.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("want a *graph.TransportError, got %T: %v", err, err)
			}
			if te.Kind != c.kind || te.HTTPStatus != c.status {
				t.Errorf("got kind %s status %d, want %s %d (%v)", te.Kind, te.HTTPStatus, c.kind, c.status, err)
			}
			// The server counts a send when its answer is written, which
			// for a huge answer the client cut short ends a little later.
			eventually(t, "the send to be counted", func() bool {
				js, _ := e.sim.Job(c.job)
				return js.Sends == 1
			})
			if js, _ := e.sim.Job(c.job); js.Accepted != 0 {
				t.Errorf("job %s counted %+v", c.job, js)
			}
		})
	}
}

func TestHangAndSlow(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{
		{Match: Match{JobID: "hang"}, Respond: Response{Kind: KindHang}},
		{Match: Match{JobID: "slow"}, Respond: Response{Kind: KindSlow, Delay: Duration(30 * time.Millisecond)}},
	}}})
	short, err := graph.New(graph.Options{BaseURL: e.ts.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = short.Send(context.Background(), graph.SendRequest{PhoneNumberID: testPhone, Token: "t", Message: text(testTo), JobID: "hang"})
	var te *graph.TransportError
	if !errors.As(err, &te) || te.Kind != graph.TransportTimeout {
		t.Fatalf("hang: want a timeout, got %v", err)
	}
	start := time.Now()
	res, err := e.send(t, "slow", text(testTo))
	if err != nil || res.WAMID == "" {
		t.Fatalf("slow: %v", err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("slow answered after %v, want at least 30ms", el)
	}
	eventually(t, "the hang to be counted", func() bool { return e.sim.Stats(false).ByOutcome["hang"] == 1 })
}

func TestCloseEndsHangingAnswers(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{{Respond: Response{Kind: KindHang}}}}})
	errc := make(chan error, 1)
	go func() {
		_, err := e.send(t, "hang", text(testTo))
		errc <- err
	}()
	eventually(t, "the request to arrive", func() bool {
		return e.sim.Stats(false).Rules[0].Matched == 1
	})
	e.sim.Close()
	select {
	case err := <-errc:
		var te *graph.TransportError
		if !errors.As(err, &te) || te.Kind != graph.TransportConnect {
			t.Errorf("want the connection dropped, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the hanging answer")
	}
}

func TestRulesCountDown(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{
		{Name: "flaky", Match: Match{To: "+1 555 123 4567"}, Times: 3, Respond: Response{Error: Code(131000)}},
		{Name: "tmpl", Match: Match{Template: "promo", PhoneNumberID: testPhone}, Respond: Response{Error: Code(132015)}},
		{Name: "other-number", Match: Match{PhoneNumberID: "999"}, Respond: Response{Error: Code(131031)}},
		{Name: "images", Match: Match{Type: "image"}, Times: 1, Respond: Response{Error: Code(131053)}},
	}}})
	for i := range 3 {
		_, err := e.send(t, fmt.Sprintf("j%d", i), text(testTo))
		apiError(t, err, 131000)
	}
	if _, err := e.send(t, "j3", text(testTo)); err != nil {
		t.Fatalf("the fourth send: %v", err)
	}
	if _, err := e.send(t, "other", text("15550001111")); err != nil {
		t.Fatalf("another recipient: %v", err)
	}
	for range 2 {
		_, err := e.send(t, "t", tmpl("15550001111", "promo", "en_US", 0))
		apiError(t, err, 132015)
	}
	_, err := e.sendFrom(t, "999", "x", text(testTo))
	apiError(t, err, 131031)
	img := []byte(`{"messaging_product":"whatsapp","to":"15550001111","type":"image","image":{"link":"https://example.com/a.png"}}`)
	_, err = e.send(t, "img", img)
	apiError(t, err, 131053)
	if _, err := e.send(t, "img2", img); err != nil {
		t.Fatalf("the second image: %v", err)
	}

	rules := map[string]RuleStats{}
	for _, r := range e.sim.Stats(false).Rules {
		rules[r.Name] = r
	}
	if r := rules["flaky"]; r.Matched != 3 || r.Remaining != 0 {
		t.Errorf("flaky: %+v", r)
	}
	if r := rules["tmpl"]; r.Matched != 2 || r.Remaining != -1 {
		t.Errorf("tmpl: %+v", r)
	}
	sends := e.sim.Sends(0)
	if len(sends) != 10 || sends[0].Rule != "flaky" || sends[3].Rule != "" || sends[0].Outcome != "error" || *sends[0].Code != 131000 {
		t.Errorf("sends log: %+v", sends)
	}
}

func TestRandomFailures(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Random: []RandomFailure{
		{Rate: 0.3, Respond: Response{Error: Code(131000)}},
		{Rate: 1, PhoneNumberID: "42", Respond: Response{Error: Code(130429)}},
	}}})
	const n = 2000
	for i := range n {
		_, _ = e.send(t, strconv.Itoa(i), text(testTo))
	}
	st := e.sim.Stats(false)
	failed := st.ByCode[131000]
	// 30% of 2000 is 600; 5 standard deviations is about 100.
	if failed < 500 || failed > 700 {
		t.Errorf("%d of %d failed, want about 600", failed, n)
	}
	if st.ByCode[130429] != 0 {
		t.Errorf("another number's failure leaked: %v", st.ByCode)
	}
	// For number 42 the shares add up: 30% 131000, the rest 130429.
	for i := range 200 {
		_, err := e.sendFrom(t, "42", "x"+strconv.Itoa(i), text(testTo))
		if err == nil {
			t.Fatal("a send of number 42 was accepted")
		}
	}
}

func TestBodyValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	cases := []struct{ name, body, msg string }{
		{"not json", `{"messaging_product":`, "(#100) Invalid parameter"},
		{"array", `[1,2]`, "(#100) Invalid parameter"},
		{"no product", `{"to":"15551234567","type":"text","text":{"body":"x"}}`, "(#100) The parameter messaging_product is required."},
		{"wrong product", `{"messaging_product":"sms","to":"15551234567","text":{"body":"x"}}`, `(#100) Param messaging_product must be one of {WHATSAPP} - got "sms".`},
		{"no to", `{"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}`, "(#100) The parameter to is required."},
		{"bad to", `{"messaging_product":"whatsapp","to":"call me","text":{"body":"x"}}`, "(#100) Invalid parameter"},
		{"unknown type", `{"messaging_product":"whatsapp","to":"15551234567","type":"fax"}`, "(#100) Param type must be one of"},
		{"text without body", `{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{}}`, "(#100) The parameter text['body'] is required."},
		{"template without name", `{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"language":{"code":"en_US"}}}`, "(#100) The parameter template['name'] is required."},
		{"template without language", `{"messaging_product":"whatsapp","to":"15551234567","type":"template","template":{"name":"x"}}`, "(#100) The parameter template['language'] is required."},
		{"image without image", `{"messaging_product":"whatsapp","to":"15551234567","type":"image"}`, "(#100) The parameter image is required."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.send(t, "", []byte(c.body))
			ae := apiError(t, err, 100)
			if ae.HTTPStatus != 400 || !strings.HasPrefix(ae.Message, c.msg) || ae.Details == "" {
				t.Errorf("got %+v", ae)
			}
		})
	}
	// Meta's default type is text.
	if _, err := e.send(t, "", []byte(`{"messaging_product":"whatsapp","to":"15551234567","text":{"body":"x"}}`)); err != nil {
		t.Errorf("a message without type: %v", err)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	clock := newClock()
	expiry := clock.Now().Add(time.Hour)
	e := setup(t, Config{Now: clock.Now, Tokens: []string{"good"}, Scenario: &Scenario{
		Tokens: []Token{{Token: "expiring", ExpiresAt: &expiry}},
	}})
	send := func(tok string) error {
		_, err := e.graph.Send(context.Background(), graph.SendRequest{PhoneNumberID: testPhone, Token: tok, Message: text(testTo)})
		return err
	}
	if err := send("good"); err != nil {
		t.Fatal(err)
	}
	ae := apiError(t, send("forged"), 190)
	if ae.HTTPStatus != 401 || ae.Subcode != 0 || ae.Message != "Invalid OAuth access token - Cannot parse access token" {
		t.Errorf("forged: %+v", ae)
	}
	ae = apiError(t, send(""), 104)
	if ae.HTTPStatus != 400 {
		t.Errorf("no token: %+v", ae)
	}
	if err := send("expiring"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	clock.Add(time.Hour)
	ae = apiError(t, send("expiring"), 190)
	if ae.HTTPStatus != 401 || ae.Subcode != 463 || !strings.HasPrefix(ae.Message, "Error validating access token: Session has expired on") {
		t.Errorf("expired: %+v", ae)
	}
	// Made valid again over the control API, then revoked.
	if err := e.ctl.SetToken(context.Background(), TokenUpdate{Token: "expiring"}); err != nil {
		t.Fatal(err)
	}
	if err := send("expiring"); err != nil {
		t.Fatalf("renewed: %v", err)
	}
	if err := e.ctl.SetToken(context.Background(), TokenUpdate{Token: "good", Revoked: true}); err != nil {
		t.Fatal(err)
	}
	ae = apiError(t, send("good"), 190)
	if ae.Subcode != 460 {
		t.Errorf("revoked: %+v", ae)
	}
	if st := e.sim.Stats(false); st.ByCode[190] != 3 || st.ByHTTPStatus[401] != 3 {
		t.Errorf("stats: %+v", st.ByCode)
	}
}

func TestAnyTokenWithoutList(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	if _, err := e.graph.Send(context.Background(), graph.SendRequest{PhoneNumberID: testPhone, Token: "whatever", Message: text(testTo)}); err != nil {
		t.Fatal(err)
	}
	// A scripted 190 answers like an expired token.
	if _, err := e.sim.AddRules(Rule{Respond: Response{Error: Code(190)}}); err != nil {
		t.Fatal(err)
	}
	ae := apiError(t, func() error { _, err := e.send(t, "", text(testTo)); return err }(), 190)
	if ae.HTTPStatus != 401 || ae.Subcode != 463 || !strings.Contains(ae.Message, "Session has expired") {
		t.Errorf("scripted 190: %+v", ae)
	}
}

func TestDuplicatesCounted(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Rules: []Rule{{Match: Match{JobID: "retry-me"}, Times: 1, Respond: Response{Error: Code(131000)}}}}})
	for _, job := range []string{"a", "a", "b", "retry-me", "retry-me", "c", "c", "c"} {
		_, _ = e.send(t, job, text(testTo))
	}
	// Without a job id, the body's hash is the job.
	for range 2 {
		if _, err := e.send(t, "", text("15550009999")); err != nil {
			t.Fatal(err)
		}
	}
	st := e.sim.Stats(false)
	if st.Requests != 10 || st.Accepted != 9 || st.Jobs != 5 || st.AcceptedJobs != 5 {
		t.Errorf("requests %d accepted %d jobs %d accepted jobs %d", st.Requests, st.Accepted, st.Jobs, st.AcceptedJobs)
	}
	if st.Duplicates != 3 || st.DuplicateSends != 4 {
		t.Errorf("duplicates %d, duplicate sends %d; want 3 and 4", st.Duplicates, st.DuplicateSends)
	}
	if st.DuplicateJobs["a"] != 2 || st.DuplicateJobs["c"] != 3 || st.DuplicateJobs["b"] != 0 || st.DuplicateJobs["retry-me"] != 0 {
		t.Errorf("duplicate jobs %v", st.DuplicateJobs)
	}
	js, ok := e.sim.Job("retry-me")
	if !ok || js.Sends != 2 || js.Accepted != 1 || len(js.WAMIDs) != 1 || strings.Join(js.Outcomes, ",") != "error,accepted" {
		t.Errorf("job retry-me: %+v", js)
	}
	if ph := st.ByPhoneNumber[testPhone]; ph.Requests != 10 || ph.Accepted != 9 || ph.Failed != 1 {
		t.Errorf("per number: %+v", ph)
	}
	if st.ByOutcome["accepted"] != 9 || st.ByOutcome["error"] != 1 || st.ByHTTPStatus[200] != 9 || st.ByHTTPStatus[500] != 1 {
		t.Errorf("by outcome %v, by status %v", st.ByOutcome, st.ByHTTPStatus)
	}
	all := e.sim.Stats(true)
	if all.AcceptedPerJob["b"] != 1 || len(all.AcceptedPerJob) != 5 {
		t.Errorf("accepted per job %v", all.AcceptedPerJob)
	}
}

func TestSendsLogIsBounded(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{SendsLog: 5})
	for i := range 12 {
		_, _ = e.send(t, strconv.Itoa(i), text(testTo))
	}
	s := e.sim.Sends(0)
	if len(s) != 5 || s[0].JobID != "7" || s[4].JobID != "11" || s[4].Seq != 12 {
		t.Errorf("sends %+v", s)
	}
	if s := e.sim.Sends(2); len(s) != 2 || s[1].JobID != "11" {
		t.Errorf("last 2: %+v", s)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	for _, c := range []struct {
		method, path string
		code, sub    int
	}{
		{http.MethodGet, "/v27.0/" + testPhone + "/messages", 100, 33},
		{http.MethodPost, "/nonsense/x/messages", 2500, 0},
		{http.MethodPost, "/v27.0/" + testPhone + "/photos", 2500, 0},
		{http.MethodDelete, "/v27.0/" + testPhone, 100, 33},
	} {
		req, _ := http.NewRequest(c.method, e.ts.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer t")
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s %s: status %d", c.method, c.path, resp.StatusCode)
		}
	}
	// Through the client, an unknown object is code 100 subcode 33.
	err := e.graph.Get(context.Background(), testPhone+"/messages", nil, "t", nil)
	ae := apiError(t, err, 100)
	if ae.Subcode != 33 || ae.Type != "GraphMethodException" {
		t.Errorf("got %+v", ae)
	}
}

func TestCountParameters(t *testing.T) {
	t.Parallel()
	cases := map[string]int{
		`[]`: 0, ` [ ] `: 0, `null`: 0, `[1]`: 1, `[{"type":"text","text":"a,b"}]`: 1,
		`[{"type":"text","text":"x"},{"type":"currency","currency":{"code":"USD","amount_1000":1}}]`: 2,
		`["a\"],[", [1,2], {"k":[3,4]}]`: 3,
	}
	for in, want := range cases {
		var c count
		if err := c.UnmarshalJSON([]byte(strings.TrimSpace(in))); err != nil || int(c) != want {
			t.Errorf("%s: got %d, %v; want %d", in, c, err, want)
		}
	}
	var c count
	if err := c.UnmarshalJSON([]byte(`{"a":1}`)); err == nil {
		t.Error("an object counted as parameters")
	}
}

// Meta's text limit is 4,096 characters, not bytes.
func TestTextLimitInCharacters(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{})
	body := func(n int) string {
		return `{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"` + strings.Repeat("é", n) + `"}}`
	}
	if status, out := e.post(t, "messages", body(4096)); status != 200 {
		t.Errorf("4,096 characters (8,192 bytes): %d %v", status, out)
	}
	status, out := e.post(t, "messages", body(4097))
	graphErr(t, status, out, 400, 100, "must be at most 4096 characters long")
}
