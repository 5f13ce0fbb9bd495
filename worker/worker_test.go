package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/worker"
)

func TestMain(m *testing.M) {
	// A trickled body is cut off after a second here, not 30 s.
	*worker.BodyTimeout = time.Second
	// WAQ_TEST_ROUND_TRIPS_ALONE=1 runs every test with each send's round
	// trip on a goroutine of its own, as a worker past 256 sends in flight
	// does (the tests' workers have fewer).
	if os.Getenv("WAQ_TEST_ROUND_TRIPS_ALONE") != "" {
		*worker.RoundTripsAlonePast = 0
	}
	// The embedded NATS server and HTTP keep-alive pools outlive a test by
	// design; they are not the worker's goroutines.
	goleak.VerifyTestMain(m, testenv.ServerGoroutines()...)
}

const (
	pn    = "106540352242922"
	token = "EAAG-test-token-never-logged"
)

// fastPolicy retries quickly so tests take milliseconds, not minutes.
const fastPolicy = `
defaults:
  max_attempts: 4
  backoff: {initial: 20ms, multiplier: 2, max: 100ms, jitter: 0}
rules:
  - codes: [131000, 1, 2, 131016, 133004, 131057, 2494100]
    action: retry
    backoff: {initial: 20ms, multiplier: 2, max: 100ms, jitter: 0}
  - transport: true
    action: retry
  - http_status: [500, 502, 503, 504]
    action: retry
`

type env struct {
	nats     *testenv.NATS // nil when the test runs a nats-server process (setupOn)
	natsURL  string
	redis    *testenv.Redis
	fake     *fakegraph.Server
	graphURL string
	js       jetstream.JetStream
	producer *queue.Producer
	ledger   *ledger.Ledger
	dlq      *deadletter.Store
	logs     *syncBuffer
	policy   string
}

type syncBuffer = testenv.Buffer

func setup(t testing.TB) *env {
	t.Helper()
	n := testenv.StartNATS(t)
	e := setupOn(t, n.URL)
	e.nats = n
	return e
}

