package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testenv.ServerGoroutines()...)
}

// member is one worker's registry, its publisher, and the consumer's
// counts as it last read them (none until the test sets them).
type member struct {
	m    *telemetry.Metrics
	pub  *Publisher
	cons Consumer
}

func newMember(t *testing.T, r *testenv.Redis, clock *testenv.Clock, id string, holding int) *member {
	t.Helper()
	reg := prometheus.NewRegistry()
	w := &member{m: telemetry.NewMetrics(reg)}
	w.pub = NewPublisher(r.Client(t), reg, PublisherOptions{Prefix: "t", Worker: id, Every: time.Second, Now: clock.Now,
		Holding: func() int { return holding }, Consumer: func() Consumer { return w.cons }})
	return w
}

func (w *member) publish(t *testing.T) {
	t.Helper()
	if err := w.pub.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestTwoWorkersSum: two workers' counters add up in the minutes they
// grew in; a counter published twice counts once; the consumer's counts
// are those read last (a worker that has not read them yet has none), the
// workers' holdings are summed.
func TestTwoWorkersSum(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	clock := testenv.NewClock(time.Date(2026, 12, 3, 16, 0, 10, 0, time.UTC))
	a, b := newMember(t, r, clock, "a", 3), newMember(t, r, clock, "b", 5)
	a.m.Sends.WithLabelValues("sent", "pn1").Add(10)
	a.m.Sends.WithLabelValues("failed", "pn1").Add(4)
	a.m.Retries.WithLabelValues("131000").Add(3)
	a.m.APIErrors.WithLabelValues("131000").Add(3)
	a.m.APIErrors.WithLabelValues("131026").Add(1)
	a.m.Parked.WithLabelValues("invalid").Add(1)
	b.m.Sends.WithLabelValues("sent", "pn2").Add(7)
	b.m.Sends.WithLabelValues("throttled", "pn2").Add(2)
	b.m.Throttled.WithLabelValues("number").Add(2)
	b.m.Throttled.WithLabelValues("pace").Add(6)
	a.m.InFlight.Set(2)
	a.cons = Consumer{Pending: 30, AckPending: 9, At: clock.Now()}
	a.publish(t)
	a.publish(t) // nothing grew: nothing added
	clock.Add(time.Minute)
	b.publish(t) // b has not read the consumer yet
	a.cons = Consumer{Pending: 40, AckPending: 11, At: clock.Now()}
	a.m.Sends.WithLabelValues("sent", "pn1").Add(1)
	a.m.Parked.WithLabelValues("window").Add(2)
	a.publish(t)

	v, err := NewReader(r.Client(t), "t", clock.Now).Read(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	tot := v.Total
	if tot.Sent != 18 || tot.Failed != 4 || tot.Retried != 3 || tot.E131000 != 3 || tot.RateLimited != 2 ||
		tot.Attempts() != 22 || tot.ThrottledTotal() != 8 || tot.Throttled["pace"] != 6 || tot.ParkedTotal() != 3 || tot.Parked["window"] != 2 {
		t.Errorf("total %+v", tot)
	}
	if len(v.Minutes) != 3 || v.Minutes[0].Reported || v.Minutes[1].Sent != 10 || v.Minutes[2].Sent != 8 || !v.Minutes[2].Start.Equal(time.Date(2026, 12, 3, 16, 1, 0, 0, time.UTC)) {
		t.Errorf("minutes %+v", v.Minutes)
	}
	// a read the consumer last: its reading is the view's.
	if v.Pending != 40 || v.AckPending != 11 || !v.PendingAt.Equal(clock.Now()) || v.Minutes[1].Pending != 30 || !v.Minutes[2].Reported || v.Holding != 8 || v.InFlight != 2 || v.Waiting() != 3 || len(v.Workers) != 2 || v.Workers[0].ID != "a" {
		t.Errorf("view %+v", v)
	}
}

// TestStaleWorkers: a worker that stopped reporting leaves the list (its
// counts stay in their minutes); one gone for an hour leaves the hash; a
// record that is not JSON is removed; Run's end removes its own.
func TestStaleWorkers(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	clock := testenv.NewClock(time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC))
	a := newMember(t, r, clock, "a", 1)
	a.m.Sends.WithLabelValues("sent", "pn1").Add(5)
	a.publish(t)
	if err := rdb.HSet(context.Background(), workersKey("t"), "garbage", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	read := func(n int) View {
		t.Helper()
		v, err := NewReader(rdb, "t", clock.Now).Read(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := read(1); len(v.Workers) != 1 || v.Holding != 1 {
		t.Errorf("fresh: %+v", v.Workers)
	}
	if n, _ := rdb.HLen(context.Background(), workersKey("t")).Result(); n != 1 {
		t.Errorf("the record that is not JSON stayed: %d records", n)
	}
	clock.Add(6 * time.Second) // past 3 intervals of 1s and the margin
	if v := read(1); len(v.Workers) != 0 || v.Holding != 0 || v.Total.Sent != 5 {
		t.Errorf("stale: %+v", v)
	}
	clock.Add(forget)
	read(1)
	if n, _ := rdb.HLen(context.Background(), workersKey("t")).Result(); n != 0 {
		t.Errorf("a worker gone for an hour is still listed: %d", n)
	}

	b := newMember(t, r, clock, "b", 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.pub.Run(ctx); close(done) }()
	testenv.Eventually(t, 5*time.Second, func() error {
		if len(read(1).Workers) != 1 {
			return context.DeadlineExceeded
		}
		return nil
	})
	b.m.Sends.WithLabelValues("sent", "pn1").Add(2)
	cancel()
	<-done
	if v := read(1); len(v.Workers) != 0 || v.Total.Sent != 2 {
		t.Errorf("after Run's end: %+v, sent %d (the last counts are published on the way out)", v.Workers, v.Total.Sent)
	}
}

// TestRedisDown: a publish Redis refuses is added by the next one, not
// lost and not counted twice; a read says Redis did not answer.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	clock := testenv.NewClock(time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC))
	a := newMember(t, r, clock, "a", 0)
	a.m.Sends.WithLabelValues("sent", "pn1").Add(5)
	a.publish(t)
	r.Stop()
	a.m.Sends.WithLabelValues("sent", "pn1").Add(3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.pub.Publish(ctx); err == nil {
		t.Fatal("a publish to a stopped Redis succeeded")
	}
	if _, err := NewReader(r.Client(t), "t", clock.Now).Read(ctx, 1); err == nil {
		t.Error("a read of a stopped Redis succeeded")
	}
	r.Start(t)
	a.publish(t)
	v, err := NewReader(r.Client(t), "t", clock.Now).Read(context.Background(), 1)
	if err != nil || v.Total.Sent != 8 {
		t.Errorf("sent %d after Redis came back, want 8 (%v)", v.Total.Sent, err)
	}
}

// TestBadBuckets: the bounds of a read, and fields a bucket should not
// hold (written by hand) count as zero.
func TestBadBuckets(t *testing.T) {
	t.Parallel()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	clock := testenv.NewClock(time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC))
	rd := NewReader(rdb, "t", clock.Now)
	for _, n := range []int{0, -1, MaxMinutes + 1} {
		if _, err := rd.Read(context.Background(), n); err == nil {
			t.Errorf("%d minutes: no error", n)
		}
	}
	if err := rdb.HSet(context.Background(), minuteKey("t", clock.Now()), fSent, "x", fFailed, "-4", fParked+"window", "2", "other", "9", fRetried, "1e3").Err(); err != nil {
		t.Fatal(err)
	}
	v, err := rd.Read(context.Background(), MaxMinutes)
	if err != nil {
		t.Fatal(err)
	}
	if tot := v.Total; tot.Sent != 0 || tot.Failed != 0 || tot.Retried != 0 || tot.Parked["window"] != 2 || len(v.Minutes) != MaxMinutes {
		t.Errorf("total %+v", tot)
	}
}
