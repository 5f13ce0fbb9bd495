package throttle

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/waqhq/waq/numbers"
)

// Leasing: rather than a Redis round trip (and a script run) per send, a
// worker reserves a few consecutive slots of a number's schedule at once and
// hands them to its jobs. The schedule stays one, shared by every worker: a
// lease moves it forward by as many slots as it holds.
//
// What a lease may hold is bounded so that it changes little for the other
// workers and for Meta:
//   - at most a twentieth of a second's worth (4 slots at 80 msg/s, 50 at
//     1,000), and no slot further out than the caller's max wait;
//   - its size adapts: it doubles while the number's jobs use every slot,
//     and halves when slots go unused;
//   - a slot not taken within lateLimit after it came due is given up (a
//     late send would bunch up with the next, and Meta allows no burst);
//   - a 130429 gives up the number's leased slots (they were at the old
//     rate), and no leases are taken while the number has recipients on
//     their own schedule after a 131056 (every job is then checked against
//     its recipient's schedule, one round trip each). A worker that has not
//     seen that 131056 itself learns of it at its next lease, so for at most
//     one lease's slots a throttled recipient may be sent to at the number's
//     pace.

// pairLife is how long a number counts as having recipients on their own
// schedule after a 131056 (as the pair key lives).
const pairLife = 10 * time.Minute

type leases struct {
	mu sync.Mutex
	m  map[string]*lease
}

// lease is one number's leased slots, oldest lease first.
type lease struct {
	segs       []segment
	size       int       // slots the next lease asks for
	wasted     bool      // slots went unused since the last lease
	pairsUntil time.Time // no leasing before this
	// flight is the lease being asked of Redis, nil when none: a job that
	// finds no leased slot meanwhile waits for it rather than asking for a
	// lease of its own (one at a time per number: 40 jobs asking at once
	// each moved the schedule a lease ahead, seconds past the sends).
	flight  *flight
	waiting int // jobs waiting for a flight, who will want its slots
	// gen counts the times the leased slots were given up (130429, 131056):
	// a lease asked for before is not kept.
	gen int
}

// flight is one lease request in progress. done closes when its slots (if
// any) are put; none is then when the schedule's next slot is, when it had
// none within maxWait.
type flight struct {
	done    chan struct{}
	maxWait time.Duration
	none    time.Time
}

// segment is the slots of one lease: the next at next, then one every
// every.
type segment struct {
	next  time.Time
	every time.Duration
	left  int
	slack time.Duration // how late a slot may be taken (slackAfter)
}

func (l *lease) left() int {
	n := 0
	for _, s := range l.segs {
		n += s.left
	}
	return n
}

// maxLease is the most slots one lease of num holds: a twentieth of a
// second's worth.
func maxLease(num numbers.Number) int {
	return num.MPS / 20
}

func (ls *leases) get(pn string) *lease {
	l := ls.m[pn]
	if l == nil {
		l = &lease{size: 1}
		ls.m[pn] = l
	}
	return l
}

// take hands out the number's next leased slot, if one is still good at
// now. ok is false when there is none (or leasing is off for the number
// until pairs passes).
func (ls *leases) take(pn string, now time.Time, stale time.Duration) (at time.Time, slack time.Duration, ok bool, pairs bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[pn]
	if l == nil {
		return time.Time{}, 0, false, false
	}
	return l.take(now, stale)
}

func (l *lease) take(now time.Time, stale time.Duration) (at time.Time, slack time.Duration, ok bool, pairs bool) {
	if now.Before(l.pairsUntil) {
		return time.Time{}, 0, false, true
	}
	for len(l.segs) > 0 {
		sg := &l.segs[0]
		if sg.left == 0 {
			l.segs = l.segs[1:]
			continue
		}
		at = sg.next
		sg.next = sg.next.Add(sg.every)
		sg.left--
		slack = stale
		if sg.slack > 0 {
			slack = min(stale, sg.slack)
		}
		if now.Sub(at) <= slack {
			return at, slack, true, false
		}
		l.wasted = true
	}
	l.segs = nil
	return time.Time{}, 0, false, false
}

