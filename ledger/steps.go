package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A window that outgrows its buckets gets more of them: when its count
// passes growAt records a bucket of its newest step, a process announces a
// step of growBy times as many buckets (P:lb:<w>:<k>, "<count>:<from ms>",
// SET NX: the first announcement stands), written to from growDelay after
// the announcement on. Lookups read every step a window has, announced or
// in use, newest first; a process trusts what it knows of a window's steps
// for stepsFresh only while the window can still grow, so that a step is
// known everywhere before anything is written to it (this bounds how far
// the hosts' clocks may differ: growDelay less twice stepsFresh, 2 s). Without it the
// first window of a deployment, which has no predecessor to size it, keeps
// Options.Buckets whatever its volume: at a million sends into 256 buckets
// every bucket is a hashtable and a sent job costs twice the bytes.
const (
	growAt     = 72 // under hash-max-listpack-entries (128) with growDelay's records
	growBy     = 4
	maxSteps   = 8 // 256 buckets grow to 16 million
	growDelay  = 4 * time.Second
	stepsFresh = time.Second
)

// step is a bucket count of a window and when writes go to it.
type step struct {
	n    int
	from time.Time
}

// steps is what a process knows of a window's buckets: steps[0] is the
// count the window started with; none: the window has no records.
type steps struct {
	steps      []step
	checked    time.Time
	refreshing bool // a caller is reading them again (index.mu)
}

// writeTo is where records are written at now.
func (s *steps) writeTo(now time.Time) buckets {
	var b buckets
	for i, st := range s.steps {
		if !st.from.After(now) {
			b = s.at(i)
		}
	}
	return b
}

// at is step i's buckets.
func (s *steps) at(i int) buckets {
	if i == 0 {
		return buckets{n: s.steps[0].n}
	}
	return buckets{n: s.steps[i].n, base: s.steps[i].n}
}

// writeBuckets returns where window w's records are written now; a window
// without a bucket count gets one (from the previous window's count).
func (x *index) writeBuckets(ctx context.Context, w int64) (buckets, error) {
	s, err := x.windowSteps(ctx, w, true)
	if err != nil {
		return buckets{}, err
	}
	return s.writeTo(x.now()), nil
}

// windowSteps returns what is known of window w's buckets (nil: none).
// What is older than stepsFresh is read again, by one caller at a time:
// the others go on with it meanwhile, up to twice that age. The reads are
// not cancelled with ctx: a sent record is written whatever its context
// (a worker writes it after a send that took its deadline), and so is
// where it goes.
func (x *index) windowSteps(ctx context.Context, w int64, create bool) (*steps, error) {
	ctx = context.WithoutCancel(ctx)
	now := x.now()
	x.mu.Lock()
	s, ok := x.buckets[w]
	if ok && (s != nil || !create) {
		if x.settled(w, s, now) || (s.refreshing && now.Sub(s.checked) < 2*stepsFresh) {
			x.mu.Unlock()
			return s, nil
		}
		s.refreshing = true
	}
	x.mu.Unlock()
	fresh, err := x.readSteps(ctx, w)
	if err == nil && fresh == nil && create {
		if err = x.openWindow(ctx, w); err == nil {
			if fresh, err = x.readSteps(ctx, w); err == nil && fresh == nil {
				err = errors.New("ledger index buckets: window opened without a count")
			}
		}
	}
	if err != nil {
		if s != nil {
			x.mu.Lock()
			s.refreshing = false
			x.mu.Unlock()
		}
		return nil, err
	}
	if fresh != nil || w < x.windowAt(now) {
		// A past window without a bucket count gets no records now.
		x.remember(w, fresh)
	}
	return fresh, nil
}

// settled says whether what a process knows of window w can be used
// without asking Redis again: it is fresh, or the window ended long enough
// before it was learnt that no step can come after it.
func (x *index) settled(w int64, s *steps, now time.Time) bool {
	if s == nil {
		return true
	}
	if now.Sub(s.checked) < stepsFresh {
		return true
	}
	return s.checked.After(x.start(w + 1).Add(time.Minute))
}

