package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/deadletter/deadlettertest"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// dlqFixture is a Redis with parked entries, a NATS server with the job
// stream, and the settings that point waq dlq at them.
type dlqFixture struct {
	vars   map[string]string
	store  *deadletter.Store
	stream jetstream.Stream
	redis  *testenv.Redis
	nats   *testenv.NATS
}

func dlqSetup(t *testing.T) *dlqFixture {
	t.Helper()
	r := testenv.StartRedis(t)
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	s, err := queue.EnsureStream(context.Background(), js, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := &dlqFixture{
		vars:   map[string]string{"WAQ_REDIS_URL": r.URL, "WAQ_NATS_URL": n.URL, "WAQ_KEY_PREFIX": "cli"},
		store:  deadletter.New(r.Client(t), deadletter.Options{Prefix: "cli"}),
		stream: s,
		redis:  r,
		nats:   n,
	}
	deadlettertest.ParkSamples(t, f.store, time.Now())
	return f
}

func (f *dlqFixture) run(t *testing.T, extra map[string]string, args ...string) (int, string, string) {
	t.Helper()
	vars := map[string]string{}
	for k, v := range f.vars {
		vars[k] = v
	}
	for k, v := range extra {
		vars[k] = v
	}
	return runCmd(t, vars, "", append([]string{"dlq"}, args...)...)
}

func idsOf(ls []map[string]any) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l["id"].(string))
	}
	return out
}

func (f *dlqFixture) parked(t *testing.T) int64 {
	t.Helper()
	return deadlettertest.Total(t, f.store)
}

func TestDLQList(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	code, out, errOut := f.run(t, nil, "list", "--json")
	ls := testenv.JSONLines(t, out)
	if code != 0 || !slices.Equal(idsOf(ls), []string{"w1", "w2", "t1", "r1"}) {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}
	keys := []string{}
	for k := range ls[0] {
		keys = append(keys, k)
	}
	for _, k := range []string{"id", "reason", "code", "fbtrace_id", "trace_id", "phone_number_id", "to", "template", "attempts", "parked_at"} {
		if !slices.Contains(keys, k) {
			t.Errorf("list line lacks %q: %v", k, ls[0])
		}
	}
	if _, err := time.Parse(time.RFC3339, ls[0]["parked_at"].(string)); err != nil || ls[0]["code"].(float64) != 131047 || ls[0]["fbtrace_id"] != "fb-w1" {
		t.Errorf("line %v", ls[0])
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--reason", "window"}, []string{"w1", "w2"}},
		{[]string{"--code", "131000"}, []string{"r1"}},
		{[]string{"--phone-number-id", "106540352242922", "--template", "order_update"}, []string{"t1", "r1"}},
		{[]string{"--phone-number-id", "999"}, nil},
		{[]string{"--since", "150s"}, []string{"w1", "w2"}},
		{[]string{"--since", "1d", "--reason", "template", "--code", "132001"}, []string{"t1"}},
		{[]string{"--limit", "3"}, []string{"w1", "w2", "t1"}},
	} {
		code, out, _ := f.run(t, nil, append([]string{"list", "--json"}, tt.args...)...)
		if got := idsOf(testenv.JSONLines(t, out)); code != 0 || !slices.Equal(got, tt.want) {
			t.Errorf("%v: %d %v, want %v", tt.args, code, got, tt.want)
		}
	}
	// A full page names its cursor on stderr; the next page follows it.
	_, out, errOut = f.run(t, nil, "list", "--json", "--limit", "2")
	cursor := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(errOut), "more: --cursor"))
	if len(testenv.JSONLines(t, out)) != 2 || cursor == "" {
		t.Fatalf("page 1: %q %q", out, errOut)
	}
	_, out, _ = f.run(t, nil, "list", "--json", "--limit", "2", "--cursor", cursor)
	if got := idsOf(testenv.JSONLines(t, out)); !slices.Equal(got, []string{"t1", "r1"}) {
		t.Errorf("page 2: %v", got)
	}
	// A table that fits the terminal.
	code, out, _ = f.run(t, map[string]string{"COLUMNS": "72"}, "list")
	if code != 0 || !strings.HasPrefix(out, "ID") || !strings.Contains(out, "w1") {
		t.Fatalf("table: %d %q", code, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n := utf8.RuneCountInString(l); n > 72 {
			t.Errorf("line of %d runes in a 72-column terminal: %q", n, l)
		}
	}
}

