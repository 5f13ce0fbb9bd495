package fleet

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The keys, under the workers' key prefix, in one hash slot ({fleet}):
//
//	PREFIX:{fleet}:m:MINUTE  hash, one per minute (Unix minutes): what the
//	                         workers' counters grew by in that minute
//	                         (HINCRBY), and the consumer's pending counts
//	                         last reported in it; kept for Keep
//	PREFIX:{fleet}:workers   hash, worker id → what it holds now (JSON)

// Bucket is the width of a bucket of counts.
const Bucket = time.Minute

// Keep is how long a bucket is kept: the overview's hour and a margin.
const Keep = 2 * time.Hour

func minuteKey(prefix string, t time.Time) string {
	return prefix + ":{fleet}:m:" + strconv.FormatInt(t.Unix()/60, 10)
}

func workersKey(prefix string) string { return prefix + ":{fleet}:workers" }

// The fields of a bucket.
const (
	fSent, fFailed, fRetried, fE131000, fRateLimited = "sent", "failed", "retried", "errors_131000", "rate_limited"
	fThrottled, fParked                              = "throttled:", "parked:" // + scope, reason
	fPending, fAckPending                            = "pending", "ack_pending"
)

// Consumer is the JetStream consumer's counts, which are the fleet's.
type Consumer struct {
	// Pending is the jobs in the stream not yet delivered to a worker.
	Pending int64 `json:"pending"`
	// AckPending is the jobs delivered and not acknowledged.
	AckPending int64 `json:"ack_pending"`
	// At is when they were read.
	At time.Time `json:"at"`
}

// report is a worker's record in the workers hash.
type report struct {
	At       time.Time `json:"at"`
	Started  time.Time `json:"started"`
	Every    int64     `json:"every_ms"`
	InFlight int64     `json:"in_flight"`
	Holding  int64     `json:"holding"`
	// Consumer is the consumer's counts as this worker last read them.
	Consumer *Consumer `json:"consumer,omitempty"`
}

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Prefix starts the keys (the workers' WAQ_KEY_PREFIX). Defaults to
	// "waq".
	Prefix string
	// Worker names this worker among the others; it must be unique in the
	// fleet.
	Worker string
	// Every is how often Run publishes. Defaults to 5s.
	Every time.Duration
	// Holding returns how many jobs the worker holds (delivered to it and
	// not acknowledged: sending, or waiting for their slot); nil: 0.
	Holding func() int
	// Consumer returns the consumer's counts as the worker last read them
	// from JetStream, and when; a zero time (not read yet), or nil, reports
	// none.
	Consumer func() Consumer
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Publisher adds one worker's counters to the fleet's buckets.
type Publisher struct {
	rdb     redis.Cmdable
	g       prometheus.Gatherer
	opts    PublisherOptions
	started time.Time

	mu   sync.Mutex
	last Counts // what was published already
}

// NewPublisher returns a publisher of the counters in g.
func NewPublisher(rdb redis.Cmdable, g prometheus.Gatherer, opts PublisherOptions) *Publisher {
	if opts.Prefix == "" {
		opts.Prefix = "waq"
	}
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Publisher{rdb: rdb, g: g, opts: opts, started: opts.Now()}
}

// Run publishes now and every Every until ctx ends, then once more (what the last
// sends counted) and takes the worker out of the list.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.opts.Every)
	defer t.Stop()
	_ = p.Publish(ctx)
	for {
		select {
		case <-ctx.Done():
			end, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = p.Publish(end)
			_ = p.rdb.HDel(end, workersKey(p.opts.Prefix), p.opts.Worker).Err()
			return
		case <-t.C:
			_ = p.Publish(ctx)
		}
	}
}

// Publish adds what the counters grew by since the last Publish to the
// bucket of now, in one transaction, and writes what the worker holds. When
// Redis does not answer, the growth is added by the next Publish instead.
func (p *Publisher) Publish(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, inFlight := gather(p.g)
	d := grown(p.last, cur)
	now := p.opts.Now()
	holding := int64(0)
	if p.opts.Holding != nil {
		holding = int64(p.opts.Holding())
	}
	var cons *Consumer
	if p.opts.Consumer != nil {
		if c := p.opts.Consumer(); !c.At.IsZero() {
			c.At = c.At.UTC()
			cons = &c
		}
	}
	rep, _ := json.Marshal(report{At: now.UTC(), Started: p.started.UTC(), Every: p.opts.Every.Milliseconds(),
		InFlight: inFlight, Holding: holding, Consumer: cons})
	key := minuteKey(p.opts.Prefix, now)
	_, err := p.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		incr := func(f string, v int64) {
			if v > 0 {
				tx.HIncrBy(ctx, key, f, v)
			}
		}
		incr(fSent, d.Sent)
		incr(fFailed, d.Failed)
		incr(fRetried, d.Retried)
		incr(fE131000, d.E131000)
		incr(fRateLimited, d.RateLimited)
		for k, v := range d.Throttled {
			incr(fThrottled+k, v)
		}
		for k, v := range d.Parked {
			incr(fParked+k, v)
		}
		if cons != nil {
			tx.HSet(ctx, key, fPending, cons.Pending, fAckPending, cons.AckPending)
		}
		tx.Expire(ctx, key, Keep)
		tx.HSet(ctx, workersKey(p.opts.Prefix), p.opts.Worker, rep)
		return nil
	})
	if err != nil {
		return err
	}
	p.last = cur
	return nil
}

// grown is what the counters grew by from last to cur. A counter does not
// go down within a process; one that did counts as zero.
func grown(last, cur Counts) Counts {
	pos := func(a, b int64) int64 { return max(0, b-a) }
	d := Counts{
		Sent: pos(last.Sent, cur.Sent), Failed: pos(last.Failed, cur.Failed), Retried: pos(last.Retried, cur.Retried),
		E131000: pos(last.E131000, cur.E131000), RateLimited: pos(last.RateLimited, cur.RateLimited),
		Throttled: map[string]int64{}, Parked: map[string]int64{},
	}
	for k, v := range cur.Throttled {
		d.Throttled[k] = pos(last.Throttled[k], v)
	}
	for k, v := range cur.Parked {
		d.Parked[k] = pos(last.Parked[k], v)
	}
	return d
}