// readSteps reads window w's bucket count and steps (nil: no count yet).
func (x *index) readSteps(ctx context.Context, w int64) (*steps, error) {
	now := x.now()
	cmds := make([]*redis.StringCmd, maxSteps+1)
	_, err := x.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds[0] = p.Get(ctx, x.metaKey("b", w))
		for k := 1; k <= maxSteps; k++ {
			cmds[k] = p.Get(ctx, x.stepKey(w, k))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("ledger index buckets: %w", err)
	}
	n, err := cmds[0].Int()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("ledger index buckets: window %d has count %q", w, cmds[0].Val())
	}
	s := &steps{steps: []step{{n: n}}, checked: now}
	for k := 1; k <= maxSteps; k++ {
		v, err := cmds[k].Result()
		if errors.Is(err, redis.Nil) {
			break
		}
		st, ok := parseStep(v)
		if err != nil || !ok {
			return nil, fmt.Errorf("ledger index buckets: window %d step %d is %q", w, k, v)
		}
		s.steps = append(s.steps, st)
	}
	return s, nil
}

func (x *index) stepKey(w int64, k int) string {
	return x.metaKey("b", w) + ":" + strconv.Itoa(k)
}

func parseStep(v string) (step, bool) {
	c, f, ok := strings.Cut(v, ":")
	n, err1 := strconv.Atoi(c)
	ms, err2 := strconv.ParseInt(f, 10, 64)
	if !ok || err1 != nil || err2 != nil || n <= 0 {
		return step{}, false
	}
	return step{n: n, from: time.UnixMilli(ms)}, true
}

// openWindow gives window w its first bucket count, from the previous
// window's count.
func (x *index) openWindow(ctx context.Context, w int64) error {
	want := x.firstBuckets
	prev, err := x.rdb.Get(ctx, x.metaKey("n", w-1)).Int64()
	switch {
	case err == nil:
		want = int((prev + perBucket - 1) / perBucket)
		if want < 1 {
			want = 1
		}
	case !errors.Is(err, redis.Nil):
		return fmt.Errorf("ledger index buckets: %w", err)
	}
	// SET NX: the first process to open the window decides; the others
	// read its number.
	if err := x.rdb.SetArgs(ctx, x.metaKey("b", w), want, redis.SetArgs{Mode: "NX", ExpireAt: x.expireAt(w)}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ledger index buckets: %w", err)
	}
	return nil
}

// grow announces a step of window w when its count (records so far)
// has outgrown its newest one.
func (x *index) grow(ctx context.Context, w int64, count int64) error {
	ctx = context.WithoutCancel(ctx)
	s, err := x.windowSteps(ctx, w, false)
	if err != nil || s == nil {
		return err
	}
	top := s.steps[len(s.steps)-1]
	k := len(s.steps)
	if k > maxSteps || count < int64(growAt)*int64(top.n) {
		return nil
	}
	v := strconv.Itoa(top.n*growBy) + ":" + strconv.FormatInt(x.now().Add(growDelay).UnixMilli(), 10)
	if err := x.rdb.SetArgs(ctx, x.stepKey(w, k), v, redis.SetArgs{Mode: "NX", ExpireAt: x.expireAt(w)}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ledger index grow: %w", err)
	}
	x.mu.Lock()
	delete(x.buckets, w) // read the step back, this one's or another's
	x.mu.Unlock()
	return nil
}

func (x *index) remember(w int64, s *steps) {
	x.mu.Lock()
	x.buckets[w] = s
	x.mu.Unlock()
}

// alive returns where a lookup reads, newest first: a window and a bucket
// count for every step of every window with records (a window that grew
// is listed once a step).
func (x *index) alive(ctx context.Context) ([]int64, []buckets, error) {
	cur := x.windowAt(x.now())
	var ws []int64
	var ns []buckets
	for w := cur; w > cur-windowsAlive; w-- {
		s, err := x.windowSteps(ctx, w, false)
		if err != nil {
			return nil, nil, err
		}
		if s == nil {
			continue
		}
		for i := len(s.steps) - 1; i >= 0; i-- {
			ws = append(ws, w)
			ns = append(ns, s.at(i))
		}
	}
	return ws, ns, nil
}