func TestDLQShowStatsExport(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	code, out, _ := f.run(t, nil, "show", "t1", "--json")
	var e deadletter.Entry
	if code != 0 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &e) != nil || e.ID != "t1" || e.LastError.FBTraceID != "fb-t1" || len(e.Job) == 0 {
		t.Errorf("show --json: %d %q", code, out)
	}
	code, out, _ = f.run(t, nil, "show", "t1")
	if code != 0 || !strings.Contains(out, "reason:           template") || !strings.Contains(out, `"fbtrace_id": "fb-t1"`) || !strings.Contains(out, `"name": "order_update"`) {
		t.Errorf("show: %d %s", code, out)
	}
	if code, out, errOut := f.run(t, nil, "show", "nope", "--json"); code != 1 || out != "" || !strings.Contains(errOut, "no dead-letter entry") {
		t.Errorf("show unknown: %d %q %q", code, out, errOut)
	}

	code, out, _ = f.run(t, nil, "stats", "--json")
	var st deadletter.Stats
	if code != 0 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &st) != nil || st.Total != 4 || st.ByReason["window"] != 2 ||
		st.ByCode["131000"] != 1 || st.ByTemplate["order_update"] != 2 || st.ByPhoneNumber["106540352242922"] != 4 || st.Recipients != 4 || st.Verdict == "" {
		t.Errorf("stats --json: %d %q", code, out)
	}
	code, out, _ = f.run(t, nil, "stats", "--template", "order_update", "--json")
	if json.Unmarshal([]byte(out), &st) != nil || st.Total != 2 || st.Isolation != "template" {
		t.Errorf("filtered stats: %d %q", code, out)
	}
	code, out, _ = f.run(t, nil, "stats")
	if code != 0 || !strings.Contains(out, "4 parked jobs to 4 recipients") || !strings.Contains(out, "REASON") || !strings.Contains(out, "(free-form)") {
		t.Errorf("stats: %d %s", code, out)
	}

	code, out, _ = f.run(t, nil, "export", "--reason", "window", "--json")
	var x deadletter.Export
	if code != 0 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &x) != nil || x.Total != 2 || len(x.Groups) != 1 || len(x.Groups[0].FBTraceIDs) != 2 {
		t.Errorf("export --json: %d %q", code, out)
	}
	if code, out2, _ := f.run(t, nil, "export", "--reason", "window", "--format", "json"); code != 0 || testenv.JSONLines(t, out2) == nil {
		t.Errorf("export --format json: %d", code)
	}
	code, out, _ = f.run(t, nil, "export")
	if code != 0 {
		t.Errorf("export: exit %d", code)
	}
	for _, want := range []string{"Failed messages: 4 in 3 groups", "error 131047: subcode 2494010: title w", "fbtrace_ids:", "Request: POST /{version}/106540352242922/messages", "Recipients:"} {
		if !strings.Contains(out, want) {
			t.Errorf("export text lacks %q:\n%s", want, out)
		}
	}
}

