package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/deadletter/deadlettertest"
	"github.com/waqhq/waq/fleet"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/telemetry"
	"github.com/waqhq/waq/throttle"
	"github.com/waqhq/waq/worker"
)

func TestMain(m *testing.M) {
	// The embedded NATS server and HTTP keep-alive pools outlive a test by
	// design; they are not the console's goroutines.
	goleak.VerifyTestMain(m, testenv.ServerGoroutines()...)
}

// token is the admin token of the tests; no page or log line may hold it.
const token = "console-test-admin-token-5f3c9a"

const pn = "106540352242922"

// syncBuffer is a log sink that tests read while handlers write.
type syncBuffer = testenv.Buffer

// fixture is a console over a real Redis and NATS, with parked entries,
// a registry with the worker's metrics and a readiness with one pause.
type fixture struct {
	c       *Console
	srv     *httptest.Server
	store   *deadletter.Store
	stream  jetstream.Stream
	metrics *telemetry.Metrics // of the first worker, test-worker-1
	pub     *fleet.Publisher   // its publisher of counts
	// cons is the consumer's counts as each worker last read them (by id;
	// none until a test sets them).
	cons   map[string]fleet.Consumer
	rdb    *redis.Client
	redis  *testenv.Redis
	clock  *testenv.Clock // of sessions, holds and the fleet's minutes
	ledger *ledger.Ledger
	hasher *telemetry.RecipientHasher
	logs   *syncBuffer
	ready  worker.Readiness
	opts   Options // what New was given: a second console (worker) takes them too
}

func setup(t *testing.T, opts ...func(*Options)) *fixture {
	t.Helper()
	r := testenv.StartRedis(t)
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	stream, err := queue.EnsureStream(context.Background(), js, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: testenv.NewClock(time.Now()), logs: &syncBuffer{}, stream: stream, redis: r, cons: map[string]fleet.Consumer{}}
	f.store = deadletter.New(r.Client(t), deadletter.Options{Prefix: "con", Now: f.clock.Now})
	f.ledger = ledger.New(r.Client(t), ledger.Options{Prefix: "con"})
	f.hasher = telemetry.NewRecipientHasher([]byte("console test key"))
	f.rdb, f.redis = r.Client(t), r
	f.metrics, f.pub = f.worker(t, "test-worker-1")
	code := 190
	f.ready = worker.Readiness{Ready: true, Paused: []throttle.State{{Key: "pn:" + pn, PhoneNumberID: pn, Scope: "token", Reason: "190: access token expired", Code: &code, Since: f.clock.Now().Add(-7 * time.Minute)}},
		Throttled: []throttle.State{{Key: "rate", PhoneNumberID: "106540352242923", Scope: "number", Reason: "130429: rate lowered", Rate: 61.5, MPS: 80,
			Since: f.clock.Now().Add(-2 * time.Minute), Until: f.clock.Now().Add(90 * time.Second)}}}
	o := Options{
		Token: token, Store: f.store, Publisher: queue.NewProducer(js, queue.ProducerOptions{}), Fleet: fleet.NewReader(f.rdb, "con", f.clock.Now),
		Readiness: func() worker.Readiness { return f.ready },
		Ledger:    f.ledger, HashRecipient: f.hasher.Hash,
		TraceURL: "http://jaeger.test:16686/trace/{trace_id}", SessionTTL: time.Hour, Process: "test-worker-1",
		Now: f.clock.Now, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Redis: r.Client(t), KeyPrefix: "con",
	}
	for _, fn := range opts {
		fn(&o)
	}
	f.opts = o
	f.c = New(o)
	f.srv = httptest.NewServer(f.c)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		if strings.Contains(f.logs.String(), token) {
			t.Errorf("the admin token is in the log:\n%s", f.logs.String())
		}
	})
	f.park(t)
	return f
}

// worker is one more worker of the fleet: its metrics, and the publisher
// that adds them to the fleet's minutes (on the fixture's clock).
func (f *fixture) worker(t *testing.T, id string) (*telemetry.Metrics, *fleet.Publisher) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return telemetry.NewMetrics(reg), fleet.NewPublisher(f.rdb, reg, fleet.PublisherOptions{Prefix: "con", Worker: id, Every: time.Minute, Now: f.clock.Now,
		Consumer: func() fleet.Consumer { return f.cons[id] }})
}

// publish adds what the workers' counters grew by to the fleet's minutes.
func publish(t *testing.T, pubs ...*fleet.Publisher) {
	t.Helper()
	for _, p := range pubs {
		if err := p.Publish(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// park stores the fixture's entries (deadlettertest.ParkSamples): two window failures
// (free-form), a template failure and a 131000 given up on.
func (f *fixture) park(t *testing.T) {
	t.Helper()
	deadlettertest.ParkSamples(t, f.store, f.clock.Now())
}

func (f *fixture) parked(t *testing.T) int64 {
	t.Helper()
	return deadlettertest.Total(t, f.store)
}

func (f *fixture) published(t *testing.T) uint64 {
	t.Helper()
	info, err := f.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// client is a browser stand-in: it keeps one session cookie and never
// follows redirects, so that tests see them.
type client struct {
	t      *testing.T
	f      *fixture
	base   string // the console's URL; "" is the fixture's
	cookie *http.Cookie
	csrf   string
}

type resp struct {
	code   int
	body   string
	header http.Header
}

func (f *fixture) client(t *testing.T) *client { return &client{t: t, f: f} }

func (c *client) do(method, path string, form url.Values, header ...string) resp {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	base := c.base
	if base == "" {
		base = c.f.srv.URL
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, ck := range res.Cookies() {
		if ck.Name == cookieName {
			if ck.MaxAge < 0 {
				c.cookie = nil
			} else {
				c.cookie = ck
			}
		}
	}
	r := resp{code: res.StatusCode, body: string(b), header: res.Header}
	if strings.Contains(r.body, token) {
		c.t.Errorf("%s %s: the admin token is in the page", method, path)
	}
	if r.code >= 500 && r.code != http.StatusServiceUnavailable {
		c.t.Errorf("%s %s: %d", method, path, r.code)
	}
	if m := csrfRE.FindStringSubmatch(r.body); m != nil {
		c.csrf = m[1]
	}
	return r
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(path string) resp { c.t.Helper(); return c.do("GET", path, nil) }

func (c *client) post(path string, form url.Values) resp {
	c.t.Helper()
	return c.do("POST", path, form)
}

// signIn signs the client in and reads its CSRF token from the overview.
func (c *client) signIn() {
	c.t.Helper()
	r := c.post(Prefix+"login", url.Values{"token": {token}})
	if r.code != http.StatusSeeOther || c.cookie == nil {
		c.t.Fatalf("sign-in: %d, cookie %v", r.code, c.cookie)
	}
	if r := c.get(Prefix); r.code != 200 || c.csrf == "" {
		c.t.Fatalf("overview after sign-in: %d", r.code)
	}
}

// formOf reads the hidden fields of the form with this id in a page.
func formOf(t *testing.T, body, id string) url.Values {
	t.Helper()
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no form %q in the page", id)
	}
	end := strings.Index(body[i:], "</form>")
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body[i:i+end], -1) {
		v.Add(m[1], htmlUnescape(m[2]))
	}
	return v
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&#43;", "+").Replace(s)
}
