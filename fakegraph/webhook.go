package fakegraph

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
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

// hookJob is one webhook to deliver, and the status of the same message
// that follows it (so one message's statuses go out in order).
type hookJob struct {
	gen     int64
	due     time.Time
	url     string
	secret  string
	wamid   string
	status  string
	code    *int
	body    []byte
	attempt int
	copies  int // extra deliveries after the first success
	retries int
	backoff time.Duration
	next    *hookJob
	delay   time.Duration // before next
	index   int
}

// chain counts the deliveries planned from j on: its copies and the
// statuses that follow it.
func (j *hookJob) chain() int64 {
	var n int64
	for ; j != nil; j = j.next {
		n += int64(1 + j.copies)
	}
	return n
}

type hookHeap []*hookJob

func (h hookHeap) Len() int           { return len(h) }
func (h hookHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h hookHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *hookHeap) Push(x any)        { j := x.(*hookJob); j.index = len(*h); *h = append(*h, j) }
func (h *hookHeap) Pop() any {
	old := *h
	n := len(old)
	j := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return j
}

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

func (h *hookRunner) schedule(j *hookJob, due time.Time) {
	j.due = due
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.dropped.Add(j.chain())
		return
	}
	if !h.started {
		h.started = true
		h.run()
	}
	if len(h.pending) >= maxHookPending {
		h.mu.Unlock()
		h.dropped.Add(j.chain())
		return
	}
	heap.Push(&h.pending, j)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run starts the scheduler and the workers; h.mu is held.
func (h *hookRunner) run() {
	h.wg.Add(1 + hookWorkers)
	go h.scheduler()
	for range hookWorkers {
		go h.worker()
	}
}

func (h *hookRunner) scheduler() {
	defer h.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		h.mu.Lock()
		var wait time.Duration = -1
		var j *hookJob
		if len(h.pending) > 0 {
			if d := time.Until(h.pending[0].due); d > 0 {
				wait = d
			} else {
				j = heap.Pop(&h.pending).(*hookJob)
			}
		}
		h.mu.Unlock()
		if j != nil {
			select {
			case h.work <- j:
			case <-h.done:
				return
			}
			continue
		}
		var tc <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-h.done:
			return
		case <-h.wake:
		case <-tc:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (h *hookRunner) worker() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case j := <-h.work:
			h.deliverJob(j)
		}
	}
}

// deliverJob delivers one webhook (and its copies), then schedules a retry
// or the message's next status.
func (h *hookRunner) deliverJob(j *hookJob) {
	if j.gen != h.gen.Load() {
		return // planned before a reset, which zeroed the counters
	}
	j.attempt++
	status, err := h.post(j)
	h.note(j, 0, status, err)
	if status != http.StatusOK {
		if j.attempt <= j.retries {
			h.retried.Add(1)
			h.schedule(j, time.Now().Add(j.backoff<<(j.attempt-1)))
			return
		}
		h.failed.Add(1)
	} else {
		h.delivered.Add(1)
		counter(&h.byStatus, j.status).Add(1)
		for c := 1; c <= j.copies; c++ {
			st, err := h.post(j)
			h.note(j, c, st, err)
			if st == http.StatusOK {
				h.dups.Add(1)
				h.delivered.Add(1)
				counter(&h.byStatus, j.status).Add(1)
			} else {
				h.failed.Add(1)
			}
		}
	}
	if j.next != nil {
		h.schedule(j.next, time.Now().Add(j.delay))
	}
}

