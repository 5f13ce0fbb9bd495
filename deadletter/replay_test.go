package deadletter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

// failingPublisher refuses every publish.
type failingPublisher struct{}

func (failingPublisher) PublishWith(context.Context, *queue.Job, queue.PublishOptions) (string, error) {
	return "", errors.New("nats: no responders available for request")
}

// flakyPublisher publishes through the real producer k times, then fails:
// NATS going away half-way through a replay.
type flakyPublisher struct {
	pub       deadletter.Publisher
	k         int64
	n         atomic.Int64
	mu        sync.Mutex
	published []string
}

func (p *flakyPublisher) PublishWith(ctx context.Context, job *queue.Job, opts queue.PublishOptions) (string, error) {
	if p.n.Add(1) > p.k {
		return "", errors.New("nats: connection closed")
	}
	id, err := p.pub.PublishWith(ctx, job, opts)
	if err == nil {
		p.mu.Lock()
		p.published = append(p.published, id)
		p.mu.Unlock()
	}
	return id, err
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	mixed(t, f)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	n := testenvNATS(t)
	pub := queue.NewProducer(n.js, queue.ProducerOptions{TracerProvider: tp})

	// A dry run says what would happen and does nothing.
	var dry collect[deadletter.ReplayResult]
	tot, err := f.store.Replay(ctx, pub, deadletter.ReplayRequest{Filter: deadletter.Filter{Reason: "window"}, DryRun: true}, dry.emit)
	if err != nil || tot.Done != 3 || len(dry.all()) != 3 || dry.all()[0].Replayed || !dry.all()[0].DryRun {
		t.Fatalf("dry run: %+v %+v %v", tot, dry.all(), err)
	}
	if msgs := messages(t, n.stream); len(msgs) != 0 {
		t.Fatalf("a dry run published %d messages", len(msgs))
	}

	// By filter: the two window entries of the default number.
	var res collect[deadletter.ReplayResult]
	tot, err = f.store.Replay(ctx, pub, deadletter.ReplayRequest{Filter: deadletter.Filter{Reason: "window", PhoneNumberID: "106540352242922"}}, res.emit)
	if err != nil || tot.Done != 2 || tot.Failed != 0 {
		t.Fatalf("replay: %+v %v", tot, err)
	}
	got := res.all()
	sort.Slice(got, func(a, b int) bool { return got[a].ID < got[b].ID })
	if len(got) != 2 || got[0].ID != "w1" || !got[0].Replayed || got[0].Error != "" || got[0].Generation != 1 {
		t.Fatalf("results %+v", got)
	}
	msgs := messages(t, n.stream)
	if len(msgs) != 2 {
		t.Fatalf("%d messages on the stream, want 2", len(msgs))
	}
	for _, m := range msgs {
		job, _, err := queue.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(queue.HeaderReplay) != "1" || m.Header.Get(queue.HeaderMsgID) != job.ID+"#r1" || job.Metadata["tenant"] != "acme" || m.Subject != "waq.send.106540352242922" {
			t.Errorf("message %s: headers %v, job %+v", m.Subject, m.Header, job)
		}
	}
	for _, id := range []string{"w1", "w2"} {
		if _, err := f.store.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("%s still parked after its replay: %v", id, err)
		}
	}
	if _, err := f.store.Get(ctx, "w3"); err != nil {
		t.Errorf("w3 (another number) was touched: %v", err)
	}
	// The PRODUCER spans link to the trace that parked each job.
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	for _, s := range spans {
		if len(s.Links()) != 1 || s.Links()[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("span %s links %+v", s.Name(), s.Links())
		}
	}
	// Stats follow: the counters lost the replayed entries.
	st, _ := f.store.Stats(ctx, deadletter.Filter{Reason: "window"})
	if st.Total != 1 {
		t.Errorf("window entries after replay: %d", st.Total)
	}

	// By ids, with one unknown and one body that is not a job.
	bad := entry(spec{id: "raw", reason: "invalid", at: f.clock.Now()})
	bad.Job, bad.Raw = nil, []byte("not json")
	if err := f.store.Park(ctx, bad); err != nil {
		t.Fatal(err)
	}
	var res2 collect[deadletter.ReplayResult]
	tot, err = f.store.Replay(ctx, pub, deadletter.ReplayRequest{IDs: []string{"t1", "nope", "raw"}}, res2.emit)
	if err != nil || tot.Done != 1 || tot.Failed != 2 {
		t.Fatalf("replay by ids: %+v %+v %v", tot, res2.all(), err)
	}
	byID := map[string]deadletter.ReplayResult{}
	for _, r := range res2.all() {
		byID[r.ID] = r
	}
	if !byID["t1"].Replayed || byID["nope"].Replayed || !strings.Contains(byID["nope"].Error, "no dead-letter entry") ||
		byID["raw"].Replayed || !strings.Contains(byID["raw"].Error, "not a JSON job") {
		t.Errorf("results %+v", byID)
	}
	if _, err := f.store.Get(ctx, "raw"); err != nil {
		t.Errorf("an entry that could not be replayed was removed: %v", err)
	}
}

