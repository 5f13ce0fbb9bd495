package fakegraph

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFastAccepts(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []Send
	// The lean mode makes no scenario decisions: neither this rule nor the
	// limit of one send a second applies.
	e := setup(t, Config{Fast: true, OnSend: func(s Send) { mu.Lock(); seen = append(seen, s); mu.Unlock() },
		Scenario: &Scenario{Rules: []Rule{{Respond: Response{Error: Code(131000)}}},
			Limits: Limits{Throughput: Throughput{Enabled: true, Strict: true, MPS: 1}}}})
	body := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"+1 (555) 123-4567","type":"template",` +
		`"template":{"name":"order_update","language":{"code":"en_US"},"components":[{"type":"body","parameters":[{"type":"text","text":"\\"to\\":\\"1\\""}]}]}}`
	resp, out := e.raw(t, "tok", body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=UTF-8" || resp.ContentLength <= 0 {
		t.Fatalf("status %d, content type %q, length %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
	b, _ := json.Marshal(out)
	var got struct {
		MessagingProduct string `json:"messaging_product"`
		Contacts         []struct {
			Input string `json:"input"`
			WaID  string `json:"wa_id"`
		}
		Messages []struct {
			ID            string `json:"id"`
			MessageStatus string `json:"message_status"`
		}
	}
	_ = json.Unmarshal(b, &got)
	if got.MessagingProduct != "whatsapp" || len(got.Contacts) != 1 || got.Contacts[0].Input != "+1 (555) 123-4567" ||
		got.Contacts[0].WaID != "15551234567" || len(got.Messages) != 1 || !strings.HasPrefix(got.Messages[0].ID, "wamid.HBg") ||
		got.Messages[0].MessageStatus != "accepted" {
		t.Fatalf("answer %s", b)
	}
	// Through the project's client, twice for one job: counted as a
	// duplicate, and OnSend sees both.
	for range 2 {
		res, err := e.send(t, "job-1", text(testTo))
		if err != nil || !strings.HasPrefix(res.WAMID, "wamid.") {
			t.Fatalf("send: %v %+v", err, res)
		}
	}
	st := e.sim.Stats(false)
	if st.Requests != 3 || st.Accepted != 3 || st.Duplicates != 1 || st.DuplicateSends != 1 || st.ByHTTPStatus[200] != 3 {
		t.Errorf("stats %+v", st)
	}
	if js, ok := e.sim.Job("job-1"); !ok || js.Accepted != 2 {
		t.Errorf("job-1: %+v %v", js, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[1].JobID != "job-1" || seen[1].To != testTo || seen[1].Outcome != OutcomeAccepted ||
		!strings.HasPrefix(seen[1].WAMID, "wamid.") || seen[1].WAMID == seen[2].WAMID || seen[1].Time.IsZero() {
		t.Errorf("OnSend saw %+v", seen)
	}
}

// What the lean path cannot accept gets the full checks' answer.
func TestFastFallsBackToMetaErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Fast: true, Tokens: []string{"good"}, MaxBody: 4096,
		Scenario: &Scenario{PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone}}}})
	ok := `{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`
	for _, c := range []struct {
		name, token, body string
		status, code      int
		msg               string
	}{
		{"no token", "", ok, 400, 104, "access token is required"},
		{"wrong token", "bad", ok, 401, 190, ""},
		{"not json", "good", `not json`, 400, 100, "not a valid JSON object"},
		{"no to", "good", `{"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}`, 400, 100, "to is required"},
		{"to only nested", "good", `{"messaging_product":"whatsapp","text":{"to":"15551234567","body":"hi"}}`, 400, 100, "to is required"},
		{"to a number", "good", `{"messaging_product":"whatsapp","to":15551234567,"text":{"body":"hi"}}`, 400, 100, "not a valid JSON object"},
		{"to not a phone", "good", `{"messaging_product":"whatsapp","to":"abc","text":{"body":"hi"}}`, 400, 100, "phone number"},
		{"cut body", "good", `{"messaging_product":"whatsapp","to":"15551234567"`, 400, 100, "not a valid JSON object"},
		{"trailing garbage", "good", ok + `x`, 400, 100, "not a valid JSON object"},
		{"too large", "good", `{"to":"15551234567","text":{"body":"` + strings.Repeat("a", 5000) + `"}}`, 400, 100, "too large"},
	} {
		resp, out := e.raw(t, c.token, c.body)
		eo, _ := out["error"].(map[string]any)
		code, _ := eo["code"].(float64)
		b, _ := json.Marshal(out)
		if resp.StatusCode != c.status || int(code) != c.code || !strings.Contains(string(b), c.msg) || eo["fbtrace_id"] == nil {
			t.Errorf("%s: status %d, body %s; want %d, code %d with %q", c.name, resp.StatusCode, b, c.status, c.code, c.msg)
		}
	}
	// An unknown number.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v27.0/999/messages", strings.NewReader(ok))
	req.Header.Set("Authorization", "Bearer good")
	r, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var unknown struct {
		Error struct {
			ErrorSubcode int `json:"error_subcode"`
		}
	}
	_ = json.NewDecoder(r.Body).Decode(&unknown)
	r.Body.Close()
	if r.StatusCode != 400 || unknown.Error.ErrorSubcode != 33 {
		t.Errorf("unknown number: %d %+v", r.StatusCode, unknown)
	}
	// A "to" written with an escape is valid JSON: the full checks accept it.
	resp, out := e.raw(t, "good", `{"messaging_product":"whatsapp","to":"1555\u0031234567","text":{"body":"hi"}}`)
	if resp.StatusCode != 200 || out["messages"] == nil {
		t.Errorf("escaped to: %d %v", resp.StatusCode, out)
	}
	if st := e.sim.Stats(false); st.Requests != 12 || st.Accepted != 1 {
		t.Errorf("stats: %d requests, %d accepted; want 12, 1", st.Requests, st.Accepted)
	}
}

