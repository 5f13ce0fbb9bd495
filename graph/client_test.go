package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const secretToken = "EAAG-secret-token-do-not-log"

func newClient(t *testing.T, url string, opts ...func(*Options)) *Client {
	t.Helper()
	o := Options{BaseURL: url, Timeout: 2 * time.Second, MaxBody: 4096}
	for _, f := range opts {
		f(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func send(t *testing.T, c *Client) (*SendResult, error) {
	t.Helper()
	return c.Send(context.Background(), SendRequest{
		PhoneNumberID: "106540352242922", Token: secretToken, JobID: "job-1",
		Message: []byte(`{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`),
	})
}

func TestSendSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v27.0/106540352242922/messages" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if r.Header.Get("Authorization") != "Bearer "+secretToken || r.Header.Get("X-Waq-Job-Id") != "job-1" {
			t.Errorf("headers %v", r.Header)
		}
		w.Header().Set("x-fb-trace-id", "TRACE1")
		w.Header().Set("X-Business-Use-Case-Usage", `{"102290129340398":[{"type":"whatsapp_business_management","call_count":3,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}`)
		fmt.Fprint(w, `{"messaging_product":"whatsapp","contacts":[{"input":"15551234567","wa_id":"15551234567"}],"messages":[{"id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI","message_status":"accepted"}]}`)
	}))
	defer srv.Close()
	res, err := send(t, newClient(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if res.WAMID != "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI" || res.MessageStatus != "accepted" || res.WAID != "15551234567" || res.FBTraceID != "TRACE1" {
		t.Errorf("result = %+v", res)
	}
	if res.Usage == nil || res.Usage.Business["102290129340398"][0].CallCount != 3 {
		t.Errorf("usage = %+v", res.Usage)
	}
}

func TestSendAPIError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-App-Usage", `{"call_count":99,"total_time":10,"total_cputime":5}`)
		w.Header().Set("X-Business-Use-Case-Usage", `{"1":[{"type":"whatsapp_business_messaging","call_count":100,"estimated_time_to_regain_access":7}]}`)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_subcode":2494010,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"error_user_title":"Outside window","error_user_msg":"Send a template","fbtrace_id":"AbCd123"}}`)
	}))
	defer srv.Close()
	_, err := send(t, newClient(t, srv.URL))
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v", err, err)
	}
	if ae.HTTPStatus != 400 || ae.Code != 131047 || ae.Subcode != 2494010 || ae.Type != "OAuthException" ||
		!strings.Contains(ae.Details, "24 hours") || ae.FBTraceID != "AbCd123" || ae.Title != "Outside window" || ae.UserMsg != "Send a template" {
		t.Errorf("api error = %+v", ae)
	}
	if ae.Usage == nil || ae.Usage.App.CallCount != 99 || ae.Usage.RegainAccessIn() != 7*time.Minute {
		t.Errorf("usage = %+v", ae.Usage)
	}
	f, ok := Classify(err)
	if !ok || !f.HasCode || f.Code != 131047 || f.Transport || f.FBTraceID != "AbCd123" {
		t.Errorf("failure = %+v", f)
	}
}

// TestCodeZero: Meta's code 0 (AuthException) is a code, not "no code".
func TestCodeZero(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":{"message":"(#0) AuthException","type":"OAuthException","code":0,"fbtrace_id":"Z"}}`)
	}))
	defer srv.Close()
	_, err := send(t, newClient(t, srv.URL))
	f, ok := Classify(err)
	if !ok || !f.HasCode || f.Code != 0 || f.String() != "0" {
		t.Errorf("failure = %+v (%v)", f, err)
	}
}

func TestSendTransportErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		kind    TransportKind
		status  int
	}{
		{"html page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}, TransportNotJSON, 502},
		{"empty 200", func(w http.ResponseWriter, r *http.Request) {}, TransportNotJSON, 200},
		{"cut json", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"messaging_product":"whatsapp","messages":[{"id":"wam`)
		}, TransportCut, 200},
		{"cut connection", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "500")
			fmt.Fprint(w, `{"messaging_product":"whatsapp"`)
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, TransportCut, 200},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"x":"`+strings.Repeat("a", 10000)+`"}`)
		}, TransportTooLarge, 200},
		{"error without code", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":{"message":"oops"}}`)
		}, TransportNoCode, 500},
		{"5xx json without error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			fmt.Fprint(w, `{}`)
		}, TransportNoCode, 503},
		{"200 without wamid", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"messaging_product":"whatsapp","messages":[]}`)
		}, TransportNoCode, 200},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}, TransportTimeout, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := newClient(t, srv.URL, func(o *Options) { o.Timeout = 300 * time.Millisecond })
			res, err := send(t, c)
			var te *TransportError
			if !errors.As(err, &te) {
				t.Fatalf("Send = %+v, %v; want a transport error", res, err)
			}
			if te.Kind != tt.kind || te.HTTPStatus != tt.status {
				t.Errorf("kind %s status %d, want %s %d (%v)", te.Kind, te.HTTPStatus, tt.kind, tt.status, err)
			}
			if f, ok := Classify(err); !ok || !f.Transport {
				t.Errorf("Classify = %+v %v", f, ok)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestSendRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = send(t, newClient(t, "http://"+addr))
	var te *TransportError
	if !errors.As(err, &te) || te.Kind != TransportConnect {
		t.Fatalf("err = %v", err)
	}
}

func TestSendCallerCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Send(ctx, SendRequest{PhoneNumberID: "1", Token: "t", Message: []byte(`{}`)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := Classify(err); ok {
		t.Error("a cancelled send was classified as an attempt")
	}
}

// TestGetRedactsQuery: debug_token takes the token as a query value; it
// must not reach an error message.
func TestGetRedactsQuery(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr)
	err := c.Get(context.Background(), "debug_token", url.Values{"input_token": {secretToken}}, secretToken, nil)
	if err == nil || strings.Contains(err.Error(), secretToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestGetDecodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fields") != "status,quality_rating" {
			t.Errorf("query = %v", r.URL.RawQuery)
		}
		fmt.Fprint(w, `{"status":"CONNECTED","quality_rating":"GREEN","id":"1"}`)
	}))
	defer srv.Close()
	var out struct {
		Status  string `json:"status"`
		Quality string `json:"quality_rating"`
	}
	err := newClient(t, srv.URL).Get(context.Background(), "/1", url.Values{"fields": {"status,quality_rating"}}, "t", &out)
	if err != nil || out.Status != "CONNECTED" || out.Quality != "GREEN" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, o := range []Options{{BaseURL: "ftp://x"}, {BaseURL: "graph.facebook.com"}, {Version: "25"}, {Version: "v25"}, {Version: "vx.0"}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestParseUsageIgnoresGarbage(t *testing.T) {
	h := http.Header{}
	h.Set("X-App-Usage", "not json")
	if u := ParseUsage(h); u != nil {
		t.Errorf("usage = %+v", u)
	}
	if (*Usage)(nil).RegainAccessIn() != 0 {
		t.Error("nil usage has a regain time")
	}
}

// FuzzDecodeAnswer: whatever Meta (or a proxy in front of it) answers, the
// parser returns a success, an *APIError or a *TransportError, never panics.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add(200, []byte(`{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],"messages":[{"id":"wamid.X"}]}`))
	f.Add(400, []byte(`{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"details":"x"},"fbtrace_id":"A"}}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Add(200, []byte(`{"messages":[{"id":`))
	f.Add(500, []byte(`{"error":{"code":"x"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var ans sendAnswer
		err := decodeAnswer(status, http.Header{}, body, &ans)
		if err == nil {
			if status < 200 || status > 299 {
				t.Fatalf("status %d accepted as success", status)
			}
			return
		}
		var ae *APIError
		var te *TransportError
		if !errors.As(err, &ae) && !errors.As(err, &te) {
			t.Fatalf("error of type %T", err)
		}
		if _, ok := Classify(err); !ok {
			t.Fatal("not classified")
		}
	})
}

// TestH2C: with H2C the client speaks HTTP/2 to an http:// server that
// offers it (the simulator), many sends over one connection.
func TestH2C(t *testing.T) {
	var proto atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		fmt.Fprint(w, `{"messages":[{"id":"wamid.H2"}]}`)
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	defer srv.Close()
	res, err := send(t, newClient(t, srv.URL, func(o *Options) { o.H2C = true }))
	if err != nil || res.WAMID != "wamid.H2" || proto.Load() != 2 {
		t.Fatalf("h2c: %+v %v, protocol %d", res, err, proto.Load())
	}
	if _, err := New(Options{BaseURL: "https://graph.facebook.com", H2C: true}); err == nil {
		t.Error("h2c accepted for an https URL")
	}
}

func TestSendEdgeAndUserID(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		fmt.Fprint(w, `{"messaging_product":"whatsapp","contacts":[{"input":"US.13491208655302741918","user_id":"US.13491208655302741918"}],"messages":[{"id":"wamid.B","message_status":"held_for_quality_assessment"}]}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	msg := []byte(`{"messaging_product":"whatsapp","recipient":"US.13491208655302741918","type":"template","template":{"name":"promo","language":{"code":"en"}},"product_policy":"STRICT"}`)
	for _, edge := range []string{"", EdgeMessages, EdgeMarketingMessages} {
		res, err := c.Send(context.Background(), SendRequest{PhoneNumberID: "106540352242922", Token: secretToken, Message: msg, Edge: edge})
		if err != nil {
			t.Fatal(err)
		}
		if res.UserID != "US.13491208655302741918" || res.WAID != "" || res.MessageStatus != "held_for_quality_assessment" {
			t.Errorf("edge %q: result %+v", edge, res)
		}
	}
	want := []string{"/v27.0/106540352242922/messages", "/v27.0/106540352242922/messages", "/v27.0/106540352242922/marketing_messages"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Errorf("paths %v, want %v", paths, want)
	}
	_, err := c.Send(context.Background(), SendRequest{PhoneNumberID: "106540352242922", Token: secretToken, Message: msg, Edge: "../debug_token"})
	if err == nil || !strings.Contains(err.Error(), "unknown edge") || len(paths) != 3 {
		t.Errorf("bad edge: %v (requests %d)", err, len(paths))
	}
}

// Send answers with odd contacts or messages: a success needs
// messages[0].id; contacts are optional, and a contacts entry of the wrong
// shape makes the answer unusable (a transport failure, retried).
func TestSendOddAnswers(t *testing.T) {
	tests := []struct {
		body       string
		ok         bool
		kind       TransportKind
		waID, user string
		status     string
	}{
		{body: `{"messages":[{"id":"wamid.1"}]}`, ok: true},
		{body: `{"contacts":[],"messages":[{"id":"wamid.1","message_status":"paused"}]}`, ok: true, status: "paused"},
		{body: `{"contacts":[{"input":"15551234567","wa_id":"15551234567","user_id":"US.1"}],"messages":[{"id":"wamid.1"}]}`, ok: true, waID: "15551234567", user: "US.1"},
		{body: `{"contacts":[{"user_id":7}],"messages":[{"id":"wamid.1"}]}`, kind: TransportNotJSON},
		{body: `{"contacts":{"user_id":"US.1"},"messages":[{"id":"wamid.1"}]}`, kind: TransportNotJSON},
		{body: `{"contacts":[{"user_id":"US.1"}],"messages":[]}`, kind: TransportNoCode},
		{body: `{"contacts":[{"user_id":"US.1"}],"messages":[{"message_status":"accepted"}]}`, kind: TransportNoCode},
		{body: `{"messages":[{"id":"wamid.1","message_status":false}]}`, kind: TransportNotJSON},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, tt.body) }))
		res, err := send(t, newClient(t, srv.URL))
		srv.Close()
		if tt.ok {
			if err != nil || res.WAMID != "wamid.1" || res.WAID != tt.waID || res.UserID != tt.user || res.MessageStatus != tt.status {
				t.Errorf("%s: %+v %v", tt.body, res, err)
			}
			continue
		}
		var te *TransportError
		if !errors.As(err, &te) || te.Kind != tt.kind {
			t.Errorf("%s: err %v, want transport %s", tt.body, err, tt.kind)
		}
	}
}