// setupOn is setup with the NATS server at natsURL (a nats-server process
// the test kills, for instance) instead of an embedded one.
func setupOn(t testing.TB, natsURL string) *env {
	t.Helper()
	e := &env{natsURL: natsURL, redis: testenv.StartRedis(t), logs: &syncBuffer{}}
	e.fake = fakegraph.New(fakegraph.Config{Tokens: []string{token}})
	srv := httptest.NewServer(e.fake)
	t.Cleanup(func() { srv.Close(); e.fake.Close() })
	e.graphURL = srv.URL
	_, e.js = testenv.ConnectURL(t, natsURL)
	if _, err := queue.EnsureStream(context.Background(), e.js, queue.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	e.producer = queue.NewProducer(e.js, queue.ProducerOptions{})
	rdb := e.redis.Client(t)
	e.ledger = ledger.New(rdb, ledger.Options{})
	e.dlq = deadletter.New(rdb, deadletter.Options{})
	e.policy = filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(e.policy, []byte(fastPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) config() worker.Config {
	return worker.Config{
		NATSURL:         e.natsURL,
		RedisURL:        e.redis.URL,
		GraphURL:        e.graphURL,
		AccessToken:     token,
		PolicyFile:      e.policy,
		HTTPAddr:        "127.0.0.1:0",
		Concurrency:     32,
		ShutdownTimeout: 10 * time.Second,
		GraphTimeout:    2 * time.Second,
		AckWait:         5 * time.Second,
	}
}

type running struct {
	w    *worker.Worker
	url  string
	stop func() error
}

func (e *env) start(t *testing.T, cfg worker.Config) *running {
	t.Helper()
	return e.startEnv(t, cfg, nil)
}

// newServer serves a simulator on a free port for the test.
func newServer(t *testing.T, fake *fakegraph.Server) string {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { srv.Close(); fake.Close() })
	return srv.URL
}

// startEnv starts a worker whose environment holds vars (token variables).
func (e *env) startEnv(t *testing.T, cfg worker.Config, vars map[string]string) *running {
	t.Helper()
	return e.startWith(t, cfg, vars, worker.Options{})
}

// startWith is startEnv with options (a tracer provider, a gauge
// interval); the logger (JSON into e.logs, unless given) and the listener
// are filled in.
func (e *env) startWith(t testing.TB, cfg worker.Config, vars map[string]string, opts worker.Options) *running {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts.Listener = l
	w, err := worker.New(cfg, func(k string) string { return vars[k] }, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("worker did not stop within 30s")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if !w.Ready() {
			return errors.New("worker not ready")
		}
		return nil
	})
	return &running{w: w, url: "http://" + w.Addr(), stop: stop}
}

func textJob(id, to string) *queue.Job {
	return &queue.Job{
		ID:            id,
		PhoneNumberID: pn,
		Message:       json.RawMessage(`{"messaging_product":"whatsapp","to":"` + to + `","type":"text","text":{"body":"hello ` + id + `"}}`),
		Metadata:      map[string]string{"tenant": "acme"},
	}
}

func templateJob(id, to, name string) *queue.Job {
	return &queue.Job{
		ID:            id,
		PhoneNumberID: pn,
		Message:       json.RawMessage(`{"messaging_product":"whatsapp","to":"` + to + `","type":"template","template":{"name":"` + name + `","language":{"code":"en_US"}}}`),
	}
}

func (e *env) publish(t *testing.T, jobs ...*queue.Job) {
	t.Helper()
	for _, j := range jobs {
		if _, err := e.producer.Publish(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
}

// waitSent waits until every id has a sent record.
func (e *env) waitSent(t *testing.T, timeout time.Duration, ids ...string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		states, err := e.ledger.LoadMany(context.Background(), ids)
		if err != nil {
			return err
		}
		for i, s := range states {
			if !s.Sent() {
				return fmt.Errorf("job %s not sent yet (state %+v)", ids[i], s)
			}
		}
		return nil
	})
}

// waitParked waits for an entry and returns it.
func (e *env) waitParked(t *testing.T, timeout time.Duration, id string) *deadletter.Entry {
	t.Helper()
	var entry *deadletter.Entry
	testenv.Eventually(t, timeout, func() error {
		var err error
		entry, err = e.dlq.Get(context.Background(), id)
		return err
	})
	return entry
}

// streamEmpty waits until the work-queue stream holds no message: every job
// was acknowledged.
func (e *env) streamEmpty(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitStreamDrained(t, e.js, timeout)
}

// waitStreamDrained waits until the job stream of js holds no message.
func waitStreamDrained(t *testing.T, js jetstream.JetStream, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		s, err := js.Stream(context.Background(), "WAQ_SEND")
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d messages still in the stream", info.State.Msgs)
		}
		return nil
	})
}

func TestSendsAndAcks(t *testing.T) {
	e := setup(t)
	e.start(t, e.config())
	var ids []string
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("ok-%d", i)
		ids = append(ids, id)
		e.publish(t, textJob(id, "1555000"+fmt.Sprintf("%04d", i)))
	}
	e.waitSent(t, 20*time.Second, ids...)
	e.streamEmpty(t, 10*time.Second)
	st := e.fake.Stats(false)
	if st.Accepted != 50 || st.Duplicates != 0 {
		t.Errorf("simulator: accepted %d, duplicates %d", st.Accepted, st.Duplicates)
	}
	s, _ := e.ledger.Load(context.Background(), "ok-7")
	js, _ := e.fake.Job("ok-7")
	if len(js.WAMIDs) != 1 || !s.SentAs(js.WAMIDs[0]) {
		t.Fatalf("ledger %+v, simulator %v", s, js.WAMIDs)
	}
	if jid, _ := e.ledger.JobByWAMID(context.Background(), js.WAMIDs[0]); jid != "ok-7" {
		t.Errorf("wamid index -> %q", jid)
	}
	if strings.Contains(e.logs.String(), token) {
		t.Error("the access token appears in the logs")
	}
}

