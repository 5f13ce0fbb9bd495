package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/waqhq/waq/admin"
	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/deadletter/deadlettertest"
	"github.com/waqhq/waq/internal/authlimit"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "s3cret-admin-token-0123"

type fixture struct {
	url    string
	client *http.Client
	store  *deadletter.Store
	stream jetstream.Stream
}

func setup(t *testing.T, tok string, opts ...func(*admin.Options)) *fixture {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	store := deadletter.New(rdb, deadletter.Options{})
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	s, err := queue.EnsureStream(context.Background(), js, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	o := admin.Options{Token: tok, Store: store, Publisher: queue.NewProducer(js, queue.ProducerOptions{}), MaxBody: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, fn := range opts {
		fn(&o)
	}
	h := admin.New(o)
	mux := http.NewServeMux()
	mux.Handle("/admin/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	now := time.Now().UTC()
	for i, sp := range []struct{ id, reason, tpl, to, typ string }{
		{"w1", "window", "", "15550000001", "text"},
		{"w2", "window", "", "15550000002", "text"},
		{"t1", "template", "order_update", "15550000003", "template"},
	} {
		msg := fmt.Sprintf(`{"messaging_product":"whatsapp","to":%q,"type":"text","text":{"body":"hi"}}`, sp.to)
		code := 131047
		if sp.tpl != "" {
			msg = fmt.Sprintf(`{"messaging_product":"whatsapp","to":%q,"type":"template","template":{"name":%q,"language":{"code":"en_US"}}}`, sp.to, sp.tpl)
			code = 132001
		}
		e := &deadletter.Entry{ID: sp.id, Reason: sp.reason, Job: json.RawMessage(fmt.Sprintf(`{"id":%q,"phone_number_id":"106540352242922","message":%s}`, sp.id, msg)),
			PhoneNumberID: "106540352242922", To: sp.to, Template: sp.tpl, MessageType: sp.typ, ParkedAt: now.Add(-time.Duration(i) * time.Minute),
			LastError: &deadletter.LastError{HTTPStatus: 400, Code: &code, FBTraceID: "fb-" + sp.id, Title: "t", Message: "m"},
			TraceID:   "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}
		if err := store.Park(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	// No keep-alive: every connection ends with its request, and goleak
	// finds no client goroutines left.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)
	return &fixture{url: srv.URL, client: client, store: store, stream: s}
}

func (f *fixture) do(t *testing.T, method, path, tok, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.url+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func lines(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func (f *fixture) parked(t *testing.T) int64 {
	t.Helper()
	return deadlettertest.Total(t, f.store)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	// More wrong tokens than the default limit lets through (TestAuthLimit).
	f := setup(t, token, func(o *admin.Options) { o.Limiter = authlimit.New(authlimit.Options{Burst: 1000}) })
	for _, tok := range []string{"", "wrong", token + "x", token[:len(token)-1]} {
		for _, rt := range [][3]string{{"GET", "/admin/dlq", ""}, {"GET", "/admin/dlq/w1", ""}, {"GET", "/admin/dlq/stats", ""},
			{"GET", "/admin/dlq/export", ""}, {"POST", "/admin/dlq/replay", `{"ids":["w1"]}`}, {"POST", "/admin/dlq/purge", `{"ids":["w1","w2"]}`}, {"GET", "/admin/nope", ""}} {
			res, body := f.do(t, rt[0], rt[1], tok, rt[2])
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) || strings.Contains(body, token) {
				t.Errorf("%s %s with %q: %d %s", rt[0], rt[1], tok, res.StatusCode, body)
			}
		}
	}
	// Basic auth with the right secret is not a bearer token.
	req, _ := http.NewRequest("GET", f.url+"/admin/dlq", nil)
	req.SetBasicAuth("admin", token)
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("basic auth: %d", res.StatusCode)
	}
	// Nothing was done.
	if n := f.parked(t); n != 3 {
		t.Errorf("%d parked after unauthorized calls, want 3", n)
	}
	if msgs, _ := f.stream.Info(context.Background()); msgs.State.Msgs != 0 {
		t.Errorf("unauthorized replay published %d", msgs.State.Msgs)
	}
	// The right token works.
	if res, _ := f.do(t, "GET", "/admin/dlq", token, ""); res.StatusCode != 200 {
		t.Errorf("right token: %d", res.StatusCode)
	}
}

func TestOff(t *testing.T) {
	t.Parallel()
	f := setup(t, "")
	for _, path := range []string{"/admin/dlq", "/admin/dlq/stats", "/admin/dlq/w1"} {
		for _, tok := range []string{"", "anything"} {
			if res, _ := f.do(t, "GET", path, tok, ""); res.StatusCode != http.StatusNotFound {
				t.Errorf("%s with the API off: %d", path, res.StatusCode)
			}
		}
	}
	if res, _ := f.do(t, "POST", "/admin/dlq/purge", "", `{"reason":"window","older_than":"0s"}`); res.StatusCode != 404 || f.parked(t) != 3 {
		t.Errorf("purge with the API off: %d", res.StatusCode)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	f := setup(t, token)
	res, body := f.do(t, "GET", "/admin/dlq?reason=window&limit=1", token, "")
	ls := lines(t, body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" || len(ls) != 1 || ls[0]["id"] != "w1" {
		t.Fatalf("list: %d %s", res.StatusCode, body)
	}
	keys := []string{}
	for k := range ls[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range []string{"id", "reason", "code", "fbtrace_id", "trace_id", "phone_number_id", "to", "template", "attempts", "parked_at"} {
		if !slices.Contains(keys, k) {
			t.Errorf("list line lacks %q: %v", k, keys)
		}
	}
	if _, err := time.Parse(time.RFC3339, ls[0]["parked_at"].(string)); err != nil || ls[0]["code"].(float64) != 131047 {
		t.Errorf("line %v", ls[0])
	}
	next := res.Header.Get(admin.NextCursorHeader)
	if next == "" {
		t.Fatal("no next cursor on a full page")
	}
	_, body = f.do(t, "GET", "/admin/dlq?reason=window&limit=1&cursor="+next, token, "")
	if ls := lines(t, body); len(ls) != 1 || ls[0]["id"] != "w2" {
		t.Errorf("second page %s", body)
	}
	for q, want := range map[string][]string{
		"template=order_update": {"t1"}, "code=131047": {"w1", "w2"}, "phone_number_id=106540352242922": {"w1", "w2", "t1"},
		"since=90s": {"w1", "w2"}, "phone_number_id=999": nil,
	} {
		_, body := f.do(t, "GET", "/admin/dlq?"+q, token, "")
		var got []string
		for _, l := range lines(t, body) {
			got = append(got, l["id"].(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}

	res, body = f.do(t, "GET", "/admin/dlq/t1", token, "")
	var e deadletter.Entry
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &e) != nil || e.ID != "t1" || e.LastError.FBTraceID != "fb-t1" || len(e.Job) == 0 {
		t.Errorf("show: %d %s", res.StatusCode, body)
	}
	if res, body := f.do(t, "GET", "/admin/dlq/nope", token, ""); res.StatusCode != 404 || !strings.Contains(body, "no dead-letter entry") {
		t.Errorf("show unknown: %d %s", res.StatusCode, body)
	}

	res, body = f.do(t, "GET", "/admin/dlq/stats", token, "")
	var st deadletter.Stats
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Total != 3 || st.ByReason["window"] != 2 || st.Recipients != 3 || st.Verdict == "" {
		t.Errorf("stats: %d %s", res.StatusCode, body)
	}
	_, body = f.do(t, "GET", "/admin/dlq/stats?reason=window", token, "")
	if json.Unmarshal([]byte(body), &st) != nil || st.Total != 2 {
		t.Errorf("filtered stats: %s", body)
	}

	res, body = f.do(t, "GET", "/admin/dlq/export?reason=window", token, "")
	var x deadletter.Export
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &x) != nil || x.Total != 2 || len(x.Groups) != 1 || x.Groups[0].FBTraceIDs[0] != "fb-w1" {
		t.Errorf("export: %d %s", res.StatusCode, body)
	}
	res, body = f.do(t, "GET", "/admin/dlq/export?format=text", token, "")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "fbtrace_ids:") {
		t.Errorf("text export: %d %s", res.StatusCode, body)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	f := setup(t, token)
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/admin/dlq?reason=windwo", "", 400, "reason"},
		{"GET", "/admin/dlq?limit=-1", "", 400, "limit"},
		{"GET", "/admin/dlq?code=x", "", 400, "code"},
		{"GET", "/admin/dlq?since=forever", "", 400, "since"},
		{"GET", "/admin/dlq?cursor=zz", "", 400, "cursor"},
		{"GET", "/admin/dlq?reasn=window", "", 400, "unknown query parameter"},
		{"GET", "/admin/dlq/stats?limit=3", "", 400, "limit"},
		{"GET", "/admin/dlq/export?format=pdf", "", 400, "format"},
		{"POST", "/admin/dlq/replay", "", 400, "request body"},
		{"POST", "/admin/dlq/replay", `{}`, 400, "reason"},
		{"POST", "/admin/dlq/replay", `{"reason":"window","dryrun":true}`, 400, "dryrun"},
		{"POST", "/admin/dlq/replay", `{"reason":"window","as_template":"x"}`, 400, "language"},
		{"POST", "/admin/dlq/replay", `{"ids":["w1"],"reason":"window"}`, 400, "not both"},
		{"POST", "/admin/dlq/replay", `{"reason":"window","code":"abc"}`, 400, "code"},
		{"POST", "/admin/dlq/replay", `{"reason":"window"} {"reason":"template"}`, 400, "one JSON object"},
		{"POST", "/admin/dlq/replay?reason=window", `{"reason":"window"}`, 400, "body"},
		{"POST", "/admin/dlq/purge", `{"reason":"window"}`, 400, "older_than"},
		{"POST", "/admin/dlq/purge", `{"reason":"window","older_than":"-1h"}`, 400, "older_than"},
		{"POST", "/admin/dlq/purge", `not json`, 400, "request body"},
		{"POST", "/admin/dlq/replay", `{"ids":["` + strings.Repeat("a", 5000) + `"]}`, 413, "larger than"},
		{"POST", "/admin/dlq/purge", `{"reason":"window","older_than":"1s","template":"` + strings.Repeat("b", 5000) + `"}`, 413, "larger than"},
		{"DELETE", "/admin/dlq/w1", "", 405, ""},
	} {
		res, body := f.do(t, c.method, c.path, token, c.body)
		if res.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s %.60s: %d %s; want %d with %q", c.method, c.path, c.body, res.StatusCode, body, c.status, c.want)
		}
		if c.status == 400 && !strings.Contains(res.Header.Get("Content-Type"), "json") {
			t.Errorf("%s %s: a 400 without a JSON error", c.method, c.path)
		}
	}
	if n := f.parked(t); n != 3 {
		t.Errorf("bad requests changed the store: %d parked", n)
	}
}

func TestReplayAndPurge(t *testing.T) {
	t.Parallel()
	f := setup(t, token)
	// Dry run first.
	res, body := f.do(t, "POST", "/admin/dlq/replay", token, `{"reason":"window","dry_run":true,"as_template":"reengage","language":"en_US"}`)
	ls := lines(t, body)
	if res.StatusCode != 200 || len(ls) != 2 || ls[0]["replayed"] != false || ls[0]["dry_run"] != true || f.parked(t) != 3 {
		t.Fatalf("dry run: %d %s", res.StatusCode, body)
	}
	// Window failures as templates; the template entry is refused by id.
	res, body = f.do(t, "POST", "/admin/dlq/replay", token, `{"ids":["w1","w2","t1"],"as_template":"reengage","language":"en_US"}`)
	ls = lines(t, body)
	if res.StatusCode != 200 || len(ls) != 3 {
		t.Fatalf("replay: %d %s", res.StatusCode, body)
	}
	for _, l := range ls {
		switch l["id"] {
		case "w1", "w2":
			if l["replayed"] != true || l["error"] != nil {
				t.Errorf("line %v", l)
			}
		case "t1":
			if l["replayed"] != false || !strings.Contains(l["error"].(string), "already template") {
				t.Errorf("line %v", l)
			}
		}
	}
	info, _ := f.stream.Info(context.Background())
	if info.State.Msgs != 2 || f.parked(t) != 1 {
		t.Errorf("%d published, %d parked; want 2 and 1", info.State.Msgs, f.parked(t))
	}
	// Purge the rest by reason and age.
	res, body = f.do(t, "POST", "/admin/dlq/purge", token, `{"reason":"template","older_than":"1s"}`)
	ls = lines(t, body)
	if res.StatusCode != 200 || len(ls) != 1 || ls[0]["id"] != "t1" || ls[0]["purged"] != true || f.parked(t) != 0 {
		t.Errorf("purge: %d %s", res.StatusCode, body)
	}
	res, body = f.do(t, "POST", "/admin/dlq/purge", token, `{"ids":["t1"]}`)
	if ls := lines(t, body); res.StatusCode != 200 || ls[0]["purged"] != false || ls[0]["error"] == nil {
		t.Errorf("purge again: %s", body)
	}
}
