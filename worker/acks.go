package worker

// Acks across a NATS outage. An ack is fire and forget: Ack returns once the
// client has it, not once the server has applied it. A server that dies
// (SIGKILL, a crash) loses the acks it had not read yet and those it had
// applied but not written to its consumer state (written about ten times a
// second); acks sent while the connection is down wait in the client's
// reconnect buffer, which a second failure can lose too. Each such job would
// stay unacknowledged until its ack wait passed, then be delivered again.
//
// Confirming every ack (DoubleAck, a request and its answer per job) would
// cost a round trip and a reply message per job all the time. Instead the
// worker remembers the acks of the last few seconds, cheaply; when the
// connection drops, those and the acks sent while it is down are confirmed
// once it is back, each sent again as a request until the server answers or
// that delivery's ack wait would have passed. An ack is idempotent: one the
// server already had is answered, and changes nothing. Status events' acks
// go the same way (confirmedEvent, events.go).

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// ackLookback is how far back, from a disconnect, acks are confirmed
	// again: far more than a server takes to read and persist an ack.
	ackLookback = 5 * time.Second
	// maxRecentAcks bounds what is remembered (5 s at 20,000 jobs a second);
	// past it the oldest are forgotten.
	maxRecentAcks = 100_000
	// confirmers is how many acks are confirmed at once after a reconnect.
	confirmers = 32
	// confirmTries bounds the tries of one ack: a server that lost the
	// delivery altogether never answers, and delivers the job again anyway.
	confirmTries = 8
)

// sentAck is one ack sent: its subject, when, and until when confirming it
// is worth it (past the delivery's ack wait, JetStream delivers the job
// again and that delivery is acknowledged as already done).
type sentAck struct {
	reply     string
	at, until time.Time
}

// acks remembers recent acks and confirms them after a disconnect.
type acks struct {
	log      *slog.Logger
	lookback time.Duration
	// confirm sends one ack again as a request and waits for the answer.
	confirm func(ctx context.Context, reply string) error

	mu      sync.Mutex
	recent  []sentAck // from head on, oldest first
	head    int
	suspect []sentAck // to confirm once the connection is back
	down    bool
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newAcks(log *slog.Logger, ackWait time.Duration, confirm func(context.Context, string) error) *acks {
	ctx, cancel := context.WithCancel(context.Background())
	return &acks{log: log, lookback: min(ackLookback, ackWait), confirm: confirm, ctx: ctx, cancel: cancel}
}

// natsConfirm is acks' confirm on nc: the ack as a request, answered by the
// server once applied.
func natsConfirm(nc *nats.Conn) func(context.Context, string) error {
	body := []byte("+ACK")
	return func(ctx context.Context, reply string) error {
		_, err := nc.RequestWithContext(ctx, reply, body)
		return err
	}
}

// sent notes an ack just sent on subject reply, worth confirming until
// until.
func (a *acks) sent(reply string, until time.Time) {
	if a == nil || reply == "" {
		return
	}
	now := time.Now()
	a.mu.Lock()
	if a.down {
		a.suspect = append(a.suspect, sentAck{reply: reply, at: now, until: until})
	} else {
		a.prune(now)
		if len(a.recent)-a.head >= maxRecentAcks {
			a.recent[a.head] = sentAck{}
			a.head++
		}
		a.recent = append(a.recent, sentAck{reply: reply, at: now, until: until})
	}
	a.mu.Unlock()
}

// prune forgets the acks older than the lookback; the slice is compacted
// once half of it is forgotten, so each ack is copied at most once or
// twice. a.mu is held.
func (a *acks) prune(now time.Time) {
	cut := now.Add(-a.lookback)
	for a.head < len(a.recent) && a.recent[a.head].at.Before(cut) {
		a.recent[a.head] = sentAck{}
		a.head++
	}
	if a.head > 0 && a.head >= len(a.recent)/2 {
		n := copy(a.recent, a.recent[a.head:])
		clear(a.recent[n:])
		a.recent, a.head = a.recent[:n], 0
	}
}

// disconnected: the recent acks, and those sent from now on, are to be
// confirmed once the connection is back.
func (a *acks) disconnected() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prune(time.Now())
	a.suspect = append(a.suspect, a.recent[a.head:]...)
	clear(a.recent)
	a.recent, a.head = a.recent[:0], 0
	a.down = true
}

// reconnected confirms, in the background, the acks that may not have
// reached the server.
func (a *acks) reconnected() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = false
	todo := a.suspect
	a.suspect = nil
	if a.stopped || len(todo) == 0 {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.confirmAll(todo)
	}()
}

// confirmAll confirms todo, confirmers at a time, and logs the outcome.
func (a *acks) confirmAll(todo []sentAck) {
	start := time.Now()
	ch := make(chan sentAck)
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for range min(confirmers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for x := range ch {
				if a.confirmOne(x) {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	for _, x := range todo {
		ch <- x
	}
	close(ch)
	wg.Wait()
	a.log.Info("acks of the outage confirmed", "confirmed", ok.Load(), "unconfirmed", failed.Load(),
		"took", time.Since(start).Round(time.Millisecond))
}

// confirmOne sends one ack again until the server answers, the delivery's
// ack wait passes, the tries run out or the worker stops.
func (a *acks) confirmOne(x sentAck) bool {
	wait := 100 * time.Millisecond
	for range confirmTries {
		left := time.Until(x.until)
		if left <= 0 || a.ctx.Err() != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(a.ctx, min(time.Second, left))
		err := a.confirm(ctx, x.reply)
		cancel()
		if err == nil {
			return true
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return false
		}
		select {
		case <-a.ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
	return false
}

// stop ends the confirmations under way and waits for them.
func (a *acks) stop() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
}
