package deadletter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a store over a fresh redis-server, with a clock.
type fixture struct {
	store *deadletter.Store
	rdb   *redis.Client
	clock *testenv.Clock // the store's
}

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) *fixture {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	c := testenv.NewClock(t0)
	s := deadletter.New(rdb, deadletter.Options{Prefix: "test", Retention: 72 * time.Hour, Now: c.Now})
	return &fixture{store: s, rdb: rdb, clock: c}
}

// spec describes an entry to park.
type spec struct {
	id, reason string
	code       int // 0: none
	pn, tpl    string
	to         string
	bsuid      string // recipient instead of to
	at         time.Time
	gen        int
	text       string // a free-form message instead of a template
}

// entry builds the entry the worker would park for sp.
func entry(sp spec) *deadletter.Entry {
	if sp.pn == "" {
		sp.pn = "106540352242922"
	}
	if sp.to == "" && sp.bsuid == "" {
		sp.to = "15551234567"
	}
	addr := fmt.Sprintf(`"to":%q`, sp.to)
	if sp.bsuid != "" {
		addr = fmt.Sprintf(`"recipient":%q`, sp.bsuid)
	}
	var msg string
	if sp.tpl != "" {
		msg = fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual",%s,"type":"template","template":{"name":%q,"language":{"code":"en_US"}}}`, addr, sp.tpl)
	} else {
		text := sp.text
		if text == "" {
			text = "your order shipped"
		}
		msg = fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual",%s,"type":"text","text":{"body":%q}}`, addr, text)
	}
	job, _ := json.Marshal(map[string]any{"id": sp.id, "phone_number_id": sp.pn, "message": json.RawMessage(msg), "metadata": map[string]string{"tenant": "acme"}})
	e := &deadletter.Entry{
		ID: sp.id, Reason: sp.reason, Problem: "the policy parks it", Job: job, Subject: "waq.send." + sp.pn,
		PhoneNumberID: sp.pn, To: sp.to, Recipient: sp.bsuid, Template: sp.tpl, ParkedAt: sp.at, Replayed: sp.gen,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
	}
	if sp.tpl != "" {
		e.MessageType, e.Language = "template", "en_US"
	} else {
		e.MessageType = "text"
	}
	le := &deadletter.LastError{HTTPStatus: 400, FBTraceID: "fb-" + sp.id, Title: "Re-engagement message", Message: "Re-engagement message", Details: "more than 24 hours"}
	if sp.code != 0 {
		c := sp.code
		le.Code = &c
	} else {
		le.HTTPStatus, le.Transport, le.Title, le.Message, le.Details = 0, "timeout", "", "timeout", ""
	}
	e.LastError = le
	a := ledger.Attempt{At: sp.at.Add(-time.Minute), Outcome: "failed", Action: "park", HTTPStatus: le.HTTPStatus, Code: le.Code, FBTraceID: le.FBTraceID,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}
	e.Attempts = []ledger.Attempt{a}
	return e
}

func (f *fixture) park(t *testing.T, specs ...spec) {
	t.Helper()
	for _, sp := range specs {
		if sp.at.IsZero() {
			sp.at = f.clock.Now()
		}
		if err := f.store.Park(context.Background(), entry(sp)); err != nil {
			t.Fatal(err)
		}
	}
}

// natsFixture is an embedded NATS server with the job stream.
type natsFixture struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

func testenvNATS(t *testing.T) *natsFixture {
	t.Helper()
	n := testenv.StartNATS(t)
	_, js := n.Connect(t)
	s, err := queue.EnsureStream(context.Background(), js, queue.StreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &natsFixture{js: js, stream: s}
}

// messages returns every message on the stream, in order.
func messages(t *testing.T, s jetstream.Stream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// collect gathers emitted results.
type collect[T any] struct {
	mu  sync.Mutex
	out []T
}

func (c *collect[T]) emit(r T) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, r)
	return nil
}
func (c *collect[T]) all() []T { c.mu.Lock(); defer c.mu.Unlock(); return append([]T(nil), c.out...) }

func ids(es []*deadletter.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func ptr(n int) *int { return &n }