// TestReplayInterrupted: a publisher that fails after k publishes leaves
// the first k entries published and gone and the rest still parked, none
// both and none neither.
func TestReplayInterrupted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const total, k = 40, 13
	for i := 0; i < total; i++ {
		f.park(t, spec{id: fmt.Sprintf("job-%02d", i), reason: "window", code: 131047, to: fmt.Sprintf("155500000%02d", i)})
	}
	n := testenvNATS(t)
	pub := &flakyPublisher{pub: queue.NewProducer(n.js, queue.ProducerOptions{}), k: k}
	var res collect[deadletter.ReplayResult]
	tot, err := f.store.Replay(ctx, pub, deadletter.ReplayRequest{Filter: deadletter.Filter{Reason: "window"}, Concurrency: 4}, res.emit)
	if err == nil || !strings.Contains(err.Error(), "publishes in a row failed") {
		t.Errorf("replay error %v, want it to stop on the failing publisher", err)
	}
	if tot.Done != k {
		t.Errorf("done %d, want %d", tot.Done, k)
	}
	published := map[string]bool{}
	for _, m := range messages(t, n.stream) {
		job, _, _ := queue.Decode(m.Data)
		published[job.ID] = true
	}
	if len(published) != k {
		t.Errorf("%d jobs on the stream, want %d", len(published), k)
	}
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("job-%02d", i)
		_, err := f.store.Get(ctx, id)
		parked := err == nil
		if parked == published[id] {
			t.Errorf("%s: parked %v, published %v: want exactly one", id, parked, published[id])
		}
	}
	for _, r := range res.all() {
		if r.Replayed != published[r.ID] || (r.Error == "") != r.Replayed {
			t.Errorf("result %+v does not match the stream", r)
		}
	}
	// Replaying the rest with a working publisher finishes the job.
	var rest collect[deadletter.ReplayResult]
	tot, err = f.store.Replay(ctx, pub.pub, deadletter.ReplayRequest{Filter: deadletter.Filter{Reason: "window"}}, rest.emit)
	if err != nil || tot.Done != total-k {
		t.Errorf("second replay: %+v %v", tot, err)
	}
	if msgs := messages(t, n.stream); len(msgs) != total {
		t.Errorf("%d messages, want %d", len(msgs), total)
	}
}

// TestReplayTwice: replaying the same entry twice (the second time from a
// copy read before the first removed it) publishes it once.
func TestReplayTwice(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	n := testenvNATS(t)
	pub := queue.NewProducer(n.js, queue.ProducerOptions{})
	sp := spec{id: "twice", reason: "window", code: 131047, gen: 2}
	f.park(t, sp)
	for round := 0; round < 2; round++ {
		var res collect[deadletter.ReplayResult]
		tot, err := f.store.Replay(ctx, pub, deadletter.ReplayRequest{IDs: []string{"twice"}}, res.emit)
		if err != nil || tot.Done != 1 || res.all()[0].Generation != 3 {
			t.Fatalf("round %d: %+v %+v %v", round, tot, res.all(), err)
		}
		// The same generation parked again, as a replay that was read
		// before the first one removed it would see it.
		f.park(t, sp)
	}
	msgs := messages(t, n.stream)
	if len(msgs) != 1 || msgs[0].Header.Get(queue.HeaderMsgID) != "twice#r3" {
		t.Fatalf("%d messages on the stream, want 1 (#r3)", len(msgs))
	}
}

// racingPublisher parks a newer generation of the entry while its replay
// is being published: a worker that took the replayed job and parked it
// again before the replay removed the old entry.
type racingPublisher struct {
	pub   deadletter.Publisher
	store *deadletter.Store
	t     *testing.T
}

func (p racingPublisher) PublishWith(ctx context.Context, job *queue.Job, opts queue.PublishOptions) (string, error) {
	id, err := p.pub.PublishWith(ctx, job, opts)
	if err != nil {
		return id, err
	}
	e := entry(spec{id: job.ID, reason: "window", code: 131047, gen: opts.Replay, at: t0})
	if err := p.store.Park(ctx, e); err != nil {
		return "", err
	}
	return id, nil
}

func TestReplayKeepsNewerGeneration(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	n := testenvNATS(t)
	f.park(t, spec{id: "race", reason: "window", code: 131047, at: t0.Add(-1)})
	var res collect[deadletter.ReplayResult]
	pub := racingPublisher{pub: queue.NewProducer(n.js, queue.ProducerOptions{}), store: f.store, t: t}
	if _, err := f.store.Replay(ctx, pub, deadletter.ReplayRequest{IDs: []string{"race"}}, res.emit); err != nil {
		t.Fatal(err)
	}
	if r := res.all(); len(r) != 1 || !r[0].Replayed {
		t.Fatalf("results %+v", r)
	}
	e, err := f.store.Get(ctx, "race")
	if err != nil || e.Replayed != 1 {
		t.Fatalf("the newer generation was removed: %+v %v", e, err)
	}
	if st, _ := f.store.Stats(ctx, deadletter.Filter{}); st.Total != 1 {
		t.Errorf("stats total %d, want 1", st.Total)
	}
}

