package bench

// Publishing the jobs and timing them: publish times, the simulator's
// callback (publish → call) and the ledger's keyspace notifications
// (publish → outcome).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/queue"
)

// recorder holds one phase's publish times and latencies. Job ids are
// nonce + sequence number, so the simulator's callback and the outcome
// listener find a job's publish time by index, without a map. They are
// UUIDv7s, as the producer makes by default (the ledger keeps such an id
// in 16 bytes): the nonce is the first 24 characters (the time, random
// bits), the sequence number the last 12 hex digits.
type recorder struct {
	nonce      string
	t0         time.Time
	pubAt      []atomic.Int64 // ns since t0, before Publish was called
	called     []atomic.Bool
	done       []atomic.Bool
	toCall     histogram
	toOutcome  histogram
	calls      atomic.Int64
	outcomes   atomic.Int64
	published  atomic.Int64
	lastPubAt  atomic.Int64 // ns since t0 of the latest publish that returned
	pubErrs    atomic.Int64
	lastPubErr atomic.Pointer[string]
}

func newRecorder(n int) *recorder {
	return &recorder{
		nonce:  idNonce(time.Now()),
		t0:     time.Now(),
		pubAt:  make([]atomic.Int64, n),
		called: make([]atomic.Bool, n),
		done:   make([]atomic.Bool, n),
	}
}

// idNonce is the first 24 characters of a UUIDv7 made at t: the
// millisecond time, the version, 12 random bits, the RFC 4122 variant and
// 14 more.
func idNonce(t time.Time) string {
	ms := uint64(t.UnixMilli())
	r := rand.Uint32()
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-", ms>>16, ms&0xffff, r>>20, 0x8000|r&0x3fff)
}

// id is job i's id.
func (r *recorder) id(i int) string { return fmt.Sprintf("%s%012x", r.nonce, i) }

func (r *recorder) seq(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, r.nonce)
	if !ok || len(s) != 12 {
		return 0, false
	}
	i, err := strconv.ParseUint(s, 16, 48)
	if err != nil || i >= uint64(len(r.pubAt)) {
		return 0, false
	}
	return int(i), true
}

// notePublished moves lastPubAt forward.
func (r *recorder) notePublished() {
	now := int64(time.Since(r.t0))
	for {
		v := r.lastPubAt.Load()
		if now <= v || r.lastPubAt.CompareAndSwap(v, now) {
			return
		}
	}
}

// onCall is the simulator's callback: the first call of each job, at when
// it reached the simulator.
func (b *bench) onCall(jobID string, at time.Time) {
	r := b.cur.Load()
	if r == nil {
		return
	}
	i, ok := r.seq(jobID)
	if !ok || !r.called[i].CompareAndSwap(false, true) {
		return
	}
	r.calls.Add(1)
	r.toCall.add(time.Duration(int64(at.Sub(r.t0)) - r.pubAt[i].Load()))
}

// outcome records the first ledger write of a job: its outcome.
func (r *recorder) outcome(id string) {
	i, ok := r.seq(id)
	if !ok || !r.done[i].CompareAndSwap(false, true) {
		return
	}
	r.outcomes.Add(1)
	r.toOutcome.add(time.Duration(int64(time.Since(r.t0)) - r.pubAt[i].Load()))
}

func (b *bench) publishError(r *recorder, n int) error {
	if r.pubErrs.Load() == 0 {
		return nil
	}
	msg := ""
	if p := r.lastPubErr.Load(); p != nil {
		msg = *p
	}
	return fmt.Errorf("%d of %d publishes failed; the last: %s", r.pubErrs.Load(), n, msg)
}

// listenOutcomes subscribes to the ledger's job hashes. The first write of
// a job's hash is its outcome: "sent" (RecordSent) or "parked"
// (MarkParked); retries only increment counters, which are other events.
// A job sent first time has no hash (its record is a field of the compact
// index's buckets), so only jobs that failed before are timed.
func (b *bench) listenOutcomes(ctx context.Context, r *recorder) (func(), error) {
	ps := b.rdb.PSubscribe(ctx, "__keyspace@*__:waq:j:{*}")
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("redis keyspace notifications: %w", err)
	}
	ch := ps.Channel(redis.WithChannelSize(1 << 16))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			if m.Payload != "hset" {
				continue
			}
			i := strings.Index(m.Channel, ":waq:j:{")
			if i < 0 || !strings.HasSuffix(m.Channel, "}") {
				continue
			}
			r.outcome(m.Channel[i+len(":waq:j:{") : len(m.Channel)-1])
		}
	}()
	return func() { ps.Close(); <-done }, nil
}

// job builds job i: a template message, as most production traffic is.
func (b *bench) job(r *recorder, i int) *queue.Job {
	msg := queue.TemplateMessage(fmt.Sprintf("1555%07d", i%10_000_000), "order_update", "en_US", strconv.Itoa(i))
	return &queue.Job{ID: r.id(i), PhoneNumberID: b.numbers[i%len(b.numbers)], Message: msg}
}

// publish publishes n jobs with the configured publishers, at Rate when
// set. It returns when all are published or ctx ends.
func (b *bench) publish(ctx context.Context, r *recorder, prod *queue.Producer, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	interval := time.Duration(0)
	if b.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / b.cfg.Rate)
	}
	for p := 0; p < b.cfg.Publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if interval > 0 {
					if d := time.Until(r.t0.Add(time.Duration(i) * interval)); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-ctx.Done():
							t.Stop()
							return
						case <-t.C:
						}
					}
				}
				job := b.job(r, i)
				r.pubAt[i].Store(int64(time.Since(r.t0)))
				var err error
				for try := 0; try < 3; try++ {
					pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					_, err = prod.Publish(pctx, job)
					cancel()
					if err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					r.pubErrs.Add(1)
					s := err.Error()
					r.lastPubErr.Store(&s)
					continue
				}
				r.published.Add(1)
				r.notePublished()
			}
		}()
	}
	wg.Wait()
}
