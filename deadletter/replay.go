package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/waqhq/waq/queue"
)

// Publisher publishes a job on the stream and returns once JetStream has
// acknowledged it; *queue.Producer is one.
type Publisher interface {
	PublishWith(ctx context.Context, job *queue.Job, opts queue.PublishOptions) (string, error)
}

// ReplayRequest says what to replay: IDs, or every entry Filter selects.
// Build it with Params.ReplayRequest, which refuses what makes no sense.
type ReplayRequest struct {
	IDs    []string
	Filter Filter
	// DryRun reports what would be replayed, and what could not be,
	// without publishing or removing anything.
	DryRun bool
	// AsTemplate and Language turn a free-form message into the template
	// message AsTemplate in Language, to the same recipient (what a window
	// failure needs); an entry that is not free-form is refused.
	AsTemplate string
	Language   string
	// Concurrency is the publishes in flight. Defaults to 16.
	Concurrency int
}

// ReplayResult is the outcome of one entry, the line `waq dlq replay
// --json` prints.
type ReplayResult struct {
	ID string `json:"id"`
	// Replayed is true once JetStream acknowledged the job's publish.
	Replayed bool `json:"replayed"`
	// Error says why the entry was not replayed (it is still parked), or,
	// with Replayed, that the entry could not be removed after the publish.
	Error string `json:"error,omitempty"`
	// Generation is the replay generation the job was (or would be)
	// published with.
	Generation int  `json:"generation,omitempty"`
	DryRun     bool `json:"dry_run,omitempty"`
	// Brief is the entry acted on (absent when there is none).
	Brief
	// Warning says, when the replay runs, that it cannot help or helps
	// only after a fix (policy.Advice.ReplayWarning): a missing template
	// replayed as it is fails the same way.
	Warning string `json:"warning,omitempty"`
}

// Totals counts the outcomes of an operation.
type Totals struct {
	Done   int `json:"done"`
	Failed int `json:"failed"`
}

// maxPublishFailures stops a replay after this many publishes in a row
// failed: NATS is down or refusing, and every further entry would wait for
// its own timeout to fail the same way.
const maxPublishFailures = 5

// publishTries and publishBound bound the publish of one entry.
const (
	publishTries = 3
	publishBound = 30 * time.Second
)

