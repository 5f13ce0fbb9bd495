package throttle_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/throttle"
)

// fastNumber is a number fast enough for leases: 200 msg/s, a burst of 20,
// leases of up to 10 slots.
func fastGates(t *testing.T, n int) ([]*throttle.Gate, numbers.Number, *testenv.Redis) {
	t.Helper()
	r := testenv.StartRedis(t)
	reg, err := numbers.Parse("numbers.yaml", []byte("phone_numbers:\n  - phone_number_id: \"3001\"\n    waba_id: \"9003\"\n    mps: 200\n    token_env: TOKEN_A\n"),
		func(string) string { return "token-a" })
	if err != nil {
		t.Fatal(err)
	}
	num, err := reg.Lookup("3001")
	if err != nil {
		t.Fatal(err)
	}
	var gates []*throttle.Gate
	for range n {
		gates = append(gates, throttle.New(r.Client(t), reg, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), throttle.Config{PairEvery: time.Second}))
	}
	return gates, num, r
}

func scriptRuns(t *testing.T, r *testenv.Redis) int {
	t.Helper()
	info := r.Client(t).Info(context.Background(), "commandstats").Val()
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:calls=") {
			var n int
			for _, c := range strings.TrimPrefix(line, "cmdstat_evalsha:calls=") {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return 0
}

// TestLeasesKeepTheSharedPace: three gates (three workers) take 600 slots
// of one number at 200 msg/s, most of them leased: the slots, all gates
// together, never put more than 200 in any sliding one-second window (no
// burst), span what the paced rate says, and cost far fewer script runs
// than one per send.
func TestLeasesKeepTheSharedPace(t *testing.T) {
	gates, num, r := fastGates(t, 3)
	ctx := context.Background()
	before := scriptRuns(t, r)
	const n = 600
	var slots []time.Time
	for i := range n {
		adm, err := gates[i%3].Admit(ctx, num, "15551234567", 10*time.Second)
		if err != nil || !adm.Reserved || adm.At.IsZero() {
			t.Fatalf("admission %d: %+v %v", i, adm, err)
		}
		slots = append(slots, adm.At)
	}
	runs := scriptRuns(t, r) - before
	if most, at := busiestSecond(slots); most > num.MPS {
		t.Fatalf("%d slots within one second from %s: more than the number's %d", most, at.Format(time.StampMicro), num.MPS)
	}
	// 599 gaps of (1 s + 30 ms)/200 = 3.09 s.
	sort.Slice(slots, func(i, j int) bool { return slots[i].Before(slots[j]) })
	if span := slots[n-1].Sub(slots[0]); span < 3000*time.Millisecond || span > 3200*time.Millisecond {
		t.Errorf("600 slots at 200/s span %s, want about 3.09s", span)
	}
	if runs > n/3 {
		t.Errorf("%d script runs for %d slots: leases should cut them", runs, n)
	}
	t.Logf("%d slots from %d script runs", n, runs)
}

// busiestSecond is the most times of ts within one sliding one-second
// window [t, t+1s), and where that window starts.
func busiestSecond(ts []time.Time) (int, time.Time) {
	s := append([]time.Time(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	most, at := 0, time.Time{}
	for i := range s {
		j := sort.Search(len(s), func(j int) bool { return !s[j].Before(s[i].Add(time.Second)) })
		if j-i > most {
			most, at = j-i, s[i]
		}
	}
	return most, at
}

// TestLeasesStopForPairs: once a recipient is on its own schedule (131056
// seen by another worker), a gate stops leasing within one lease's slots
// and checks each job against its recipient.
func TestLeasesStopForPairs(t *testing.T) {
	gates, num, _ := fastGates(t, 2)
	ctx := context.Background()
	a, b := gates[0], gates[1]
	for range 30 { // b's leases grow
		if _, err := b.Admit(ctx, num, "15550000000", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	a.Throttled(ctx, num, "15551111111", policy.ScopeRecipient, nil, time.Minute)
	held := -1
	for i := range 12 {
		adm, err := b.Admit(ctx, num, "15551111111", 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !adm.Reserved && adm.Scope == "recipient" {
			held = i
			break
		}
	}
	if held < 0 || held > 10 {
		t.Fatalf("the hot recipient was still admitted at the number's pace after %d jobs", held)
	}
	adm, err := b.Admit(ctx, num, "15552222222", 10*time.Second)
	if err != nil || !adm.Reserved {
		t.Errorf("another recipient: %+v %v", adm, err)
	}
}

// TestLeasesDroppedOn130429: a 130429 gives up the slots leased at the old
// rate: the next job waits for the schedule the back-off pushed out, well
// past the slots leased before.
func TestLeasesDroppedOn130429(t *testing.T) {
	gates, num, _ := fastGates(t, 1)
	g := gates[0]
	ctx := context.Background()
	var last time.Time
	for i := range 8 { // the leases grow to several slots
		adm, err := g.Admit(ctx, num, "15550000000", 10*time.Second)
		if err != nil || !adm.Reserved {
			t.Fatalf("job %d: %+v %v", i, adm, err)
		}
		last = adm.At
	}
	g.Throttled(ctx, num, "15550000000", policy.ScopeNumber, nil, time.Minute)
	adm, err := g.Admit(ctx, num, "15550000000", 10*time.Second)
	// The back-off pushes the schedule out by 20 slots at 160/s (129 ms);
	// a slot leased before it would be one slot (5 ms) after the last.
	if err != nil || !adm.Reserved || adm.At.Sub(last) < 100*time.Millisecond {
		t.Errorf("after 130429 the next job went on an old slot: %s after the last, %+v %v", adm.At.Sub(last), adm, err)
	}
}

// TestLeaseSizedToReady: a gate told how many of its jobs are ready leases
// that many slots (up to a lease's bound of 10 at 200 msg/s) and no more:
// its next job after them needs a script run of its own. At the end of a
// backlog no slot is leased that no job will take. (A gate not told sizes
// its leases itself, doubling them from 1.)
func TestLeaseSizedToReady(t *testing.T) {
	gates, num, r := fastGates(t, 2)
	ctx := context.Background()
	a := gates[0]
	// The other gate takes the schedule's next two seconds, one slot a
	// script run, so that a's slots are in the future however slow the
	// machine (a leased slot not taken in time is given up).
	for range 400 {
		if _, err := gates[1].AdmitReady(ctx, num, "15550000000", 10*time.Second, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, ready := range []int{2, 3, 1, 40} {
		before := scriptRuns(t, r)
		for got := range min(ready, 10) { // a's ready jobs take its leased slots
			adm, err := a.AdmitReady(ctx, num, "15550000000", 10*time.Second, ready-got)
			if err != nil || !adm.Reserved {
				t.Fatalf("ready %d, job %d: %+v %v", ready, got, adm, err)
			}
		}
		if n := scriptRuns(t, r) - before; n != 1 {
			t.Errorf("ready %d: %d script runs for the first %d jobs; want 1 (one lease)", ready, n, min(ready, 10))
		}
		before = scriptRuns(t, r)
		if _, err := a.AdmitReady(ctx, num, "15550000000", 10*time.Second, 1); err != nil {
			t.Fatal(err)
		}
		if n := scriptRuns(t, r) - before; n != 1 {
			t.Errorf("ready %d: the job after them took a slot leased for none (%d script runs)", ready, n)
		}
	}
}

// TestLeasesAskedOnceAtATime: 40 jobs of one number that find no leased
// slot at once (a worker's pull at a high rate) ask Redis for one lease at
// a time: the others wait for it and take its slots, and the next lease is
// sized for the jobs still waiting. Before, each asked for a lease of its
// own (36 script runs), each lease moved the schedule ahead by its size,
// and the 40 slots spread over 1.8 s instead of 40 spacings (0.2 s).
func TestLeasesAskedOnceAtATime(t *testing.T) {
	gates, num, r := fastGates(t, 1)
	g := gates[0]
	ctx := context.Background()
	before := scriptRuns(t, r)
	const n = 40
	slots := make([]time.Time, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			adm, err := g.Admit(ctx, num, "15550000000", 10*time.Second)
			if err == nil && (!adm.Reserved || adm.At.IsZero()) {
				err = fmt.Errorf("job %d not reserved: %+v", i, adm)
			}
			slots[i] = adm.At
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	runs := scriptRuns(t, r) - before
	sort.Slice(slots, func(i, j int) bool { return slots[i].Before(slots[j]) })
	span := slots[n-1].Sub(slots[0])
	t.Logf("%d jobs: %d script runs, slots over %s", n, runs, span)
	// 40 slots of 10 at most a lease at 200/s: 4 leases, 39 spacings of
	// 5.15 ms (201 ms). Allow a lease's worth more of each.
	if runs > 8 {
		t.Errorf("%d script runs for %d jobs asking at once; want about %d (one lease at a time)", runs, n, n/maxLeaseSlots)
	}
	if span > 300*time.Millisecond {
		t.Errorf("%d slots spread over %s; want about %s (the leases moved the schedule past the jobs)", n, span, 39*(time.Second+30*time.Millisecond)/200)
	}
	if most, at := busiestSecond(slots); most > num.MPS {
		t.Errorf("%d slots within one second from %s", most, at.Format(time.StampMicro))
	}
}

// maxLeaseSlots is the most slots one lease of fastGates' number holds.
const maxLeaseSlots = 10

// TestLeaseNoneShared: jobs that waited for a lease request which found no
// slot within their max wait take its answer (wait, not reserved) without
// asking Redis again each.
func TestLeaseNoneShared(t *testing.T) {
	gates, num, r := fastGates(t, 2)
	ctx := context.Background()
	// The other gate takes the schedule's next 7.7 s, ten slots a script
	// run (it keeps nine of each leased).
	for range 150 {
		if _, err := gates[1].AdmitReady(ctx, num, "15550000000", 10*time.Second, 10); err != nil {
			t.Fatal(err)
		}
	}
	g := gates[0]
	before := scriptRuns(t, r)
	const n = 20
	adms := make([]throttle.Admission, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			adms[i], errs[i] = g.Admit(ctx, num, "15550000000", 100*time.Millisecond)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || adms[i].Reserved || adms[i].Wait <= 0 || adms[i].Wait > 8*time.Second || adms[i].Scope != "pace" {
			t.Errorf("job %d: %+v %v; want a pace wait of a few seconds, nothing reserved", i, adms[i], errs[i])
		}
	}
	if runs := scriptRuns(t, r) - before; runs > n/2 {
		t.Errorf("%d script runs for %d jobs finding no slot at once", runs, n)
	}
}
