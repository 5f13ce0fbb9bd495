package worker

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/throttle"
)

// The hold set keeps held jobs out of the stream, so that they do not take
// places in the consumer's max ack pending while they wait: a held job is
// written to Redis, then acked; when its look-again time comes, a worker
// publishes it again (same body and headers) and only then removes it.
// A crash before the ack redelivers the job (written again under the same
// key); a crash after the publish publishes it twice at most, with the same
// Nats-Msg-Id (JetStream drops the second) and the ledger's claim past the
// de-duplication window: a job is never lost, and never sent twice.

// heldJob is a held message as stored: subject, headers, body.
type heldJob struct {
	Subject string      `json:"s"`
	Header  nats.Header `json:"h"`
	Data    []byte      `json:"d"`
	At      int64       `json:"at"` // when it was held, Unix ms: part of its republished Nats-Msg-Id
}

// heldSuffix marks a republished held job's Nats-Msg-Id.
const heldSuffix = "~h"

func (w *Worker) holdKeys() (due, jobs string) {
	p := throttle.HoldSetKey(w.cfg.KeyPrefix)
	return p, p + ":jobs"
}

// hold keeps the job in the hold set for wait; when Redis cannot take it,
// the message is handed back to JetStream for wait instead.
func (d *delivery) hold(ctx context.Context, wait time.Duration) {
	w := d.w
	// Keyed by the job's first Nats-Msg-Id: a job held again replaces
	// its entry.
	id := queue.DedupID(d.job.ID, queue.ReplayOf(d.msg.Headers()))
	now := w.now()
	b, err := json.Marshal(heldJob{Subject: d.msg.Subject(), Header: d.msg.Headers(), Data: d.msg.Data(), At: now.UnixMilli()})
	if err == nil {
		due, jobs := w.holdKeys()
		_, err = w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, jobs, id, b)
			p.ZAdd(ctx, due, redis.Z{Score: float64(now.Add(jitter(wait)).UnixMilli()), Member: id})
			return nil
		})
	}
	if err != nil {
		if d.logID != "" {
			d.logger().Warn("hold set not written; job handed back to JetStream", "error", err)
		}
		d.nak(wait)
		return
	}
	d.ack()
}

// releaseScript removes a held job only if it is still the one published
// (a job held again meanwhile stays).
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0`)

// releaseHeld publishes the held jobs whose look-again time has come, until
// ctx ends.
func (w *Worker) releaseHeld(ctx context.Context) {
	every := min(time.Second, w.cfg.HoldRecheck)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.countHeld(ctx)
		for range 100 { // bounded: 100 batches a tick
			if n := w.releaseBatch(ctx); n < 500 {
				break
			}
		}
	}
}

// countHeld sets waq_held_jobs to the hold set's size: one ZCARD a tick
// (at most a second apart), before the tick's release, so that jobs looked
// at again and held once more (still paused) are counted as the held jobs
// they are, not as gone for the moment between their publish and their
// hold. Every worker reports the same shared set, so the gauge is the same
// on each (max, not sum, across workers); a failed read keeps the last
// value.
func (w *Worker) countHeld(ctx context.Context) {
	due, _ := w.holdKeys()
	if n, err := w.rdb.ZCard(ctx, due).Result(); err == nil {
		w.metrics.Holds.HeldJobs.Set(float64(n))
	}
}

// releaseBatch publishes up to 500 due held jobs; it returns how many were due.
func (w *Worker) releaseBatch(ctx context.Context) int {
	due, jobs := w.holdKeys()
	ids, err := w.rdb.ZRangeByScore(ctx, due, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(w.now().UnixMilli(), 10), Count: 500}).Result()
	if err != nil || len(ids) == 0 {
		return 0
	}
	vals, err := w.rdb.HMGet(ctx, jobs, ids...).Result()
	if err != nil {
		return 0
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			// No body (removed meanwhile): drop the stale due time.
			w.rdb.ZRem(ctx, due, ids[i])
			continue
		}
		var h heldJob
		if json.Unmarshal([]byte(s), &h) != nil {
			w.log.Error("held job unreadable; left in the hold set", "key", jobs)
			continue
		}
		m := nats.NewMsg(h.Subject)
		m.Header = h.Header
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(queue.HeaderMsgID, ids[i]+heldSuffix+strconv.FormatInt(h.At, 10))
		m.Data = h.Data
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := w.js.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			return 0 // kept: the next tick tries again
		}
		releaseScript.Run(ctx, w.rdb, []string{due, jobs}, ids[i], s)
	}
	return len(ids)
}
