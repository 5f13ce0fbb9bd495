package devenv

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/queue"
)

// Demo publishes the mix of jobs `waq dev` shows: mostly template messages
// that go through, free-form messages inside and outside the 24-hour
// window, templates that are paused, missing or given the wrong parameters,
// bursts for the number with a strict rate limit, and now and then a burst
// of 131000 answers from the simulator.
type Demo struct {
	Producer *queue.Producer
	// Sim gets the 131000 bursts; nil leaves them out.
	Sim *fakegraph.Server
	// Rate is jobs per second; defaults to 20.
	Rate float64
	// Jobs stops the demo after that many; 0 runs until ctx ends.
	Jobs int
	// Seed makes the mix repeatable; 0 picks one.
	Seed uint64

	published atomic.Int64
	failed    atomic.Int64
	bursts    atomic.Int64
	lastErr   atomic.Pointer[string]
}

// DemoCounts is what the demo has done so far.
type DemoCounts struct {
	Published, Failed, Bursts int64
	LastError                 string
}

// Counts returns what the demo has published so far.
func (d *Demo) Counts() DemoCounts {
	c := DemoCounts{Published: d.published.Load(), Failed: d.failed.Load(), Bursts: d.bursts.Load()}
	if p := d.lastErr.Load(); p != nil {
		c.LastError = *p
	}
	return c
}

// kind is one line of the mix: its weight and how to build the job.
type kind struct {
	weight int
	build  func(r *rand.Rand, n int) (pn string, msg json.RawMessage)
}

// template is a demo template message: the scenario's templates are en_US.
func template(to, name string, params ...string) json.RawMessage {
	return queue.TemplateMessage(to, name, "en_US", params...)
}

func text(to, body string) json.RawMessage { return queue.TextMessage(to, body) }

// closedRecipient is a customer whose window is closed.
func closedRecipient(r *rand.Rand) string { return Recipient(OpenWindows + r.IntN(5000)) }

var mix = []kind{
	// Order updates from the store: sent (a few hit 131000 or 131026).
	{50, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberStore, template(closedRecipient(r), "order_update", "A-"+strconv.Itoa(10000+n))
	}},
	// Support answers customers who wrote lately: sent.
	{12, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberSupport, text(Recipient(r.IntN(OpenWindows)), "Thanks for your message, we are on it.")
	}},
	// Free-form messages to customers who did not write: window (131047).
	{10, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberSupport, text(closedRecipient(r), "Your parcel has arrived.")
	}},
	// A paused template (132015), a missing one (132001), a wrong
	// parameter count (132000): template.
	{5, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberStore, template(closedRecipient(r), "spring_sale")
	}},
	{4, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberStore, template(closedRecipient(r), "black_friday")
	}},
	{3, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberStore, template(closedRecipient(r), "order_update", "A-1", "extra")
	}},
	// The flash-sale number, beyond its real rate limit: 130429, slowed down.
	{16, func(r *rand.Rand, n int) (string, json.RawMessage) {
		return NumberFlash, template(closedRecipient(r), "flash_sale")
	}},
}

// flashBurst is how many flash-sale jobs go at once every burstEvery: more
// than the number's strict limit allows.
const (
	flashBurst = 15
	burstEvery = 12 * time.Second
	// failBurst is how many sends of the store in a row get 131000.
	failBurst = 8
)

// Run publishes until ctx ends or Jobs are published. Publish errors are
// counted, not fatal: the screen shows them.
func (d *Demo) Run(ctx context.Context) {
	rate := d.Rate
	if rate <= 0 {
		rate = 20
	}
	seed := d.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for _, k := range mix {
		total += k.weight
	}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	// The first burst comes early, so that a short run shows one.
	lastBurst := time.Now().Add(3*time.Second - burstEvery)
	n := 0
	for d.Jobs <= 0 || n < d.Jobs {
		if wait := time.Until(next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		next = next.Add(interval)
		if time.Since(lastBurst) >= burstEvery {
			lastBurst = time.Now()
			d.burst(ctx, r, &n)
			continue
		}
		w := r.IntN(total)
		for _, k := range mix {
			if w < k.weight {
				pn, msg := k.build(r, n)
				d.publish(ctx, pn, msg)
				n++
				break
			}
			w -= k.weight
		}
	}
}

// burst sends a burst for the strict number and makes the store's next
// sends fail with 131000, as Meta's outages come in bursts.
func (d *Demo) burst(ctx context.Context, r *rand.Rand, n *int) {
	d.bursts.Add(1)
	if d.Sim != nil {
		_, _ = d.Sim.AddRules(fakegraph.Rule{
			Name:    "demo-131000-burst-" + strconv.FormatInt(d.bursts.Load(), 10),
			Match:   fakegraph.Match{PhoneNumberID: NumberStore},
			Times:   failBurst,
			Respond: fakegraph.Response{Error: fakegraph.Code(131000)},
		})
	}
	for i := 0; i < flashBurst && (d.Jobs <= 0 || *n < d.Jobs) && ctx.Err() == nil; i++ {
		d.publish(ctx, NumberFlash, template(closedRecipient(r), "flash_sale"))
		*n++
	}
}

func (d *Demo) publish(ctx context.Context, pn string, msg json.RawMessage) {
	job := &queue.Job{PhoneNumberID: pn, Message: msg, Metadata: map[string]string{"source": "waq-dev"}}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.Producer.Publish(pctx, job); err != nil {
		if ctx.Err() == nil {
			d.failed.Add(1)
			s := err.Error()
			d.lastErr.Store(&s)
		}
		return
	}
	d.published.Add(1)
}