// Rules added while the lean mode runs are answered, until cleared.
func TestFastAnswersRules(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Fast: true, Tokens: []string{"good"}, Scenario: &Scenario{PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone}}}})
	ok := `{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`
	if _, err := e.sim.AddRules(Rule{Respond: Response{Error: Code(131026)}}); err != nil {
		t.Fatal(err)
	}
	resp, out := e.raw(t, "good", ok)
	eo, _ := out["error"].(map[string]any)
	if code, _ := eo["code"].(float64); resp.StatusCode != 400 || code != 131026 {
		t.Errorf("with a rule: status %d, %v; want 400, 131026", resp.StatusCode, out)
	}
	e.sim.ClearRules()
	if resp, out := e.raw(t, "good", ok); resp.StatusCode != 200 || out["messages"] == nil {
		t.Errorf("rules cleared: status %d, %v; want 200 and a wamid", resp.StatusCode, out)
	}
}

func TestFastKeepsLatency(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Fast: true, Scenario: &Scenario{Latency: Latency{Base: Duration(60 * time.Millisecond)}}})
	start := time.Now()
	if _, err := e.send(t, "j", text(testTo)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("answered after %v, want at least the scenario's 60ms", d)
	}
}

// Routes other than the messages endpoint keep their normal answers.
func TestFastOtherRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Fast: true})
	if st := e.getStatus(t, "/v27.0/"+testPhone+"/messages"); st != 400 {
		t.Errorf("GET messages: %d, want 400", st)
	}
	if st := e.getStatus(t, "/v27.0/"+testPhone+"?fields=status"); st != 200 {
		t.Errorf("GET phone number: %d, want 200", st)
	}
}

func TestTopLevelString(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`{"to":"1"}`, "1", true},
		{" \n{ \"a\" : [1,{\"to\":\"x\"}], \"to\" :\t\"2\" } \n", "2", true},
		{`{"to":"1","to":"2"}`, "2", true},
		{`{"a":"}","b":{"c":"]"},"to":"3"}`, "3", true},
		{`{"a":true,"b":null,"c":-1.5e3,"to":"4"}`, "4", true},
		{`{}`, "", false},
		{`[]`, "", false},
		{``, "", false},
		{`{"to":"1"`, "", false},
		{`{"to":"1"}x`, "", false},
		{`{"to":1}`, "", false},
		{`{"to":"a\"b"}`, "", false},
		{`{"t\u006f":"1"}`, "", false},
		{`{"a":{"to":"1"}}`, "", false},
		{`{"to":"1",}`, "", false},
		{`{"to" "1"}`, "", false},
		{`{"a":[1,2}`, "", false},
	} {
		got, ok := topLevelString([]byte(c.in), "to")
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %q %v, want %q %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzTopLevelString: on valid JSON, what the scanner finds is what
// encoding/json decodes.
func FuzzTopLevelString(f *testing.F) {
	for _, s := range []string{`{"to":"1"}`, `{"a":[{"to":"x"}],"to":"2"}`, `{"to":"1","to":"2"}`, `{"to":"\u0031"}`, `{"a":"\"to\":\"9\""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := topLevelString([]byte(in), "to")
		if !json.Valid([]byte(in)) {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &m); err != nil {
			if ok {
				t.Fatalf("%q: found %q in what is not an object", in, got)
			}
			return
		}
		var want string
		// The scanner leaves values that need decoding to the full checks.
		plain := !strings.ContainsFunc(string(m["to"]), func(r rune) bool { return r == '\\' || r >= 0x80 })
		wantOK := m["to"] != nil && json.Unmarshal(m["to"], &want) == nil && plain
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("%q: %q %v, encoding/json %q %v", in, got, ok, want, wantOK)
		}
	})
}