// sizeFor sizes the next lease: double after a lease fully used, half after
// one that wasted slots.
func (ls *leases) sizeFor(pn string, most int) int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.get(pn)
	// With slots still leased (another job's lease came meanwhile), this
	// lease adds to them at the same size.
	if l.left() == 0 {
		if l.wasted {
			l.size = max(1, l.size/2)
		} else {
			l.size = min(l.size*2, most)
		}
		l.wasted = false
	}
	return max(1, min(l.size, most))
}

// put keeps the slots of a new lease (the caller took its first), after
// those of earlier leases: the schedule only moves forward, so they are
// later.
func (ls *leases) put(pn string, gen int, next time.Time, every time.Duration, n int, slack time.Duration) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.get(pn)
	if l.gen != gen {
		return
	}
	l.segs = append(l.segs, segment{next: next, every: every, left: n, slack: slack})
}

// drop gives up a number's leased slots and starts its leases small again.
func (ls *leases) drop(pn string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.m[pn]; l != nil {
		l.segs, l.size, l.wasted = nil, 1, false
		l.gen++
	}
}

// pairs turns leasing off for a number until until.
func (ls *leases) pairs(pn string, until time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.get(pn)
	l.segs, l.size, l.wasted = nil, 1, false
	l.gen++
	if until.After(l.pairsUntil) {
		l.pairsUntil = until
	}
}

// maxJoins bounds how many lease requests of others a job waits for
// before it asks Redis itself (each time, the jobs ahead of it took every
// slot): a lease holds a twentieth of a second's worth, so 16 cover the
// jobs of most of a second at the number's rate, and the schedule is then
// far enough ahead for the lease script to answer with a wait.
const maxJoins = 16

// turn is what next found for a job.
type turn struct {
	at    time.Time
	slack time.Duration
	ok    bool // a leased slot, at at
	pairs bool // leasing is off for the number
	// f is the lease request the job waits for (lead false) or must ask
	// and land (lead true; nil when the job asks beside another's, past
	// maxJoins).
	f       *flight
	lead    bool
	waiting int // jobs waiting for f besides the leader
	gen     int
}

// next hands out the number's next leased slot, as take does. When there
// is none, the job waits for the lease request already in flight, or (none
// in flight, or joins at maxJoins) makes one. back says the caller comes
// back from waiting for a flight.
func (ls *leases) next(pn string, now time.Time, maxWait time.Duration, back bool, joins int) turn {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.get(pn)
	if back {
		l.waiting--
	}
	var t turn
	if t.at, t.slack, t.ok, t.pairs = l.take(now, lateLimit); t.ok || t.pairs {
		return t
	}
	if l.flight != nil && joins < maxJoins {
		l.waiting++
		t.f = l.flight
		return t
	}
	t.lead, t.waiting, t.gen = true, l.waiting, l.gen
	if l.flight == nil {
		t.f = &flight{done: make(chan struct{}), maxWait: maxWait}
		l.flight = t.f
	}
	return t
}

// leave is next's back for a job that stops waiting for flights.
func (ls *leases) leave(pn string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.get(pn).waiting--
}

// land ends the lease request f (its slots already put), none set when it
// found no slot within its maxWait.
func (ls *leases) land(pn string, f *flight, none time.Time) {
	if f == nil {
		return
	}
	ls.mu.Lock()
	if l := ls.m[pn]; l != nil && l.flight == f {
		l.flight = nil
	}
	f.none = none
	ls.mu.Unlock()
	close(f.done)
}