func TestDLQReplay(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	// Dry run: nothing published, nothing removed.
	code, out, _ := f.run(t, nil, "replay", "--reason", "window", "--dry-run", "--json")
	ls := testenv.JSONLines(t, out)
	if code != 0 || len(ls) != 2 || ls[0]["replayed"] != false || ls[0]["dry_run"] != true || f.parked(t) != 4 {
		t.Fatalf("dry run: %d %q", code, out)
	}
	// The window failures as templates, by reason.
	code, out, errOut := f.run(t, nil, "replay", "--reason", "window", "--as-template", "reengage", "--language", "en_US", "--json")
	ls = testenv.JSONLines(t, out)
	sort.Slice(ls, func(a, b int) bool { return ls[a]["id"].(string) < ls[b]["id"].(string) })
	if code != 0 || len(ls) != 2 || ls[0]["id"] != "w1" || ls[0]["replayed"] != true || ls[0]["error"] != nil {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	for _, l := range ls {
		for k := range l {
			switch k {
			case "id", "replayed", "error", "generation", "dry_run", "to_masked", "template", "reason", "code", "parked_at", "warning":
			default:
				t.Errorf("unexpected field %q in %v", k, l)
			}
			if k == "to_masked" && !strings.HasPrefix(l[k].(string), "•••") {
				t.Errorf("recipient not masked in %v", l)
			}
		}
	}
	info, _ := f.stream.Info(context.Background())
	if info.State.Msgs != 2 || f.parked(t) != 2 {
		t.Errorf("%d published, %d parked", info.State.Msgs, f.parked(t))
	}
	m, err := f.stream.GetLastMsgForSubject(context.Background(), "waq.send.106540352242922")
	if err != nil {
		t.Fatal(err)
	}
	_, sum, err := queue.Decode(m.Data)
	if err != nil || sum.Type != "template" || sum.Template != "reengage" || m.Header.Get(queue.HeaderReplay) != "1" {
		t.Errorf("replayed job %s: %+v %v", m.Data, sum, err)
	}
	// By ids: a template entry refused as-template, an unknown id: exit 1,
	// one line per id.
	code, out, _ = f.run(t, nil, "replay", "t1", "nope", "--as-template", "x", "--language", "en", "--json")
	ls = testenv.JSONLines(t, out)
	if code != 1 || len(ls) != 2 || ls[0]["replayed"] != false || ls[0]["error"] == nil || ls[1]["error"] == nil {
		t.Errorf("refused: %d %q", code, out)
	}
	// Plain replay by ids, flags after the ids, as a table.
	code, out, _ = f.run(t, nil, "replay", "t1", "r1")
	if code != 0 || !strings.Contains(out, "replayed (generation 1)") || !strings.Contains(out, "replayed 2, failed 0") || f.parked(t) != 0 {
		t.Errorf("replay table: %d %s", code, out)
	}
	// The same entries again: nothing left to replay.
	if code, _, _ := f.run(t, nil, "replay", "t1", "--json"); code != 1 {
		t.Errorf("replay of a gone entry: exit %d", code)
	}
	info, _ = f.stream.Info(context.Background())
	if info.State.Msgs != 4 {
		t.Errorf("%d messages on the stream, want 4", info.State.Msgs)
	}
}

func TestDLQPurge(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	code, out, _ := f.run(t, nil, "purge", "--reason", "window", "--older-than", "90s", "--dry-run", "--json")
	if ls := testenv.JSONLines(t, out); code != 0 || !slices.Equal(idsOf(ls), []string{"w2"}) || f.parked(t) != 4 {
		t.Errorf("dry run: %d %q", code, out)
	}
	code, out, _ = f.run(t, nil, "purge", "--reason", "window", "--older-than", "0s", "--json")
	if ls := testenv.JSONLines(t, out); code != 0 || len(ls) != 2 || ls[0]["purged"] != true || f.parked(t) != 2 {
		t.Errorf("purge by reason: %d %q", code, out)
	}
	code, out, _ = f.run(t, nil, "purge", "t1", "nope", "--json")
	if ls := testenv.JSONLines(t, out); code != 1 || ls[0]["purged"] != true || ls[1]["purged"] != false || f.parked(t) != 1 {
		t.Errorf("purge by ids: %d %q", code, out)
	}
	code, out, _ = f.run(t, nil, "purge", "r1")
	if code != 0 || !strings.Contains(out, "purged 1, failed 0") {
		t.Errorf("purge table: %d %q", code, out)
	}
}

func TestDLQUsage(t *testing.T) {
	t.Parallel()
	// No server is needed to refuse bad usage: nothing connects first.
	vars := map[string]string{"WAQ_REDIS_URL": "redis://127.0.0.1:1/0", "WAQ_NATS_URL": "nats://127.0.0.1:1"}
	for _, args := range [][]string{
		{},
		{"frob"},
		{"list", "--reason", "windwo"},
		{"list", "--limit", "-1"},
		{"list", "--limit", "x"},
		{"list", "--since", "yesterday"},
		{"list", "--code", "abc"},
		{"list", "--phone-number-id", "+1 555"},
		{"list", "--cursor", "nope"},
		{"list", "extra"},
		{"list", "--older-than", "1h"},
		{"show"},
		{"show", "a", "b"},
		{"stats", "--limit", "3"},
		{"replay"},
		{"replay", "--code", "131047"},
		{"replay", "--reason", "window", "--as-template", "x"},
		{"replay", "--reason", "window", "--language", "en"},
		{"replay", "id1", "--reason", "window"},
		{"purge"},
		{"purge", "--reason", "window"},
		{"purge", "--reason", "window", "--older-than", "soon"},
		{"purge", "--older-than", "1h"},
		{"export", "--format", "pdf"},
		{"export", "--json", "--format", "text"},
		{"list", "--to", "US.13491208655302741918"},
		{"list", "--recipient", "15551234567"},
		{"list", "--recipient", "us.1349"},
		{"list", "--to", "15550000001", "--recipient", "US.13491208655302741918"},
		{"stats", "--to", "+1 555"},
	} {
		code, out, errOut := runCmd(t, vars, "", append([]string{"dlq"}, args...)...)
		if code != 2 || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and nothing on stdout", args, code, out, errOut)
		}
	}
	// Redis down is a failure, not bad usage.
	if code, out, errOut := runCmd(t, vars, "", "dlq", "list", "--json"); code != 1 || out != "" || !strings.Contains(errOut, "does not answer") {
		t.Errorf("redis down: %d %q %q", code, out, errOut)
	}
}

