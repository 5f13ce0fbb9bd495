package fakegraph

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// strictEnv is a simulator whose number testPhone may send mps messages in
// any one second, and number "200" as many, on its own.
func strictEnv(t *testing.T, mps int, templates ...Template) *env {
	t.Helper()
	return setup(t, Config{Scenario: &Scenario{
		Limits: Limits{Throughput: Throughput{Enabled: true, Strict: true}},
		PhoneNumbers: []PhoneNumber{{PhoneNumberID: testPhone, MPS: mps},
			{PhoneNumberID: "200", MPS: mps, WABAID: "9"}},
		Templates: templates,
	}})
}

// sendN sends n messages from testPhone and returns how many were accepted;
// every refusal must be a 130429 with Meta's body.
func (e *env) sendN(t *testing.T, tag string, n int) int {
	t.Helper()
	ok := 0
	for i := range n {
		_, err := e.send(t, tag+strconv.Itoa(i), text("1555000"+strconv.Itoa(1000+i)))
		if err == nil {
			ok++
			continue
		}
		ae := apiError(t, err, 130429)
		if ae.HTTPStatus != 429 || ae.Subcode != 2494055 || ae.Details != "Cloud API message throughput has been reached." || ae.FBTraceID == "" {
			t.Fatalf("130429 not in Meta's shape: %+v", ae)
		}
	}
	return ok
}

func TestStrictThroughputNoBurst(t *testing.T) {
	t.Parallel()
	e := strictEnv(t, 5)
	// Exactly mps in one instant: all accepted; the next one is refused.
	if got := e.sendN(t, "a", 5); got != 5 {
		t.Fatalf("%d of 5 sends accepted in one instant, want all", got)
	}
	if got := e.sendN(t, "b", 1); got != 0 {
		t.Fatal("the mps+1-th send in one second was accepted")
	}
	// Another number has its own window.
	if _, err := e.sendFrom(t, "200", "other", text(testTo)); err != nil {
		t.Fatalf("number 200: %v", err)
	}
	// Still inside the second: refused however close to its end.
	e.clock.Add(999 * time.Millisecond)
	if got := e.sendN(t, "c", 1); got != 0 {
		t.Fatal("accepted 999ms after a full second's worth")
	}
	// A whole second after the first five, their window is over: mps
	// again, not one more (no burst saved up).
	e.clock.Add(time.Millisecond)
	if got := e.sendN(t, "d", 7); got != 5 {
		t.Fatalf("%d of 7 accepted one second later, want 5", got)
	}
	// A long pause saves nothing up either.
	e.clock.Add(time.Hour)
	if got := e.sendN(t, "e", 8); got != 5 {
		t.Fatalf("%d of 8 accepted after an hour idle, want 5", got)
	}
}

func TestStrictThroughputWindowSlides(t *testing.T) {
	t.Parallel()
	e := strictEnv(t, 5)
	if got := e.sendN(t, "a", 3); got != 3 { // at 0
		t.Fatalf("at 0: %d of 3", got)
	}
	e.clock.Add(500 * time.Millisecond)
	if got := e.sendN(t, "b", 3); got != 2 { // at 0.5s: 2 more fit
		t.Fatalf("at 0.5s: %d of 3, want 2", got)
	}
	e.clock.Add(499 * time.Millisecond)
	if got := e.sendN(t, "c", 1); got != 0 { // at 0.999s: 5 in (0, 0.999]
		t.Fatal("at 0.999s: accepted a sixth send in one second")
	}
	e.clock.Add(time.Millisecond)
	if got := e.sendN(t, "d", 4); got != 3 { // at 1s: the three of 0 left
		t.Fatalf("at 1s: %d of 4, want 3", got)
	}
	e.clock.Add(500 * time.Millisecond)
	if got := e.sendN(t, "e", 4); got != 2 { // at 1.5s: the two of 0.5s left
		t.Fatalf("at 1.5s: %d of 4, want 2", got)
	}
	// In every one-second window of what was accepted, at most 5.
	var times []time.Time
	for _, s := range e.sim.Sends(0) {
		if s.Outcome == OutcomeAccepted {
			times = append(times, s.Time)
		}
	}
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		if n > 5 {
			t.Fatalf("%d accepted sends in the second from %v", n, times[i])
		}
	}
}

// A send the window admitted but a later check refused does not use up a
// place: only accepted sends count.
func TestStrictThroughputCountsAcceptedOnly(t *testing.T) {
	t.Parallel()
	e := strictEnv(t, 3, Template{Name: "hello", Language: "en"})
	for i := range 4 {
		_, err := e.send(t, "missing"+strconv.Itoa(i), tmpl(testTo, "nosuch", "en", 0))
		apiError(t, err, 132001)
	}
	if got := e.sendN(t, "a", 4); got != 3 {
		t.Fatalf("%d of 4 accepted after refused template sends, want 3", got)
	}
}

// Concurrent sends in one instant: exactly mps accepted.
func TestStrictThroughputConcurrent(t *testing.T) {
	t.Parallel()
	const mps, senders = 20, 60
	e := strictEnv(t, mps)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i := range senders {
		wg.Go(func() {
			_, err := e.send(t, "c"+strconv.Itoa(i), text("1555000"+strconv.Itoa(1000+i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else {
			apiError(t, err, 130429)
		}
	}
	if ok != mps {
		t.Fatalf("%d of %d concurrent sends accepted, want %d", ok, senders, mps)
	}
}

func TestSlidingWindowEdges(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var w slidingWindow
	// n below 1 is taken as 1: one send per second, never none.
	if _, ok := w.take(t0, 0); !ok {
		t.Fatal("n=0: first send refused")
	}
	if _, ok := w.take(t0.Add(time.Second-1), -3); ok {
		t.Fatal("n=-3: second send inside the second accepted")
	}
	at, ok := w.take(t0.Add(time.Second), 1)
	if !ok {
		t.Fatal("one second later: refused")
	}
	// A clock read earlier than the latest send counts at the latest send.
	at2, ok := w.take(t0.Add(500*time.Millisecond), 2)
	if !ok || !at2.Equal(at) {
		t.Fatalf("out-of-order time: %v %v, want it counted at %v", at2, ok, at)
	}
	// Releasing a time it does not hold changes nothing.
	w.release(t0.Add(time.Hour))
	if _, ok := w.take(t0.Add(1500*time.Millisecond), 2); ok {
		t.Fatal("a release of an unknown time freed a place")
	}
	// Releasing one it holds frees exactly one place.
	w.release(at2)
	if _, ok := w.take(t0.Add(1500*time.Millisecond), 2); !ok {
		t.Fatal("a released place was not free")
	}
	if _, ok := w.take(t0.Add(1500*time.Millisecond), 2); ok {
		t.Fatal("a release freed two places")
	}
}