// admitLeased admits a job on a leased slot, leasing more when there is
// none: as many as ready says the caller's jobs will use, or (ready 0) as
// many as sizeFor guesses, and at least one for each job waiting for the
// lease. One lease request per number is in flight at a time: a job that
// finds no slot while one is waits for it and takes a slot of it if it
// has room. ok is false when leasing does not apply (a number too slow
// for leases to help, or with recipients on their own schedule): the job
// is then paced on its own.
func (g *Gate) admitLeased(ctx context.Context, num numbers.Number, maxWait time.Duration, ready int) (Admission, bool, error) {
	most := maxLease(num)
	if most < 2 || maxWait <= 0 {
		return Admission{}, false, nil
	}
	pn := num.PhoneNumberID
	back := false
	for joins := 0; ; joins++ {
		now := time.Now()
		t := g.leases.next(pn, now, maxWait, back, joins)
		back = false
		switch {
		case t.ok:
			return reservedAt(t.at, now, t.slack), true, nil
		case t.pairs:
			return Admission{}, false, nil
		case t.lead:
			return g.lease(ctx, num, maxWait, ready, most, now, t)
		}
		select {
		case <-t.f.done:
		case <-ctx.Done():
			g.leases.leave(pn)
			return Admission{}, true, fmt.Errorf("pace %s: %w", pn, ctx.Err())
		}
		if !t.f.none.IsZero() && maxWait <= t.f.maxWait {
			// The schedule has no slot within this job's max wait either.
			if wait := time.Until(t.f.none); wait > 0 {
				g.leases.leave(pn)
				return Admission{Wait: wait, Scope: "pace"}, true, nil
			}
		}
		back = true
	}
}

// lease asks Redis for a lease of the number's slots (t.lead) and admits
// the job on its first.
func (g *Gate) lease(ctx context.Context, num numbers.Number, maxWait time.Duration, ready, most int, now time.Time, t turn) (Admission, bool, error) {
	pn := num.PhoneNumberID
	var none time.Time
	defer func() { g.leases.land(pn, t.f, none) }()
	k := min(ready, most)
	if ready <= 0 {
		k = g.leases.sizeFor(pn, most)
	}
	k = min(max(k, t.waiting+1), most)
	sent := time.Now()
	res, err := leaseScript.Run(ctx, g.rdb, []string{g.rateKey(pn)}, num.MPS, maxWait.Milliseconds(), k).Slice()
	if err != nil {
		return Admission{}, true, fmt.Errorf("pace %s: %w", pn, err)
	}
	if len(res) < 4 {
		return Admission{}, true, fmt.Errorf("pace %s: lease answered %v", pn, res)
	}
	n := toInt(res[0])
	base, _ := strconv.ParseFloat(fmt.Sprint(res[1]), 64)
	interval, _ := strconv.ParseFloat(fmt.Sprint(res[2]), 64)
	// The slots are relative to Redis's now, which was at most a round
	// trip ago: counting them from the answer's arrival errs late (by the
	// round trip, well within windowGuard), never early.
	got := time.Now()
	switch {
	case n < 0:
		g.leases.pairs(pn, got.Add(pairLife))
		return Admission{}, false, nil
	case n == 0:
		none = got.Add(msDuration(base))
		return Admission{Wait: msDuration(base), Scope: "pace"}, true, nil
	}
	first := got.Add(msDuration(base))
	slack := slackAfter(got.Sub(sent))
	if len(res) >= 6 {
		if sec, us := toInt(res[4]), toInt(res[5]); sec > 0 && us >= 0 && us < 1e6 {
			// Placed on Redis's clock as the round trips so far know it:
			// errs late by the best of them rather than by this one.
			redisNow := time.Duration(sec)*time.Second + time.Duration(us)*time.Microsecond
			slot := time.Duration(sec*1000+us/1000)*time.Millisecond + msDuration(base)
			var late time.Duration
			first, late = g.clock.place(sent, got, redisNow, slot)
			slack = slackAfter(late)
		}
	}
	if n > 1 {
		g.leases.put(pn, t.gen, first.Add(msDuration(interval)), msDuration(interval), int(n-1), slack)
	}
	return reservedAt(first, now, slack), true, nil
}

// reservedAt is the admission of a job whose slot is at at and may be
// taken up to slack late.
func reservedAt(at, now time.Time, slack time.Duration) Admission {
	if wait := at.Sub(now); wait > 0 {
		return Admission{Reserved: true, Wait: wait, Scope: "pace", At: at, slack: slack}
	}
	return Admission{Reserved: true, At: at, slack: slack}
}

func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}