func TestRetry131000ThenSent(t *testing.T) {
	e := setup(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "flaky"}, Times: 2, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}}); err != nil {
		t.Fatal(err)
	}
	e.start(t, e.config())
	e.publish(t, textJob("flaky", "15551234567"))
	e.waitSent(t, 20*time.Second, "flaky")
	js, _ := e.fake.Job("flaky")
	if js.Sends != 3 || js.Accepted != 1 {
		t.Errorf("simulator saw %d sends, %d accepted; want 3, 1", js.Sends, js.Accepted)
	}
	h, err := e.ledger.History(context.Background(), "flaky")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].Outcome != "failed" || *h[0].Code != 131000 || h[0].FBTraceID == "" || h[0].Action != "retry" || h[2].Outcome != "sent" {
		t.Fatalf("history = %+v", h)
	}
	if _, err := e.dlq.Get(context.Background(), "flaky"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("a sent job is also parked: %v", err)
	}
}

func TestParkWindowAndTemplate(t *testing.T) {
	e := setup(t)
	_, err := e.fake.AddRules(
		fakegraph.Rule{Match: fakegraph.Match{JobID: "late"}, Respond: fakegraph.Response{Error: fakegraph.Code(131047)}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "tpl"}, Respond: fakegraph.Response{Error: fakegraph.Code(132001)}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.config())
	e.publish(t, textJob("late", "15551234567"), templateJob("tpl", "15557654321", "order_update"))
	late := e.waitParked(t, 20*time.Second, "late")
	if late.Reason != "window" || late.LastError == nil || *late.LastError.Code != 131047 || late.LastError.FBTraceID == "" ||
		late.LastError.Details == "" || late.LastError.HTTPStatus != 400 || late.To != "15551234567" || late.PhoneNumberID != pn {
		t.Errorf("window entry = %+v, last error %+v", late, late.LastError)
	}
	if len(late.Attempts) != 1 || late.TraceID != "" && len(late.TraceID) != 32 || late.Metadata["tenant"] != "acme" {
		t.Errorf("entry attempts %+v trace %q metadata %v", late.Attempts, late.TraceID, late.Metadata)
	}
	var job queue.Job
	if err := json.Unmarshal(late.Job, &job); err != nil || job.ID != "late" {
		t.Errorf("entry keeps the job as published: %s", late.Job)
	}
	tpl := e.waitParked(t, 20*time.Second, "tpl")
	if tpl.Reason != "template" || tpl.Template != "order_update" || tpl.Language != "en_US" {
		t.Errorf("template entry = %+v", tpl)
	}
	e.streamEmpty(t, 10*time.Second)
	// Parked jobs were sent once each and never again.
	for _, id := range []string{"late", "tpl"} {
		if js, _ := e.fake.Job(id); js.Sends != 1 {
			t.Errorf("%s: %d sends, want 1", id, js.Sends)
		}
		if s, _ := e.ledger.Load(context.Background(), id); s.Parked == "" || s.Sent() {
			t.Errorf("%s: ledger %+v", id, s)
		}
	}
}

func TestRetriesExhausted(t *testing.T) {
	e := setup(t)
	if _, err := e.fake.AddRules(fakegraph.Rule{Match: fakegraph.Match{JobID: "doomed"}, Respond: fakegraph.Response{Error: fakegraph.Code(131000)}}); err != nil {
		t.Fatal(err)
	}
	e.start(t, e.config())
	e.publish(t, textJob("doomed", "15551234567"))
	entry := e.waitParked(t, 20*time.Second, "doomed")
	if entry.Reason != "retries_exhausted" || len(entry.Attempts) != 4 {
		t.Fatalf("entry reason %s, %d attempts; want retries_exhausted after 4 (max_attempts)", entry.Reason, len(entry.Attempts))
	}
	if js, _ := e.fake.Job("doomed"); js.Sends != 4 {
		t.Errorf("%d sends, want 4", js.Sends)
	}
}