// Replay publishes the selected entries again, each with replay generation
// entry.Replayed+1 (a new attempt count for the worker), a span link to
// the trace that parked it, and the same job id, so that replaying one
// entry twice publishes it once (JetStream de-duplicates on the id and the
// generation). An entry is removed only after JetStream acknowledged its
// publish, and only if that generation is still the one parked: an entry
// that the worker parked again meanwhile stays. Interrupted at any moment,
// every entry is either replayed or still parked.
//
// emit receives one result per entry, from one goroutine at a time; an
// error from emit stops the replay. The error returned is about the
// operation as a whole (stopped early, Redis down), not single entries.
func (s *Store) Replay(ctx context.Context, pub Publisher, req ReplayRequest, emit func(ReplayResult) error) (Totals, error) {
	var (
		tot     Totals
		mu      sync.Mutex
		inRow   int
		stopErr error
	)
	if req.Concurrency <= 0 {
		req.Concurrency = 16
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	report := func(r ReplayResult) {
		mu.Lock()
		defer mu.Unlock()
		if r.Error != "" {
			tot.Failed++
		} else {
			tot.Done++
		}
		if err := emit(r); err != nil && stopErr == nil {
			stopErr = err
			cancel()
		}
	}
	publishFailed := func(failed bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !failed {
			inRow = 0
			return
		}
		if inRow++; inRow >= maxPublishFailures && stopErr == nil {
			stopErr = fmt.Errorf("stopped after %d publishes in a row failed, the rest is still parked: %w", inRow, err)
			cancel()
		}
	}

	work := make(chan located)
	var wg sync.WaitGroup
	for i := 0; i < req.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				s.replayOne(ctx, pub, req, l, report, publishFailed)
			}
		}()
	}
	feed := func(l located) bool {
		select {
		case work <- l:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var err error
	if len(req.IDs) > 0 {
		err = s.feedIDs(ctx, req.IDs, feed, func(id, why string) { report(ReplayResult{ID: id, Error: why, DryRun: req.DryRun}) })
	} else {
		err = s.scan(ctx, req.Filter, "", replayField, func(rows []row) (bool, error) {
			for _, r := range rows {
				e, err := decodeEntry([]byte(r.fields[5]))
				if err != nil {
					report(ReplayResult{ID: r.id, Error: "stored entry does not decode: " + err.Error()})
					continue
				}
				if !feed(located{e, r.base}) {
					return false, nil
				}
			}
			return true, nil
		})
	}
	close(work)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if stopErr != nil {
		return tot, fmt.Errorf("replay: %w", stopErr)
	}
	if err != nil {
		return tot, fmt.Errorf("replay: %w", err)
	}
	if ctx.Err() != nil {
		return tot, fmt.Errorf("replay: %w", ctx.Err())
	}
	return tot, nil
}

// located is an entry and the base it was read from.
type located struct {
	e    *Entry
	base string
}

// notAttempted is the error of an entry a stopped replay did not reach.
const notAttempted = "not attempted, still parked: the replay stopped"

// feedIDs loads the entries of ids in pipelined batches and feeds those
// that exist and have not expired; missing reports the others.
func (s *Store) feedIDs(ctx context.Context, ids []string, feed func(located) bool, missing func(id, why string)) error {
	cutoff := s.now().Add(-s.retention)
	for len(ids) > 0 {
		n := min(len(ids), scanBatch)
		batch := ids[:n]
		ids = ids[n:]
		entries, bases, err := s.getMany(ctx, batch)
		if err != nil {
			return err
		}
		for i, e := range entries {
			switch {
			case e == nil:
				missing(batch[i], ErrNotFound.Error())
			case e.ParkedAt.Before(cutoff):
				missing(batch[i], ErrNotFound.Error()+" (expired)")
			default:
				if !feed(located{e, bases[i]}) {
					// Stopped: every id still gets its line.
					for _, id := range append(batch[i:], ids...) {
						missing(id, notAttempted)
					}
					return nil
				}
			}
		}
	}
	return nil
}

// replayOne replays one entry and reports its outcome.
func (s *Store) replayOne(ctx context.Context, pub Publisher, req ReplayRequest, l located, report func(ReplayResult), publishFailed func(bool, error)) {
	e := l.e
	gen := e.Replayed + 1
	res := ReplayResult{ID: e.ID, Generation: gen, DryRun: req.DryRun, Brief: e.Brief(), Warning: e.Advice().ReplayWarning(req.AsTemplate != "")}
	job, err := e.replayJob(req.AsTemplate, req.Language, s.now())
	if err != nil {
		res.Error = err.Error()
		report(res)
		return
	}
	if req.DryRun {
		report(res)
		return
	}
	if ctx.Err() != nil {
		res.Error = notAttempted
		report(res)
		return
	}
	// A publish once begun is seen through, stop or not: cancelled half-way
	// it may be stored without its ack, and the entry would be both
	// published and parked. A failed publish is tried again with the same
	// de-duplication id, which JetStream answers with the first one's ack
	// when it had stored it.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), publishBound)
	defer pcancel()
	// The job's history went when it was parked (the entry holds it): it
	// goes on from there, so that the next entry has every attempt.
	if err := s.ledger.RestoreHistory(pctx, e.ID, e.Attempts); err != nil {
		res.Error = "not published, still parked: " + err.Error()
		report(res)
		return
	}
	opts := queue.PublishOptions{Replay: gen, Links: e.links()}
	for try := 0; try < publishTries; try++ {
		if _, err = pub.PublishWith(pctx, job, opts); err == nil || pctx.Err() != nil {
			break
		}
	}
	if err != nil {
		publishFailed(true, err)
		res.Error = "not published, still parked: " + err.Error()
		report(res)
		return
	}
	publishFailed(false, nil)
	res.Replayed = true
	// JetStream has the job: remove the entry even when the replay is
	// being stopped, so that it is not both published and parked.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.remove(rctx, []string{l.base}, e.ID, e.Replayed); err != nil {
		// The job is on the stream; the worker records its new outcome
		// (a newer entry replaces this one), and replaying this entry
		// again publishes nothing new within the duplicate window.
		res.Error = "published, but the entry could not be removed: " + err.Error()
	}
	report(res)
}