func TestReplayAsTemplate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	n := testenvNATS(t)
	pub := queue.NewProducer(n.js, queue.ProducerOptions{})
	f.park(t,
		spec{id: "free", reason: "window", code: 131047, to: "4915112345678", text: "hello again"},
		spec{id: "tpl", reason: "window", code: 131047, tpl: "order_update"},
	)
	req, err := deadletter.Params{Reason: "window", AsTemplate: "reengage", Language: "de"}.ReplayRequest()
	if err != nil {
		t.Fatal(err)
	}
	var res collect[deadletter.ReplayResult]
	tot, err := f.store.Replay(ctx, pub, req, res.emit)
	if err != nil || tot.Done != 1 || tot.Failed != 1 {
		t.Fatalf("%+v %+v %v", tot, res.all(), err)
	}
	for _, r := range res.all() {
		switch r.ID {
		case "free":
			if !r.Replayed {
				t.Errorf("free-form: %+v", r)
			}
		case "tpl":
			if r.Replayed || !strings.Contains(r.Error, "already template") {
				t.Errorf("template entry: %+v", r)
			}
		}
	}
	if _, err := f.store.Get(ctx, "tpl"); err != nil {
		t.Errorf("the refused entry is not parked: %v", err)
	}
	msgs := messages(t, n.stream)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	job, sum, err := queue.Decode(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(job.Message, &m)
	if sum.Type != "template" || sum.Template != "reengage" || sum.Language != "de" || sum.To != "4915112345678" ||
		m["recipient_type"] != "individual" || m["messaging_product"] != "whatsapp" || m["text"] != nil || job.ID != "free" {
		t.Errorf("replayed message %s", job.Message)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, []string{"messaging_product", "recipient_type", "template", "to", "type"}) {
		t.Errorf("message keys %v", keys)
	}
}

// TestReplayAsTemplateBSUID: a free-form message to a business-scoped user
// ID becomes a template message to the same recipient, with no to.
func TestReplayAsTemplateBSUID(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	n := testenvNATS(t)
	pub := queue.NewProducer(n.js, queue.ProducerOptions{})
	f.park(t, spec{id: "freeb", reason: "window", code: 131047, bsuid: "US.13491208655302741918", text: "hello again"})
	req, err := deadletter.Params{Reason: "window", AsTemplate: "reengage", Language: "de"}.ReplayRequest()
	if err != nil {
		t.Fatal(err)
	}
	var res collect[deadletter.ReplayResult]
	if tot, err := f.store.Replay(ctx, pub, req, res.emit); err != nil || tot.Done != 1 {
		t.Fatalf("%+v %+v %v", tot, res.all(), err)
	}
	msgs := messages(t, n.stream)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	job, sum, err := queue.Decode(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Type != "template" || sum.Recipient != "US.13491208655302741918" || sum.To != "" {
		t.Errorf("replayed message %s", job.Message)
	}
}

// TestReplayRestoresHistory: a parked job's history is in its entry (the
// ledger drops it on parking); a replay gives it back to the ledger before
// the publish, so that the next entry has every attempt; a history the
// ledger still has (a job parked before it was dropped) is kept.
func TestReplayRestoresHistory(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.park(t, spec{id: "h1", reason: "window", code: 131047}, spec{id: "h2", reason: "window", code: 131047})
	led := ledger.New(f.rdb, ledger.Options{Prefix: "test"})
	old := ledger.Attempt{At: t0, Outcome: "failed", Action: "retry", FBTraceID: "kept"}
	if _, err := led.RecordAttempt(ctx, "h2", 0, old, ledger.CountAttempt); err != nil {
		t.Fatal(err)
	}
	n := testenvNATS(t)
	var res collect[deadletter.ReplayResult]
	if tot, err := f.store.Replay(ctx, queue.NewProducer(n.js, queue.ProducerOptions{}), deadletter.ReplayRequest{IDs: []string{"h1", "h2"}}, res.emit); err != nil || tot.Done != 2 {
		t.Fatalf("replay: %+v %v %+v", tot, err, res.all())
	}
	if h, err := led.History(ctx, "h1"); err != nil || len(h) != 1 || h[0].FBTraceID != "fb-h1" || h[0].Action != "park" {
		t.Errorf("h1 history after the replay: %+v %v", h, err)
	}
	if h, err := led.History(ctx, "h2"); err != nil || len(h) != 1 || h[0].FBTraceID != "kept" {
		t.Errorf("h2 history after the replay: %+v %v", h, err)
	}
}