func TestTransportErrorsRetry(t *testing.T) {
	e := setup(t)
	_, err := e.fake.AddRules(
		fakegraph.Rule{Match: fakegraph.Match{JobID: "html"}, Times: 1, Respond: fakegraph.Response{Kind: fakegraph.KindHTML}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "cut"}, Times: 1, Respond: fakegraph.Response{Kind: fakegraph.KindCut}},
		fakegraph.Rule{Match: fakegraph.Match{JobID: "huge"}, Times: 1, Respond: fakegraph.Response{Kind: fakegraph.KindHuge}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, e.config())
	e.publish(t, textJob("html", "15551234567"), textJob("cut", "15551234568"), textJob("huge", "15551234569"))
	e.waitSent(t, 20*time.Second, "html", "cut", "huge")
	h, _ := e.ledger.History(context.Background(), "html")
	if len(h) != 2 || h[0].Code != nil || h[0].HTTPStatus != 502 || !strings.Contains(h[0].Error, "not_json") {
		t.Errorf("html history = %+v", h)
	}
}

func TestInvalidAndExpiredAreParkedUnsent(t *testing.T) {
	e := setup(t)
	e.start(t, e.config())
	// Raw bodies a careless producer might publish.
	nc, _ := e.nats.Connect(t)
	js, _ := jetstream.New(nc)
	for i, body := range []string{`not json at all`, `{"id":"bad-to","phone_number_id":"` + pn + `","message":{"messaging_product":"whatsapp","to":"+1 (555) 123-4567","type":"text","text":{"body":"x"}}}`} {
		msg := nats.NewMsg("waq.send." + pn)
		msg.Data = []byte(body)
		msg.Header.Set("Nats-Msg-Id", fmt.Sprintf("raw-%d", i))
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	// Without a Nats-Msg-Id, an invalid body keeps its own id when it can
	// be read ("order-196", not "invalid-196").
	msg := nats.NewMsg("waq.send." + pn)
	msg.Data = []byte(`{"id":"order-196","phone_number_id":"` + pn + `","message":"not an object"}`)
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	late := textJob("too-late", "15551234567")
	late.NotAfter = &past
	e.publish(t, late)

	raw := e.waitParked(t, 20*time.Second, "raw-0")
	if raw.Reason != "invalid" || string(raw.Raw) != "not json at all" || raw.Job != nil || !strings.Contains(raw.Problem, "not a JSON job") {
		t.Errorf("raw entry = %+v", raw)
	}
	bad := e.waitParked(t, 20*time.Second, "raw-1")
	if bad.Reason != "invalid" || !strings.Contains(bad.Problem, "message.to") || bad.Job == nil {
		t.Errorf("bad-to entry = %+v", bad)
	}
	if own := e.waitParked(t, 20*time.Second, "order-196"); own.Reason != "invalid" || own.Job == nil {
		t.Errorf("entry of a body with its own id = %+v", own)
	}
	exp := e.waitParked(t, 20*time.Second, "too-late")
	if exp.Reason != "expired" || exp.LastError != nil {
		t.Errorf("expired entry = %+v", exp)
	}
	e.streamEmpty(t, 10*time.Second)
	if st := e.fake.Stats(false); st.Requests != 0 {
		t.Errorf("invalid or expired jobs reached the API: %d requests", st.Requests)
	}
}

// TestSecondPublishIsNotSentAgain: the same id published past the
// duplicate window (here: with another Nats-Msg-Id) is acked unsent.
func TestSecondPublishIsNotSentAgain(t *testing.T) {
	e := setup(t)
	e.start(t, e.config())
	e.publish(t, textJob("once", "15551234567"))
	e.waitSent(t, 20*time.Second, "once")
	data, _ := json.Marshal(textJob("once", "15551234567"))
	msg := nats.NewMsg("waq.send." + pn)
	msg.Data = data
	msg.Header.Set("Nats-Msg-Id", "once-again")
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	e.streamEmpty(t, 10*time.Second)
	if js, _ := e.fake.Job("once"); js.Sends != 1 {
		t.Errorf("%d sends, want 1", js.Sends)
	}
}

// TestRedisDownHoldsJobs: while Redis is down nothing is acknowledged, the
// worker reports unready, and it resumes by itself.
func TestRedisDownHoldsJobs(t *testing.T) {
	e := setup(t)
	r := e.start(t, e.config())
	e.publish(t, textJob("before", "15551234567"))
	e.waitSent(t, 20*time.Second, "before")

	e.redis.Stop()
	// A job arrives while Redis is down: it must stay in the stream.
	e.publish(t, textJob("during", "15551234568"))
	testenv.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || !strings.Contains(string(body), `"redis"`) {
			return fmt.Errorf("readyz %d %s", resp.StatusCode, body)
		}
		return nil
	})
	s, _ := e.js.Stream(context.Background(), "WAQ_SEND")
	info, _ := s.Info(context.Background())
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages while Redis is down, want 1", info.State.Msgs)
	}
	e.redis.Start(t)
	e.waitSent(t, 30*time.Second, "during")
	e.streamEmpty(t, 10*time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	if st := e.fake.Stats(false); st.Duplicates != 0 {
		t.Errorf("%d duplicate sends", st.Duplicates)
	}
}

