package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/doctor"
	"github.com/waqhq/waq/internal/testenv"
)

// park stores entries of one reason and code on a real redis-server: n to
// numbers and m to business-scoped user IDs.
func park(t *testing.T, store *deadletter.Store, prefix, reason string, code, numbers, userIDs int) {
	t.Helper()
	for i := range numbers + userIDs {
		e := &deadletter.Entry{ID: fmt.Sprintf("%s-%d", prefix, i), Reason: reason, PhoneNumberID: pnGood, Template: "otp",
			LastError: &deadletter.LastError{Code: &code}}
		if i < numbers {
			e.To = fmt.Sprintf("1555000%04d", i)
		} else {
			e.Recipient = fmt.Sprintf("US.1349120865530274%04d", i)
		}
		if err := store.Park(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeadLetterUserIDs: the dead-letters step counts the jobs addressed
// by business-scoped user ID apart from those addressed by number, and
// says what to do about 131062 (a BSUID where the message needs a number)
// and 131030 (a test number's recipient not allowed), in text and JSON,
// without any recipient in clear.
func TestDeadLetterUserIDs(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	store := deadletter.New(r.Client(t), deadletter.Options{})
	run := func() doctor.Result { return find(t, doctor.Run(ctx, doctor.Options{Store: store}), "dead_letters") }

	// Nothing parked: zeros in JSON, no split in the text.
	d := run()
	if d.Status != doctor.OK || d.DeadLetters == nil || *d.DeadLetters != (doctor.DeadLetters{}) {
		t.Errorf("empty = %+v (%+v)", d, d.DeadLetters)
	}

	// Only 131062, all to BSUIDs: the fix is 131062's alone.
	park(t, store, "otp", "invalid", 131062, 0, 3)
	d = run()
	if d.Status != doctor.Warn || !strings.Contains(d.Detail, "3 parked in the last 24h0m0s (3 addressed by business-scoped user ID, 0 by phone number): ") ||
		!strings.HasPrefix(d.Fix, "131062 (3 jobs): ") || !strings.Contains(d.Fix, "address it by phone number") || strings.Contains(d.Fix, "131030") {
		t.Errorf("131062 = %+v", d)
	}
	if want := (doctor.DeadLetters{Parked: 3, ByUserID: 3, UserIDNotSupported: 3}); *d.DeadLetters != want {
		t.Errorf("131062 counts = %+v, want %+v", *d.DeadLetters, want)
	}

	// 131030 to numbers and a window failure beside: both codes' advice,
	// then the isolation's.
	park(t, store, "test-number", "invalid", 131030, 2, 0)
	park(t, store, "late", "window", 131047, 1, 1)
	d = run()
	if want := (doctor.DeadLetters{Parked: 7, ByPhoneNumber: 3, ByUserID: 4, UserIDNotSupported: 3, NotAllowed: 2}); *d.DeadLetters != want {
		t.Errorf("mixed counts = %+v, want %+v", *d.DeadLetters, want)
	}
	if !strings.Contains(d.Detail, "7 parked in the last 24h0m0s (4 addressed by business-scoped user ID, 3 by phone number): ") ||
		!strings.HasPrefix(d.Fix, "131062 (3 jobs): ") || !strings.Contains(d.Fix, "; 131030 (2 jobs): A test number sends only to the numbers allowed in the app") ||
		strings.Count(d.Fix, "; ") < 2 {
		t.Errorf("mixed = %+v", d)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(b, &line); err != nil {
		t.Fatal(err)
	}
	dl, _ := line["dead_letters"].(map[string]any)
	if line["check"] != "dead_letters" || line["status"] != "warn" || line["detail"] != d.Detail || line["fix"] != d.Fix ||
		dl["parked"] != 7.0 || dl["addressed_by_user_id"] != 4.0 || dl["addressed_by_phone_number"] != 3.0 ||
		dl["user_id_not_supported"] != 3.0 || dl["recipient_not_allowed"] != 2.0 {
		t.Errorf("json = %s", b)
	}
	// No recipient in clear, nor a masked one's tail: the step names none.
	for _, s := range []string{"US.", "1555000", "1349120865530274"} {
		if strings.Contains(string(b), s) {
			t.Errorf("%q in %s", s, b)
		}
	}

	// Only numbers: no split in the text, the JSON still says 0.
	other := deadletter.New(r.Client(t), deadletter.Options{Prefix: "numbers-only"})
	park(t, other, "n", "invalid", 131030, 2, 0)
	d = find(t, doctor.Run(ctx, doctor.Options{Store: other}), "dead_letters")
	if strings.Contains(d.Detail, "business-scoped") || d.DeadLetters.ByUserID != 0 || d.DeadLetters.ByPhoneNumber != 2 || !strings.HasPrefix(d.Fix, "131030 (2 jobs): ") {
		t.Errorf("numbers only = %+v (%+v)", d, d.DeadLetters)
	}

	// A --since past the retention reads the counters: the same split.
	d = find(t, doctor.Run(ctx, doctor.Options{Store: store, Since: 24 * 365 * time.Hour}), "dead_letters")
	if d.DeadLetters == nil || d.DeadLetters.ByUserID != 4 || d.DeadLetters.Parked != 7 {
		t.Errorf("counted = %+v", d.DeadLetters)
	}

	// The store unreadable: a failure, no counts.
	r.Stop()
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	d = find(t, doctor.Run(dctx, doctor.Options{Store: store}), "dead_letters")
	if d.Status != doctor.Fail || d.DeadLetters != nil || !strings.Contains(d.Fix, "WAQ_REDIS_URL") {
		t.Errorf("redis down = %+v", d)
	}
}
