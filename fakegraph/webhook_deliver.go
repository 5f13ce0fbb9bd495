package fakegraph

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net/http"
	"time"
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
