package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Minute is what the workers did in one minute.
type Minute struct {
	// Start is the minute's beginning.
	Start time.Time `json:"start"`
	Counts
	// Pending and AckPending are the consumer's counts last reported in
	// the minute; Reported is false when no worker reported them in it.
	Pending    int64 `json:"pending"`
	AckPending int64 `json:"ack_pending"`
	Reported   bool  `json:"reported"`
}

// Worker is what one worker holds, as it last reported.
type Worker struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Started time.Time `json:"started"`
	// InFlight is its sends to the Graph API under way.
	InFlight int64 `json:"in_flight"`
	// Holding is the jobs delivered to it and not acknowledged: sending,
	// or waiting for their paced slot.
	Holding int64 `json:"holding"`
}

// View is the fleet over the last minutes.
type View struct {
	// At is when the view was read.
	At time.Time `json:"at"`
	// Minutes are oldest first; the last is the minute in progress.
	Minutes []Minute `json:"minutes"`
	// Total is the counts summed over Minutes.
	Total Counts `json:"total"`
	// Workers are those that reported within three of their intervals,
	// by id.
	Workers []Worker `json:"workers"`
	// Pending is the jobs in the stream not yet delivered, AckPending those
	// delivered and not acknowledged (held by a worker, or waiting in
	// JetStream for a retry or a redelivery): the consumer's counts, which
	// are the fleet's, as the worker that read them last read them at
	// PendingAt.
	Pending    int64     `json:"pending"`
	AckPending int64     `json:"ack_pending"`
	PendingAt  time.Time `json:"pending_at,omitzero"`
	// InFlight and Holding are summed over Workers.
	InFlight int64 `json:"in_flight"`
	Holding  int64 `json:"holding"`
}

// Waiting is the jobs delivered and not acknowledged that no worker holds:
// waiting in JetStream for their retry or redelivery. The consumer's
// counts and the workers' are read at different moments, so it is an
// estimate, never below zero.
func (v View) Waiting() int64 { return max(0, v.AckPending-v.Holding) }

// Reader reads the fleet's buckets.
type Reader struct {
	rdb    redis.Cmdable
	prefix string
	now    func() time.Time
}

// NewReader returns a reader of the buckets under prefix (the workers'
// WAQ_KEY_PREFIX; "" is "waq"); now defaults to time.Now.
func NewReader(rdb redis.Cmdable, prefix string, now func() time.Time) *Reader {
	if prefix == "" {
		prefix = "waq"
	}
	if now == nil {
		now = time.Now
	}
	return &Reader{rdb: rdb, prefix: prefix, now: now}
}

// MaxMinutes bounds a view: Keep holds no more.
const MaxMinutes = int(Keep / Bucket)

// forget is how long a worker that stopped reporting (it crashed) stays in
// the hash before a reader removes it.
const forget = time.Hour

// Read returns the last n minutes (1 to MaxMinutes), the minute in
// progress included, in one round trip.
func (r *Reader) Read(ctx context.Context, n int) (View, error) {
	if n < 1 || n > MaxMinutes {
		return View{}, fmt.Errorf("fleet: %d minutes, want 1 to %d", n, MaxMinutes)
	}
	now := r.now()
	first := now.Truncate(Bucket).Add(-time.Duration(n-1) * Bucket)
	cmds := make([]*redis.MapStringStringCmd, n)
	var wcmd *redis.MapStringStringCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.HGetAll(ctx, minuteKey(r.prefix, first.Add(time.Duration(i)*Bucket)))
		}
		wcmd = p.HGetAll(ctx, workersKey(r.prefix))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return View{}, fmt.Errorf("fleet: read: %w", err)
	}
	v := View{At: now, Minutes: make([]Minute, n), Total: Counts{Throttled: map[string]int64{}, Parked: map[string]int64{}}}
	for i, c := range cmds {
		m := parseMinute(c.Val())
		m.Start = first.Add(time.Duration(i) * Bucket)
		v.Minutes[i] = m
		v.Total = v.Total.Plus(m.Counts)
	}
	var gone []string
	for id, raw := range wcmd.Val() {
		var rep report
		if json.Unmarshal([]byte(raw), &rep) != nil {
			gone = append(gone, id)
			continue
		}
		age := now.Sub(rep.At)
		if age > forget {
			gone = append(gone, id)
		}
		if age > 3*time.Duration(rep.Every)*time.Millisecond+2*time.Second {
			continue
		}
		v.Workers = append(v.Workers, Worker{ID: id, At: rep.At, Started: rep.Started, InFlight: rep.InFlight, Holding: rep.Holding})
		v.InFlight += rep.InFlight
		v.Holding += rep.Holding
		if c := rep.Consumer; c != nil && c.At.After(v.PendingAt) {
			v.Pending, v.AckPending, v.PendingAt = c.Pending, c.AckPending, c.At
		}
	}
	if len(gone) > 0 {
		_ = r.rdb.HDel(ctx, workersKey(r.prefix), gone...).Err()
	}
	sort.Slice(v.Workers, func(i, j int) bool { return v.Workers[i].ID < v.Workers[j].ID })
	if v.Workers == nil {
		v.Workers = []Worker{}
	}
	return v, nil
}

// parseMinute reads a bucket's fields; one that does not parse counts as
// zero (the buckets are only ever written by Publish).
func parseMinute(h map[string]string) Minute {
	m := Minute{Counts: Counts{Throttled: map[string]int64{}, Parked: map[string]int64{}}}
	for k, s := range h {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			continue
		}
		switch {
		case k == fSent:
			m.Sent = n
		case k == fFailed:
			m.Failed = n
		case k == fRetried:
			m.Retried = n
		case k == fE131000:
			m.E131000 = n
		case k == fRateLimited:
			m.RateLimited = n
		case k == fPending:
			m.Pending, m.Reported = n, true
		case k == fAckPending:
			m.AckPending, m.Reported = n, true
		case strings.HasPrefix(k, fThrottled):
			m.Throttled[strings.TrimPrefix(k, fThrottled)] = n
		case strings.HasPrefix(k, fParked):
			m.Parked[strings.TrimPrefix(k, fParked)] = n
		}
	}
	return m
}
