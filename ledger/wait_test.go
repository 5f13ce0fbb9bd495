package ledger_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// TestWaitReplicas: with WaitReplicas, an outcome write (through the
// autopipeliner the worker uses) and Confirm return once the replica has
// them, and ErrNotReplicated, without losing the primary's write, when the
// replica is gone.
func TestWaitReplicas(t *testing.T) {
	primary := testenv.StartRedis(t, "--repl-diskless-sync-delay", "0")
	replica := testenv.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port))
	testenv.WaitReplicas(t, primary, 1)
	rdb, err := conn.Redis(primary.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	opts := ledger.Options{WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond}
	l := ledger.New(conn.AutoPipelined(rdb), opts)
	dlq := deadletter.New(rdb, deadletter.Options{WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	if err := l.RecordSent(ctx, "a", 0, "wamid.a", ledger.Attempt{At: time.Now()}, []byte(`{}`)); err != nil {
		t.Fatalf("sent record with the replica up: %v", err)
	}
	if err := dlq.Park(ctx, &deadletter.Entry{ID: "p", Reason: "window"}); err != nil {
		t.Fatalf("park with the replica up: %v", err)
	}
	onReplica := ledger.New(replica.Client(t), ledger.Options{})
	if st, err := onReplica.Load(ctx, "a"); err != nil || !st.Sent() {
		t.Errorf("the replica lacks the sent record once the write returned: %+v %v", st, err)
	}
	if parked, err := deadletter.New(replica.Client(t), deadletter.Options{}).Parked(ctx, "p", 0); err != nil || !parked {
		t.Errorf("the replica lacks the entry once Park returned: %v %v", parked, err)
	}
	if err := l.Confirm(ctx, "a"); err != nil {
		t.Errorf("confirm with the replica up: %v", err)
	}

	replica.Stop()
	if err := l.RecordSent(ctx, "b", 0, "wamid.b", ledger.Attempt{At: time.Now()}, nil); !errors.Is(err, conn.ErrNotReplicated) {
		t.Errorf("sent record without the replica: %v, want ErrNotReplicated", err)
	}
	if st, _ := l.Load(ctx, "b"); !st.Sent() {
		t.Errorf("the primary lacks the record it was written: %+v", st)
	}
	if err := dlq.Park(ctx, &deadletter.Entry{ID: "q", Reason: "window"}); !errors.Is(err, conn.ErrNotReplicated) {
		t.Errorf("park without the replica: %v, want ErrNotReplicated", err)
	}
	if err := l.Confirm(ctx, "a"); !errors.Is(err, conn.ErrNotReplicated) {
		t.Errorf("confirm without the replica: %v, want ErrNotReplicated", err)
	}
	if err := ledger.New(rdb, ledger.Options{}).Confirm(ctx, "a"); err != nil {
		t.Errorf("confirm without replica waits: %v", err)
	}
}
