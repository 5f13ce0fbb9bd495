package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// TestRecipientIDs: the IDs a status gave are kept on the job and read back
// by Load; none given writes nothing; an ID not given keeps the one known;
// a failed job's hash keeps its counters and expiry beside them.
func TestRecipientIDs(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	l := ledger.New(rdb, ledger.Options{Retention: time.Hour})
	ctx := context.Background()
	if err := l.RecordSentMany(ctx, []ledger.SentRecord{{ID: "fresh", WAMID: "wamid.F", Attempt: ledger.Attempt{At: time.Now()}, Fresh: true}}); err != nil {
		t.Fatal(err)
	}
	if changed, err := l.RecordRecipientIDs(ctx, "fresh", ledger.RecipientIDs{}); err != nil || changed {
		t.Fatalf("none given: %v %v", changed, err)
	}
	if n := rdb.Exists(ctx, "waq:j:{fresh}").Val(); n != 0 {
		t.Errorf("none given made the job a hash")
	}
	const user, parent = "US.13491208655302741918", "US.ENT.11815799212886844830"
	for i, step := range []struct {
		give    ledger.RecipientIDs
		changed bool
		want    ledger.RecipientIDs
	}{
		{ledger.RecipientIDs{ParentUserID: parent}, true, ledger.RecipientIDs{ParentUserID: parent}},
		{ledger.RecipientIDs{UserID: user}, true, ledger.RecipientIDs{UserID: user, ParentUserID: parent}},
		{ledger.RecipientIDs{UserID: user, ParentUserID: parent}, false, ledger.RecipientIDs{UserID: user, ParentUserID: parent}},
		{ledger.RecipientIDs{UserID: "US.7"}, true, ledger.RecipientIDs{UserID: "US.7", ParentUserID: parent}},
	} {
		changed, err := l.RecordRecipientIDs(ctx, "fresh", step.give)
		if err != nil || changed != step.changed {
			t.Errorf("step %d: changed %v, %v", i, changed, err)
		}
		st, err := l.Load(ctx, "fresh")
		if err != nil || st.Recipient != step.want || !st.Sent() || !st.SentAs("wamid.F") {
			t.Errorf("step %d: %+v %v", i, st, err)
		}
		if !st.Recipient.Knows(step.give) {
			t.Errorf("step %d: Knows(%+v) false after recording it", i, step.give)
		}
	}
	if ttl := rdb.PTTL(ctx, "waq:j:{fresh}").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("the hash expires in %v, want within the retention", ttl)
	}

	// A job that failed before has a hash: its counters stay, its expiry
	// is not moved.
	code := 131000
	if _, err := l.RecordAttempt(ctx, "failed", 0, ledger.Attempt{At: time.Now(), Outcome: "failed", Action: "retry", Code: &code}, ledger.CountAttempt); err != nil {
		t.Fatal(err)
	}
	if err := rdb.PExpire(ctx, "waq:j:{failed}", 10*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RecordRecipientIDs(ctx, "failed", ledger.RecipientIDs{UserID: user}); err != nil {
		t.Fatal(err)
	}
	st, err := l.Load(ctx, "failed")
	if err != nil || st.Attempts != 1 || st.Recipient.UserID != user {
		t.Errorf("failed job: %+v %v", st, err)
	}
	if ttl := rdb.PTTL(ctx, "waq:j:{failed}").Val(); ttl > 10*time.Minute || ttl <= 0 {
		t.Errorf("failed job's hash expires in %v, want its own 10m kept", ttl)
	}
	var zero ledger.RecipientIDs
	if !zero.Knows(ledger.RecipientIDs{}) || zero.Knows(ledger.RecipientIDs{UserID: user}) {
		t.Error("Knows of the zero value")
	}
}