// replayJob is the job to publish again.
func (e *Entry) replayJob(asTemplate, language string, now time.Time) (*queue.Job, error) {
	if len(e.Job) == 0 {
		return nil, errors.New("the parked body is not a JSON job and cannot be replayed; fix the producer, then purge it")
	}
	job, sum, err := queue.Decode(e.Job)
	if err != nil {
		return nil, fmt.Errorf("the parked job cannot be replayed as it is: %v", err)
	}
	if job.Expired(now) {
		return nil, fmt.Errorf("its not_after (%s) has passed, so the worker would park it as expired again; send it anew", job.NotAfter.UTC().Format(time.RFC3339))
	}
	if asTemplate != "" {
		if sum.Type == "template" {
			return nil, fmt.Errorf("--as-template turns a free-form message into a template; this one is already template %q", sum.Template)
		}
		msg, err := templateMessage(job.Message, asTemplate, language)
		if err != nil {
			return nil, err
		}
		job.Message = msg
	}
	return job, nil
}

// templateMessage rewrites a free-form message object into a template
// message to the same recipient: messaging_product, recipient_type, to (or
// recipient) and biz_opaque_callback_data stay; the type and its payload (and any reply
// context, which belonged to the conversation the window closed) go.
func templateMessage(msg json.RawMessage, name, language string) (json.RawMessage, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(msg, &in); err != nil {
		return nil, fmt.Errorf("message is not a JSON object: %v", err)
	}
	type lang struct {
		Code string `json:"code"`
	}
	type tpl struct {
		Name     string `json:"name"`
		Language lang   `json:"language"`
	}
	out := struct {
		MessagingProduct json.RawMessage `json:"messaging_product"`
		RecipientType    json.RawMessage `json:"recipient_type,omitempty"`
		To               json.RawMessage `json:"to,omitempty"`
		Recipient        json.RawMessage `json:"recipient,omitempty"`
		BizOpaque        json.RawMessage `json:"biz_opaque_callback_data,omitempty"`
		Type             string          `json:"type"`
		Template         tpl             `json:"template"`
	}{
		MessagingProduct: in["messaging_product"],
		RecipientType:    in["recipient_type"],
		To:               in["to"],
		Recipient:        in["recipient"],
		BizOpaque:        in["biz_opaque_callback_data"],
		Type:             "template",
		Template:         tpl{Name: name, Language: lang{Code: language}},
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("build template message: %v", err)
	}
	if _, err := queue.SummarizeMessage(b); err != nil {
		return nil, fmt.Errorf("template message: %v", err)
	}
	return b, nil
}

// links are the span links of a replay: the attempt that parked the entry,
// and the job's first trace when that is another one (an entry replayed
// before was parked in the trace of its replay).
func (e *Entry) links() []trace.Link {
	var out []trace.Link
	add := func(traceID, spanID, why string) {
		tid, err := trace.TraceIDFromHex(traceID)
		if err != nil {
			return
		}
		sid, err := trace.SpanIDFromHex(spanID)
		if err != nil {
			return
		}
		for _, l := range out {
			if l.SpanContext.TraceID() == tid {
				return
			}
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
		out = append(out, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("waq.link", why)}})
	}
	add(e.TraceID, e.SpanID, "parked attempt")
	for _, a := range e.Attempts {
		if a.TraceID != "" {
			add(a.TraceID, a.SpanID, "first attempt")
			break
		}
	}
	return out
}
