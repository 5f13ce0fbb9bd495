package fakegraph

import (
	"context"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WebhookStats counts status webhook deliveries.
type WebhookStats struct {
	// Scheduled counts webhooks planned (duplicates included).
	Scheduled int64 `json:"scheduled"`
	// Delivered counts deliveries the receiver answered with 200.
	Delivered int64 `json:"delivered"`
	// Retried counts redeliveries after an answer other than 200.
	Retried int64 `json:"retried"`
	// Failed counts webhooks given up after the last retry.
	Failed int64 `json:"failed"`
	// Dropped counts webhooks not scheduled because the queue was full,
	// or abandoned by a reset or Close.
	Dropped int64 `json:"dropped"`
	// Duplicates counts the extra copies delivered on purpose.
	Duplicates int64 `json:"duplicates"`
	// ByStatus counts delivered webhooks by status (sent, delivered, read,
	// failed) and "inbound" for simulated customer messages.
	ByStatus map[string]int64 `json:"by_status"`
	// Pending is the deliveries waiting for their time or a worker (a
	// message's later statuses wait behind its first and are not counted).
	Pending int `json:"pending"`
	// Recent are the latest delivery attempts (GET /_fake/webhooks only).
	Recent []WebhookDelivery `json:"recent,omitempty"`
}

// WebhookDelivery is one delivery attempt of a webhook.
type WebhookDelivery struct {
	Time    time.Time `json:"time"`
	WAMID   string    `json:"wamid,omitempty"`
	Status  string    `json:"status"`
	Code    *int      `json:"code,omitempty"`
	Attempt int       `json:"attempt"`
	Copy    int       `json:"copy,omitempty"`
	// HTTPStatus is the receiver's answer; 0 when there was none.
	HTTPStatus int    `json:"http_status"`
	Error      string `json:"error,omitempty"`
}

const (
	hookWorkers    = 8
	maxHookPending = 100000
	hookRecent     = 200
)

// hookRunner delivers webhooks: a scheduler goroutine hands due webhooks to
// a few workers. They start with the first webhook and stop on close.
type hookRunner struct {
	s      *Server
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup
	work   chan *hookJob
	wake   chan struct{}
	gen    atomic.Int64

	mu      sync.Mutex
	pending hookHeap
	warned  bool
	started bool
	closed  bool

	scheduled, delivered, retried, failed, dropped, dups atomic.Int64
	byStatus                                             sync.Map // string → *atomic.Int64

	recentMu sync.Mutex
	recent   []WebhookDelivery
}

func newHookRunner(s *Server) *hookRunner {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hookRunner{s: s, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		work: make(chan *hookJob), wake: make(chan struct{}, 1), client: s.cfg.HTTPClient}
	if h.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = hookWorkers * 2
		h.client = &http.Client{Transport: tr}
	}
	return h
}

func (h *hookRunner) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	close(h.done)
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	for _, j := range h.pending {
		h.dropped.Add(j.chain())
	}
	h.pending = nil
	h.mu.Unlock()
	if tr, ok := h.client.Transport.(*http.Transport); ok && h.s.cfg.HTTPClient == nil {
		tr.CloseIdleConnections()
	}
}

// reset drops the pending webhooks and zeroes the counters.
func (h *hookRunner) reset() {
	h.gen.Add(1)
	h.mu.Lock()
	h.pending = nil
	h.mu.Unlock()
	for _, c := range []*atomic.Int64{&h.scheduled, &h.delivered, &h.retried, &h.failed, &h.dropped, &h.dups} {
		c.Store(0)
	}
	h.byStatus.Clear()
	h.recentMu.Lock()
	h.recent = nil
	h.recentMu.Unlock()
}