// TestGracefulStopFinishesInFlight: a stop while sends are in flight lets
// them finish and record their outcome; nothing is lost or sent twice.
func TestGracefulStopFinishesInFlight(t *testing.T) {
	e := setup(t)
	sc := e.fake.Scenario()
	sc.Latency = fakegraph.Latency{Base: fakegraph.Duration(300 * time.Millisecond)}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, fmt.Sprintf("g-%d", i))
		e.publish(t, textJob(ids[i], fmt.Sprintf("1555100%04d", i)))
	}
	cfg := e.config()
	cfg.Concurrency = 8
	r := e.start(t, cfg)
	testenv.Eventually(t, 10*time.Second, func() error {
		if e.fake.Stats(false).Requests == 0 {
			return errors.New("no send yet")
		}
		return nil
	})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// Every send that reached the simulator has its record.
	for _, s := range e.fake.Sends(1000) {
		st, _ := e.ledger.Load(context.Background(), s.JobID)
		if !st.Sent() {
			t.Errorf("job %s was accepted but has no sent record after a graceful stop", s.JobID)
		}
	}
	// A second worker finishes the rest, with no duplicates.
	e.start(t, e.config())
	e.waitSent(t, 30*time.Second, ids...)
	if st := e.fake.Stats(false); st.Duplicates != 0 {
		t.Errorf("%d duplicate sends", st.Duplicates)
	}
}

func TestHealthAndMetricsEndpoints(t *testing.T) {
	e := setup(t)
	r := e.start(t, e.config())
	e.publish(t, textJob("m1", "15551234567"))
	e.waitSent(t, 20*time.Second, "m1")
	// The counter moves just after the sent record is written: wait for it.
	testenv.Eventually(t, 5*time.Second, func() error {
		resp, err := http.Get(r.url + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `waq_sends_total{outcome="sent"`) {
			return errors.New("no sent counter yet")
		}
		return nil
	})
	for path, want := range map[string]string{"/healthz": `"alive"`, "/readyz": `"ready":true`, "/metrics": `waq_sends_total{outcome="sent",phone_number_id="106540352242922"} 1`} {
		resp, err := http.Get(r.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if strings.Contains(string(body), "15551234567") {
			t.Errorf("%s shows a recipient in clear", path)
		}
	}
}