// TestDLQRecipient: an entry addressed by a business-scoped user ID shows
// it as recipient in list and show (text and JSON); --recipient and --to
// filter by it and by a number.
func TestDLQRecipient(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	const bsuid = "US.13491208655302741918"
	code := 131062
	e := &deadletter.Entry{ID: "b1", Reason: "invalid", PhoneNumberID: deadlettertest.PhoneNumberID, Recipient: bsuid, MessageType: "template", Template: "otp",
		Job:       json.RawMessage(`{"id":"b1","phone_number_id":"` + deadlettertest.PhoneNumberID + `","message":{"messaging_product":"whatsapp","recipient":"` + bsuid + `","type":"template","template":{"name":"otp","language":{"code":"en_US"}}}}`),
		LastError: &deadletter.LastError{HTTPStatus: 400, Code: &code}, ParkedAt: time.Now()}
	if err := f.store.Park(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"--recipient", bsuid}, []string{"b1"}},
		{[]string{"--to", "15550000003"}, []string{"t1"}},
		{[]string{"--recipient", "US.99999999"}, nil},
	} {
		code, out, errOut := f.run(t, nil, append([]string{"list", "--json"}, tt.args...)...)
		ls := testenv.JSONLines(t, out)
		if got := idsOf(ls); code != 0 || !slices.Equal(got, tt.want) {
			t.Errorf("%v: %d %v %q, want %v", tt.args, code, got, errOut, tt.want)
		}
		if len(ls) == 1 && ls[0]["id"] == "b1" && (ls[0]["recipient"] != bsuid || ls[0]["to"] != "") {
			t.Errorf("list line of a BSUID entry: %v", ls[0])
		}
	}
	if code, out, _ := f.run(t, nil, "list", "--recipient", bsuid); code != 0 || !strings.Contains(out, bsuid) {
		t.Errorf("list table: %d %q; want the user ID in TO", code, out)
	}
	code2, out, _ := f.run(t, nil, "show", "b1")
	if code2 != 0 || !strings.Contains(out, "recipient:        "+bsuid) || strings.Contains(out, "to:               -") {
		t.Errorf("show: %d %q", code2, out)
	}
	_, out, _ = f.run(t, nil, "show", "b1", "--json")
	if ls := testenv.JSONLines(t, out); len(ls) != 1 || ls[0]["recipient"] != bsuid {
		t.Errorf("show --json: %q", out)
	}
	if code, out, _ := f.run(t, nil, "stats", "--json", "--recipient", bsuid); code != 0 || !strings.Contains(out, `"total":1`) {
		t.Errorf("stats --recipient: %d %q", code, out)
	}
}

