package fakegraph

import (
	"strconv"
	"sync"
	"time"
)

// bucket is a token bucket on the injected clock.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// take spends one token if there is one; rate is tokens per second, burst
// the bucket's size.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * rate
		if b.tokens > burst {
			b.tokens = burst
		}
		b.last = now
	}
	if b.tokens >= 1-1e-9 { // refills add up in floating point: 5/6 + 1/6 may miss 1
		b.tokens--
		return true
	}
	return false
}

// slidingWindow admits at most n sends in any one-second window: the strict
// throughput limit, which has no burst. Meta documents none, so a sender
// must assume none.
type slidingWindow struct {
	mu    sync.Mutex
	times []time.Time // the sends admitted in the last second, oldest first
}

// take admits a send at now unless n sends were admitted less than a second
// before it, and returns the time it recorded. A now earlier than the latest
// admitted send (concurrent requests read the clock in either order) counts
// as that send's time, which keeps the times in order and errs on the strict
// side.
func (w *slidingWindow) take(now time.Time, n int) (time.Time, bool) {
	n = max(n, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if k := len(w.times); k > 0 && now.Before(w.times[k-1]) {
		now = w.times[k-1]
	}
	// A send a whole second or more before now shares no one-second window
	// with it.
	cut := now.Add(-time.Second)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = w.times[i:] // append reallocates once the front is used up
	if len(w.times) >= n {
		return time.Time{}, false
	}
	w.times = append(w.times, now)
	return now, true
}

// release forgets a send admitted at t that was not accepted after all (a
// later check refused it), so that only accepted sends fill the window.
func (w *slidingWindow) release(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.times) - 1; i >= 0; i-- {
		if w.times[i].Equal(t) {
			w.times = append(w.times[:i], w.times[i+1:]...)
			return
		}
	}
}

// callWindow counts calls in fixed windows, the way Meta's app and BUC
// limits report a share of a budget.
type callWindow struct {
	mu    sync.Mutex
	start time.Time
	count int
}

// usage is the state of a call limit after one call.
type usage struct {
	pct    int           // share of the budget used, 0 to 100
	regain time.Duration // until the budget is back; 0 when not exhausted
}

// take counts one call; ok is false when the call is past the budget.
func (w *callWindow) take(now time.Time, limit CallLimit) (u usage, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	per := limit.Per.D()
	if w.start.IsZero() || now.Sub(w.start) >= per {
		w.start, w.count = now, 0
	}
	w.count++
	u.pct = w.count * 100 / limit.Calls
	if u.pct > 100 {
		u.pct = 100
	}
	if w.count > limit.Calls {
		u.regain = w.start.Add(per).Sub(now)
		return u, false
	}
	return u, true
}

// regainMinutes is estimated_time_to_regain_access: whole minutes, rounded
// up, as Meta reports it.
func regainMinutes(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Minute - 1) / time.Minute)
}

// appUsageHeader is X-App-Usage: {"call_count":N,"total_cputime":N,"total_time":N}.
func appUsageHeader(pct int) string {
	p := strconv.Itoa(pct)
	cpu := strconv.Itoa(pct / 2)
	return `{"call_count":` + p + `,"total_cputime":` + cpu + `,"total_time":` + cpu + `}`
}

// bucUsageHeader is X-Business-Use-Case-Usage for one WABA.
func bucUsageHeader(waba string, pct int, regain time.Duration) string {
	p := strconv.Itoa(pct)
	cpu := strconv.Itoa(pct / 2)
	return `{"` + waba + `":[{"type":"whatsapp_business_management","call_count":` + p +
		`,"total_cputime":` + cpu + `,"total_time":` + cpu +
		`,"estimated_time_to_regain_access":` + strconv.Itoa(regainMinutes(regain)) + `}]}`
}

// checkLimits applies the app, WABA, throughput and pair limits. A send the
// strict throughput window admitted is in d.slot, to release if it is not
// accepted in the end.
func (s *Server) checkLimits(sn *snapshot, send *Send, d *decision, now time.Time) *errSpec {
	l := &sn.limits
	waba := d.phone.WABAID
	if now.Before(sn.appUntil) {
		e := codeError(4)
		e.headers = append(e.headers, header{"X-App-Usage", appUsageHeader(100)})
		return e
	}
	if until, ok := sn.wabaUntil[waba]; ok && now.Before(until) {
		e := codeError(80007)
		e.headers = append(e.headers, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, 100, until.Sub(now))})
		return e
	}
	if l.App.Calls > 0 {
		u, ok := s.appCalls.Load().take(now, l.App)
		if !ok {
			e := codeError(4)
			e.headers = append(e.headers, header{"X-App-Usage", appUsageHeader(u.pct)})
			return e
		}
		if l.UsageHeaders {
			d.usage = append(d.usage, header{"X-App-Usage", appUsageHeader(u.pct)})
		}
	} else if l.UsageHeaders {
		d.usage = append(d.usage, header{"X-App-Usage", appUsageHeader(0)})
	}
	if l.WABA.Calls > 0 {
		v, ok := s.wabaCalls.Load(waba)
		if !ok {
			v, _ = s.wabaCalls.LoadOrStore(waba, &callWindow{})
		}
		u, ok := v.(*callWindow).take(now, l.WABA)
		if !ok {
			e := codeError(80007)
			e.headers = append(e.headers, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, u.pct, u.regain)})
			return e
		}
		if l.UsageHeaders {
			d.usage = append(d.usage, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, u.pct, 0)})
		}
	} else if l.UsageHeaders {
		d.usage = append(d.usage, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, 0, 0)})
	}
	if l.Throughput.Enabled && l.Throughput.Strict {
		v, ok := s.rates.Load(send.PhoneNumberID)
		if !ok {
			v, _ = s.rates.LoadOrStore(send.PhoneNumberID, &slidingWindow{})
		}
		w := v.(*slidingWindow)
		at, ok := w.take(now, d.phone.MPS)
		if !ok {
			return codeError(130429)
		}
		d.slot, d.slotAt = w, at
	} else if l.Throughput.Enabled {
		mps := d.phone.MPS
		burst := l.Throughput.Burst
		if burst <= 0 {
			burst = max(1, mps/4)
		}
		v, ok := s.buckets.Load(send.PhoneNumberID)
		if !ok {
			v, _ = s.buckets.LoadOrStore(send.PhoneNumberID, &bucket{})
		}
		if !v.(*bucket).take(now, float64(mps), float64(burst)) {
			return codeError(130429)
		}
	}
	if l.Pair.Enabled {
		key := send.PhoneNumberID + "|" + d.waID
		v, ok := s.pairs.Load(key)
		if !ok {
			v, _ = s.pairs.LoadOrStore(key, &bucket{})
		}
		if !v.(*bucket).take(now, 1/l.Pair.Every.D().Seconds(), float64(l.Pair.Burst)) {
			return codeError(131056)
		}
	}
	return nil
}
