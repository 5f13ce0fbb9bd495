package deadletter_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/testenv"
)

// TestParkOnce: a job parked twice leaves one entry, counted once: a park
// retried (its reply lost, so the same write runs again), and two parks of
// one job at the same moment that name two recipients in two shards (a
// webhook failure without the job's body names the recipient Meta gives),
// on a three-master Redis Cluster, where the two parks' round trips reach
// the nodes in any order. On the code before, where a park looked for the
// job in the other shards in its own round trip, the second case lost
// some jobs altogether (both parks removed the other's entry) and counted
// others twice (neither saw the other's): in two runs 12 and 20 of 300
// missing, stats 345 and 321 (301 parked).
func TestParkOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("Redis Cluster test")
	}
	cl := testenv.StartRedisCluster(t, 3)
	store := deadletter.New(cl.Client(t), deadletter.Options{Prefix: "test"})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)

	retried := entry(spec{id: "retried", reason: "undeliverable", code: 131026, at: now})
	for range 2 {
		if err := store.Park(ctx, retried); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := store.Stats(ctx, deadletter.Filter{}); err != nil || st.Total != 1 || st.Recipients != 1 {
		t.Fatalf("a park run twice: %+v %v", st, err)
	}

	const jobs = 300
	var wg sync.WaitGroup
	errs := make(chan error, 2*jobs)
	for i := 0; i < jobs; i++ {
		for k := 0; k < 2; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// One millisecond apart: the later one stays.
				e := entry(spec{id: fmt.Sprintf("job-%d", i), reason: "undeliverable", code: 131026, to: fmt.Sprintf("1555%07d", 2*i+k), at: now.Add(time.Duration(k) * time.Millisecond)})
				errs <- store.Park(ctx, e)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	missing, wrong := 0, 0
	for i := 0; i < jobs; i++ {
		e, err := store.Get(ctx, fmt.Sprintf("job-%d", i))
		switch {
		case err != nil:
			missing++
		case e.To != fmt.Sprintf("1555%07d", 2*i+1):
			wrong++
		}
	}
	st, err := store.Stats(ctx, deadletter.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := store.List(ctx, deadletter.Filter{}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if missing != 0 || wrong != 0 || st.Total != jobs+1 || st.Recipients != jobs+1 || len(page.Entries) != jobs+1 {
		t.Errorf("%d jobs parked twice at once: %d missing, %d kept the earlier park; stats total %d, recipients %d, %d listed; want %d of each",
			jobs, missing, wrong, st.Total, st.Recipients, len(page.Entries), jobs+1)
	}
}