// TestDLQExpiry: with a short retention, entries parked before it are
// neither listed nor counted, and the command sweeps them away.
func TestDLQExpiry(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	old := &deadletter.Entry{ID: "old", Reason: "window", PhoneNumberID: "106540352242922", To: "15559999999", ParkedAt: time.Now().Add(-3 * time.Hour)}
	if err := f.store.Park(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	short := map[string]string{"WAQ_DLQ_RETENTION": "2h"}
	code, out, _ := f.run(t, short, "stats", "--json")
	var st deadletter.Stats
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Total != 4 || st.ByReason["window"] != 2 {
		t.Errorf("stats with a 2h retention: %d %q", code, out)
	}
	if _, err := f.store.Get(context.Background(), "old"); err == nil {
		t.Error("the command did not sweep the expired entry")
	}
	if code, out, _ := f.run(t, short, "list", "--json", "--reason", "window"); code != 0 || len(testenv.JSONLines(t, out)) != 2 {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _, _ := f.run(t, map[string]string{"WAQ_DLQ_RETENTION": "forever"}, "list"); code != 2 {
		t.Errorf("a bad WAQ_DLQ_RETENTION: exit %d", code)
	}
}

// TestAdminMounted runs the worker with and without WAQ_ADMIN_TOKEN and
// calls the admin API on its listener.
func TestAdminMounted(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	const tok = "cli-admin-token-0123456789"
	start := func(adminToken string) string {
		port := testenv.FreePort(t)
		vars := map[string]string{"WAQ_ACCESS_TOKEN": "t", "WAQ_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(port), "WAQ_ADMIN_TOKEN": adminToken,
			"WAQ_LOG_LEVEL": "error", "WAQ_GRAPH_URL": "http://127.0.0.1:1"}
		for k, v := range f.vars {
			vars[k] = v
		}
		startWorkerCmd(t, vars, nil)
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		testenv.Eventually(t, 15*time.Second, func() error {
			res, err := http.Get(base + "/healthz")
			if err != nil {
				return err
			}
			res.Body.Close()
			return nil
		})
		return base
	}
	get := func(url, bearer string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	base := start(tok)
	if code, body := get(base+"/admin/dlq?reason=window", tok); code != 200 || len(testenv.JSONLines(t, body)) != 2 {
		t.Errorf("with the token: %d %q", code, body)
	}
	if code, _ := get(base+"/admin/dlq", ""); code != 401 {
		t.Errorf("without a token: %d", code)
	}
	if code, _ := get(base+"/admin/dlq", "wrong-token-wrong-token"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	off := start("")
	if code, _ := get(off+"/admin/dlq", tok); code != 404 {
		t.Errorf("admin off: %d", code)
	}
}

// TestDLQWithWorker is the operator's story end to end: a worker parks
// free-form messages outside the window; a plain replay is parked again as
// a newer generation (and nothing older is removed); a replay as a template
// gets them sent.
func TestDLQWithWorker(t *testing.T) {
	t.Parallel()
	f := dlqSetup(t)
	fake := fakegraph.New(fakegraph.Config{Tokens: []string{"tok"}, Scenario: &fakegraph.Scenario{
		Window:    fakegraph.Window{Enforce: true},
		Templates: []fakegraph.Template{{Name: "reengage", Language: "en_US"}},
	}})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })

	vars := map[string]string{"WAQ_ACCESS_TOKEN": "tok", "WAQ_HTTP_ADDR": "127.0.0.1:0", "WAQ_LOG_LEVEL": "error", "WAQ_GRAPH_URL": srv.URL}
	for k, v := range f.vars {
		vars[k] = v
	}
	startWorkerCmd(t, vars, nil)
	// Clear the fixture's own entries: this test counts the worker's.
	if code, _, errOut := f.run(t, nil, "purge", "--reason", "window", "--older-than", "0s"); code != 0 {
		t.Fatal(errOut)
	}
	if code, _, errOut := f.run(t, nil, "purge", "t1", "r1"); code != 0 {
		t.Fatal(errOut)
	}

	js := natsJS(t, f.vars["WAQ_NATS_URL"])
	pub := queue.NewProducer(js, queue.ProducerOptions{})
	for i, id := range []string{"e2e-a", "e2e-b"} {
		job := &queue.Job{ID: id, PhoneNumberID: "106540352242922",
			Message: json.RawMessage(fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1555777000%d","type":"text","text":{"body":"hi"}}`, i))}
		if _, err := pub.Publish(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	waitEntry := func(id string, gen int) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			e, err := f.store.Get(context.Background(), id)
			if err != nil {
				return err
			}
			if e.Replayed != gen || e.Reason != "window" {
				return fmt.Errorf("%s: generation %d reason %s", id, e.Replayed, e.Reason)
			}
			return nil
		})
	}
	waitEntry("e2e-a", 0)
	waitEntry("e2e-b", 0)

	// A plain replay is refused by Meta again: parked as generation 1.
	code, out, errOut := f.run(t, nil, "replay", "e2e-b", "--json")
	if code != 0 || !strings.Contains(out, `"replayed":true`) {
		t.Fatalf("replay: %d %q %q", code, out, errOut)
	}
	waitEntry("e2e-b", 1)

	// As a template, both go through.
	code, out, errOut = f.run(t, nil, "replay", "--reason", "window", "--as-template", "reengage", "--language", "en_US", "--json")
	if ls := testenv.JSONLines(t, out); code != 0 || len(ls) != 2 {
		t.Fatalf("replay as template: %d %q %q", code, out, errOut)
	}
	led := ledger.New(redisClient(t, f.vars["WAQ_REDIS_URL"]), ledger.Options{Prefix: "cli"})
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range []string{"e2e-a", "e2e-b"} {
			st, err := led.Load(context.Background(), id)
			if err != nil {
				return err
			}
			if !st.Sent() {
				return fmt.Errorf("%s not sent (generation %d, parked %q)", id, st.Gen, st.Parked)
			}
		}
		return nil
	})
	if code, out, _ := f.run(t, nil, "stats", "--json"); code != 0 || !strings.Contains(out, `"total":0`) {
		t.Errorf("stats after the replays: %q", out)
	}
}

func natsJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
