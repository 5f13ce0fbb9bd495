package worker

// Lapses: deliveries JetStream may already have handed to another worker.
//
// JetStream delivers a job again one ack wait after it last heard of the
// delivery (its delivery, or the worker's last "in progress"). Nothing tells
// the first delivery: its ack, nak and in-progress still count, for they
// name the message's stream sequence, which the new delivery shares; and if
// it sends, the job goes to WhatsApp twice, since the new delivery found no
// sent record either. So a worker starts a send only while its delivery is
// surely still its own: less than five sixths of the ack wait since
// JetStream last heard of it, as this process can bound that time. Past it
// the delivery lapses: it is given up unsent, with neither ack, nak nor
// in-progress (a nak would hand the job to a third worker while the second
// sends it; a late in-progress cannot undo a redelivery), and the
// redelivery, to this worker or another, sends it. The last sixth (10 s of
// the default minute) covers the in-progress's way to the server and what
// the bound below does not see.
//
// A job this process holds on purpose (waiting for its paced slot, in its
// number's line, for a record) tells JetStream it is in progress every third
// of the ack wait (keepFor, progressed, durably), long before it could
// lapse. Deliveries lapse when the process could not run in time: nats.go's
// buffer held them while every place was taken (the consume callback
// blocked), or the process was stalled (starved of CPU, paused).

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waqhq/waq/telemetry"
)

// pulled is a message the consume callback hands to the pool, with the
// earliest JetStream may have delivered it.
type pulled struct {
	msg   jetstream.Msg
	heard time.Time
}

// pullClock bounds how long a message waited in nats.go's buffer before the
// consume callback got it. The callback takes the buffer's messages one at a
// time, in order, and the buffer holds at most the pull's batch (twice that
// just after a reconnect, whose new pull does not count what is left of the
// last): a message was not in it yet when the callback began the message
// 2×batch before it, and from then on the callback was running, mostly
// blocked on a full process. So it waited at most the time the callback ran
// since that message began. The callback's own running time is counted, not
// the wall clock: a worker with nothing blocked gets a bound near zero
// however slowly jobs come.
type pullClock struct {
	mu    sync.Mutex
	spent time.Duration   // the callback's running time so far
	ring  []time.Duration // spent when each of the last len(ring) messages began
	i     int
}

func newPullClock(batch int) *pullClock {
	return &pullClock{ring: make([]time.Duration, 2*max(1, batch))}
}

// began notes that the callback began a message at now, and returns the
// earliest JetStream may have delivered it.
func (p *pullClock) began(now time.Time) time.Time {
	p.mu.Lock()
	j := p.i % len(p.ring)
	waited := p.spent - p.ring[j]
	p.ring[j] = p.spent
	p.i++
	p.mu.Unlock()
	return now.Add(-waited)
}

// ended adds the callback's time on a message begun at start.
func (p *pullClock) ended(start time.Time) { p.ran(time.Since(start)) }

func (p *pullClock) ran(took time.Duration) {
	p.mu.Lock()
	p.spent += took
	p.mu.Unlock()
}

// heardAt is the last time JetStream surely heard of the delivery: its
// delivery's earliest, or the last in-progress sent.
func (d *delivery) heardAt() time.Time {
	if d.progress.After(d.received) {
		return d.progress
	}
	return d.received
}

// lapsed reports whether the delivery may be another worker's by now: five
// sixths of the ack wait or more since JetStream last heard of it.
func (d *delivery) lapsed(now time.Time) bool {
	return now.Sub(d.heardAt()) >= d.w.cfg.AckWait-d.w.cfg.AckWait/6
}

// inProgress tells JetStream the job is still being worked on, unless the
// delivery has lapsed: too late, the word cannot undo a redelivery (it
// would only lengthen the new delivery's ack wait), and the delivery must
// stay lapsed for the checks before the send.
func (d *delivery) inProgress(now time.Time) {
	if d.lapsed(now) {
		return
	}
	_ = d.msg.InProgress()
	d.progress = now
}

// nakNow hands the delivery back to JetStream at once, unless it has
// lapsed: the nak would then hand the job to a third worker while the
// second may be sending it. Left alone, it comes back after the ack wait.
func (d *delivery) nakNow() {
	if !d.lapsed(time.Now()) {
		_ = d.msg.Nak()
	}
}

// gaveUp gives the delivery up when it has lapsed, and reports whether it
// did.
func (d *delivery) gaveUp(stage string) bool {
	now := time.Now()
	if !d.lapsed(now) {
		return false
	}
	d.giveUp(stage, now)
	return true
}

// Where a delivery lapsed (the stage label of waq_lapsed_deliveries_total).
const (
	lapsedPulled  = "pulled"  // before the worker took it up
	lapsedWaiting = "waiting" // waiting for its paced slot or a send slot
)

// giveUp drops a lapsed delivery unsent and tells it (see the top of this
// file). The caller then finishes the delivery without an ack.
func (d *delivery) giveUp(stage string, now time.Time) {
	d.w.metrics.Lapsed.WithLabelValues(stage).Inc()
	d.attr(telemetry.AttrAction.String("lapsed"))
	d.logger().Warn("delivery lapsed before its send; left unsent for JetStream's redelivery, which may be another worker's",
		"stage", stage, "since_heard", now.Sub(d.heardAt()).Round(time.Millisecond).String(),
		"ack_wait", d.w.cfg.AckWait.String(), "delivery", d.delivered)
}
