package fakegraph

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// post sends body to an edge of testPhone (messages, marketing_messages)
// and returns the status and the decoded answer.
func (e *env) post(t *testing.T, edge, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v27.0/"+testPhone+"/"+edge, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// getStatus GETs path with a token and returns the HTTP status.
func (e *env) getStatus(t *testing.T, path string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sendAnswer is a success answer of /messages or /marketing_messages.
type sendAnswer struct {
	MessagingProduct string `json:"messaging_product"`
	Contacts         []struct {
		Input  string  `json:"input"`
		WaID   *string `json:"wa_id"`
		UserID *string `json:"user_id"`
	} `json:"contacts"`
	Messages []struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status"`
	} `json:"messages"`
}

func decodeAnswer(t *testing.T, out map[string]any) sendAnswer {
	t.Helper()
	b, _ := json.Marshal(out)
	var a sendAnswer
	if err := json.Unmarshal(b, &a); err != nil || a.MessagingProduct != "whatsapp" || len(a.Contacts) != 1 || len(a.Messages) != 1 ||
		!strings.HasPrefix(a.Messages[0].ID, "wamid.") {
		t.Fatalf("not a send answer: %s", b)
	}
	return a
}

// graphErr returns the error object of an answer, checking Meta's shape.
func graphErr(t *testing.T, status int, out map[string]any, wantStatus, wantCode int, wantText string) map[string]any {
	t.Helper()
	eo, _ := out["error"].(map[string]any)
	b, _ := json.Marshal(out)
	if status != wantStatus || eo == nil || eo["code"] != float64(wantCode) || eo["fbtrace_id"] == nil || eo["type"] != "OAuthException" ||
		!strings.Contains(string(b), wantText) {
		t.Fatalf("got %d %s; want %d, code %d with %q", status, b, wantStatus, wantCode, wantText)
	}
	return eo
}

const marketingBody = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"15551234567","type":"template",` +
	`"template":{"name":"promo","language":{"code":"en_US"}},"product_policy":"STRICT","message_activity_sharing":true}`

func TestMarketingMessages(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{
		Templates: []Template{{Name: "promo", Language: "en_US", Category: "MARKETING"}, {Name: "receipt", Language: "en_US", Category: "UTILITY"}},
		Rules: []Rule{
			{Name: "held", Match: Match{API: APIMarketingMessages, To: "15550000001"}, Respond: Response{MessageStatus: StatusHeld}},
			{Name: "paused", Match: Match{To: "15550000002"}, Respond: Response{MessageStatus: StatusPaused}},
		},
	}})
	status, out := e.post(t, APIMarketingMessages, marketingBody)
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	a := decodeAnswer(t, out)
	if a.Contacts[0].Input != testTo || a.Contacts[0].WaID == nil || *a.Contacts[0].WaID != testTo || a.Messages[0].MessageStatus != StatusAccepted {
		t.Errorf("answer %+v", a)
	}
	// Without product_policy (Meta's default CLOUD_API_FALLBACK) too.
	status, out = e.post(t, APIMarketingMessages, strings.Replace(marketingBody, `,"product_policy":"STRICT"`, "", 1))
	if status != 200 {
		t.Fatalf("without product_policy: %d %v", status, out)
	}
	// A scenario holds one recipient's marketing sends for quality
	// assessment; the same send on /messages is not matched by that rule.
	held := strings.Replace(marketingBody, testTo, "15550000001", 1)
	if _, out = e.post(t, APIMarketingMessages, held); decodeAnswer(t, out).Messages[0].MessageStatus != StatusHeld {
		t.Errorf("held: %v", out)
	}
	if _, out = e.post(t, "messages", held); decodeAnswer(t, out).Messages[0].MessageStatus != StatusAccepted {
		t.Errorf("the marketing rule answered /messages: %v", out)
	}
	// message_status on /messages answers, as Meta allows.
	paused := `{"messaging_product":"whatsapp","to":"15550000002","type":"text","text":{"body":"hi"}}`
	if _, out = e.post(t, "messages", paused); decodeAnswer(t, out).Messages[0].MessageStatus != StatusPaused {
		t.Errorf("paused: %v", out)
	}
	var apis, statuses []string
	for _, s := range e.sim.Sends(0) {
		apis, statuses = append(apis, s.API), append(statuses, s.MessageStatus)
	}
	if strings.Join(apis, ",") != "marketing_messages,marketing_messages,marketing_messages,messages,messages" ||
		strings.Join(statuses, ",") != "accepted,accepted,held_for_quality_assessment,accepted,paused" {
		t.Errorf("sends log: %v %v", apis, statuses)
	}
}

func TestMarketingMessagesBadBodies(t *testing.T) {
	t.Parallel()
	e := setup(t, Config{Scenario: &Scenario{Templates: []Template{
		{Name: "promo", Language: "en_US", Category: "MARKETING"}, {Name: "receipt", Language: "en_US", Category: "UTILITY"}}}})
	for _, c := range []struct{ name, body, want string }{
		{"text", `{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`, "Message must be a template message"},
		{"no type", `{"messaging_product":"whatsapp","to":"15551234567","text":{"body":"hi"}}`, "Message must be a template message"},
		{"bad policy", strings.Replace(marketingBody, "STRICT", "LOOSE", 1), `product_policy must be one of {CLOUD_API_FALLBACK, STRICT} - got \"LOOSE\"`},
		{"lower-case policy", strings.Replace(marketingBody, "STRICT", "strict", 1), "product_policy must be one of"},
		{"utility template", strings.Replace(marketingBody, "promo", "receipt", 1), "UTILITY template: the Marketing Messages API sends marketing templates only"},
		{"missing template", strings.Replace(marketingBody, "promo", "nosuch", 1), "does not exist"},
		{"no recipient", `{"messaging_product":"whatsapp","type":"template","template":{"name":"promo","language":{"code":"en_US"}}}`, "to is required"},
		{"not json", `{`, "not a valid JSON object"},
	} {
		status, out := e.post(t, APIMarketingMessages, c.body)
		code, want := 100, 400
		if c.name == "missing template" {
			code, want = 132001, 404
		}
		t.Run(c.name, func(t *testing.T) { graphErr(t, status, out, want, code, c.want) })
	}
	// Only POST.
	if st := e.getStatus(t, "/v27.0/"+testPhone+"/marketing_messages"); st != 400 {
		t.Errorf("GET marketing_messages: %d", st)
	}
	// product_policy on /messages is not the Marketing Messages API's
	// business: ignored there.
	if status, out := e.post(t, "messages", strings.Replace(marketingBody, "STRICT", "LOOSE", 1)); status != 200 {
		t.Errorf("/messages with product_policy: %d %v", status, out)
	}
}

func TestMarketingScenarioErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"rules:\n  - respond: {message_status: delivered}\n", `message_status "delivered"`},
		{"rules:\n  - respond: {error: 131000, message_status: paused}\n", "message_status needs an accepted send"},
		{"rules:\n  - match: {api: sms}\n    respond: {error: 131000}\n", `api "sms"`},
		{"phone_numbers:\n  - phone_number_id: \"1\"\n    allowed_recipients: [\"abc\"]\n", `allowed recipient "abc"`},
	} {
		if _, err := DecodeScenario(strings.NewReader(c.in), "s.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
	e := setup(t, Config{})
	if _, err := e.sim.AddRules(Rule{Match: Match{API: "sms"}, Respond: Response{}}); err == nil {
		t.Error("AddRules took a rule for api sms")
	}
}