func (h *hookRunner) post(j *hookJob) (int, error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.s.snap.Load().webhooks.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	if j.secret != "" {
		req.Header.Set("X-Hub-Signature-256", Sign(j.secret, j.body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (h *hookRunner) note(j *hookJob, copyN, status int, err error) {
	d := WebhookDelivery{Time: time.Now(), WAMID: j.wamid, Status: j.status, Code: j.code, Attempt: j.attempt, Copy: copyN, HTTPStatus: status}
	if err != nil {
		d.Error = err.Error()
	}
	h.recentMu.Lock()
	if len(h.recent) >= hookRecent {
		copy(h.recent, h.recent[1:])
		h.recent = h.recent[:len(h.recent)-1]
	}
	h.recent = append(h.recent, d)
	h.recentMu.Unlock()
}

// Sign returns the X-Hub-Signature-256 value of a webhook body:
// "sha256=" and the hex HMAC-SHA256 of the raw body keyed with the app
// secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// The webhook payload, as Meta sends it.
type (
	hookPayload struct {
		Object string      `json:"object"`
		Entry  []hookEntry `json:"entry"`
	}
	hookEntry struct {
		ID      string       `json:"id"`
		Changes []hookChange `json:"changes"`
	}
	hookChange struct {
		Value hookValue `json:"value"`
		Field string    `json:"field"`
	}
	hookValue struct {
		MessagingProduct string        `json:"messaging_product"`
		Metadata         hookMetadata  `json:"metadata"`
		Contacts         []hookContact `json:"contacts,omitempty"`
		Messages         []hookMessage `json:"messages,omitempty"`
		Statuses         []hookStatus  `json:"statuses,omitempty"`
	}
	hookMetadata struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	}
	hookContact struct {
		Profile hookProfile `json:"profile"`
		WAID    string      `json:"wa_id"`
	}
	hookProfile struct {
		Name string `json:"name"`
	}
	hookMessage struct {
		From      string    `json:"from"`
		ID        string    `json:"id"`
		Timestamp string    `json:"timestamp"`
		Type      string    `json:"type"`
		Text      *hookText `json:"text,omitempty"`
	}
	hookText struct {
		Body string `json:"body"`
	}
	hookStatus struct {
		ID           string            `json:"id"`
		Status       string            `json:"status"`
		Timestamp    string            `json:"timestamp"`
		RecipientID  string            `json:"recipient_id"`
		Conversation *hookConversation `json:"conversation,omitempty"`
		Pricing      *hookPricing      `json:"pricing,omitempty"`
		Errors       []hookError       `json:"errors,omitempty"`
	}
	hookConversation struct {
		ID                  string     `json:"id"`
		ExpirationTimestamp string     `json:"expiration_timestamp,omitempty"`
		Origin              hookOrigin `json:"origin"`
	}
	hookOrigin struct {
		Type string `json:"type"`
	}
	hookPricing struct {
		Billable     bool   `json:"billable"`
		PricingModel string `json:"pricing_model"`
		Category     string `json:"category"`
		Type         string `json:"type"`
	}
	hookError struct {
		Code      int           `json:"code"`
		Title     string        `json:"title"`
		Message   string        `json:"message"`
		ErrorData hookErrorData `json:"error_data"`
		Href      string        `json:"href"`
	}
	hookErrorData struct {
		Details string `json:"details"`
	}
)

// statusBody is the webhook of one status of an accepted message.
func statusBody(phone *phoneInfo, send *Send, status, category string, code *int, details string, now time.Time) []byte {
	st := hookStatus{ID: send.WAMID, Status: status, Timestamp: strconv.FormatInt(now.Unix(), 10), RecipientID: send.To}
	if code != nil {
		ci := Lookup(*code)
		if details == "" {
			details = ci.Details
		}
		st.Errors = []hookError{{Code: *code, Title: ci.Title, Message: ci.Title, ErrorData: hookErrorData{Details: details},
			Href: "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}}
	} else {
		st.Pricing = &hookPricing{Billable: category != "service", PricingModel: "PMP", Category: category, Type: "regular"}
		if category == "service" {
			st.Pricing.Type = "free_customer_service"
		}
		if status == "sent" {
			st.Conversation = &hookConversation{ID: conversationID(), ExpirationTimestamp: strconv.FormatInt(now.Add(24*time.Hour).Unix(), 10),
				Origin: hookOrigin{Type: category}}
		}
	}
	waba := DefaultWABAID
	display := ""
	if phone != nil {
		waba, display = phone.WABAID, phone.displayDigits
	}
	body, _ := json.Marshal(hookPayload{Object: "whatsapp_business_account", Entry: []hookEntry{{
		ID: waba, Changes: []hookChange{{Field: "messages", Value: hookValue{
			MessagingProduct: "whatsapp",
			Metadata:         hookMetadata{DisplayPhoneNumber: display, PhoneNumberID: send.PhoneNumberID},
			Statuses:         []hookStatus{st},
		}}},
	}}})
	return body
}

func conversationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