func (h *hookRunner) stats() WebhookStats {
	st := WebhookStats{
		Scheduled: h.scheduled.Load(), Delivered: h.delivered.Load(), Retried: h.retried.Load(),
		Failed: h.failed.Load(), Dropped: h.dropped.Load(), Duplicates: h.dups.Load(), ByStatus: map[string]int64{},
	}
	h.byStatus.Range(func(k, v any) bool {
		st.ByStatus[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	h.mu.Lock()
	st.Pending = len(h.pending)
	h.mu.Unlock()
	return st
}

func (h *hookRunner) recentDeliveries() []WebhookDelivery {
	h.recentMu.Lock()
	defer h.recentMu.Unlock()
	return append([]WebhookDelivery{}, h.recent...)
}

// accepted plans the status webhooks of an accepted send.
func (h *hookRunner) accepted(sn *snapshot, send *Send, phone *phoneInfo, async *AsyncFailure) {
	cfg := &sn.webhooks
	if cfg.URL == "" {
		if async != nil {
			h.mu.Lock()
			warn := !h.warned
			h.warned = true
			h.mu.Unlock()
			if warn {
				h.s.log.Warn("fakegraph: an asynchronous failure was scripted but no webhook URL is configured; it is not reported")
			}
		}
		return
	}
	statuses := cfg.Statuses
	var failCode *int
	if async != nil {
		statuses = async.After
		failCode = async.Error
		if failCode == nil {
			failCode = Code(131000)
		}
	}
	category := "service"
	if send.Type == "template" {
		category = "utility"
		if ts := sn.templates[send.Template]; len(ts) > 0 {
			category = strings.ToLower(ts[0].Category)
		}
	}
	if send.API == APIMarketingMessages {
		category = "marketing_lite" // Meta's pricing category of the Marketing Messages API
	}
	names := append([]string{}, statuses...)
	if failCode != nil {
		names = append(names, "failed")
	}
	// Each status is stamped with the time it happens, one delay after the
	// other; reordering changes the order of delivery, not the stamps.
	gen := h.gen.Load()
	now := h.s.now()
	jobs := make([]*hookJob, 0, len(names))
	for i, st := range names {
		j := &hookJob{gen: gen, url: cfg.URL, secret: cfg.AppSecret, wamid: send.WAMID, status: st,
			retries: cfg.Retries, backoff: cfg.RetryBackoff.D()}
		var details string
		if st == "failed" {
			j.code = failCode
			if async != nil {
				details = async.Details
			}
		}
		at := now.Add(time.Duration(i+1) * cfg.Delay.D())
		j.body = statusBody(phone, send, st, category, j.code, details, at)
		if cfg.DuplicateRate > 0 && mrand.Float64() < cfg.DuplicateRate {
			j.copies = cfg.Duplicates
		}
		h.scheduled.Add(int64(1 + j.copies))
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return
	}
	if len(jobs) > 1 && cfg.ReorderRate > 0 && mrand.Float64() < cfg.ReorderRate {
		slices.Reverse(jobs)
	}
	for i := 1; i < len(jobs); i++ {
		jobs[i-1].next = jobs[i]
		jobs[i-1].delay = cfg.Delay.D()
	}
	h.schedule(jobs[0], time.Now().Add(cfg.Delay.D()))
}

// inbound sends a customer's message webhook (a simulated inbound message).
func (h *hookRunner) inbound(sn *snapshot, phone *phoneInfo, from, text string) {
	cfg := &sn.webhooks
	if cfg.URL == "" || phone == nil {
		return
	}
	wamid := newWAMID(from)
	body, _ := json.Marshal(hookPayload{Object: "whatsapp_business_account", Entry: []hookEntry{{
		ID: phone.WABAID, Changes: []hookChange{{Field: "messages", Value: hookValue{
			MessagingProduct: "whatsapp",
			Metadata:         hookMetadata{DisplayPhoneNumber: phone.displayDigits, PhoneNumberID: phone.PhoneNumberID},
			Contacts:         []hookContact{{Profile: hookProfile{Name: "Test Customer"}, WAID: from}},
			Messages: []hookMessage{{From: from, ID: wamid, Timestamp: strconv.FormatInt(h.s.now().Unix(), 10),
				Type: "text", Text: &hookText{Body: text}}},
		}}},
	}}})
	h.scheduled.Add(1)
	h.schedule(&hookJob{gen: h.gen.Load(), url: cfg.URL, secret: cfg.AppSecret, wamid: wamid, status: "inbound",
		body: body, retries: cfg.Retries, backoff: cfg.RetryBackoff.D()}, time.Now())
}
