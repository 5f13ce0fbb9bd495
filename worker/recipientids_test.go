package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
	"github.com/waqhq/waq/queue"
)

const parentBSUID = "US.ENT.11815799212886844830"

// postStatusWith posts a signed status webhook for wamid with the members
// given (JSON, "" for none: the recipient fields).
func postStatusWith(t *testing.T, url, wamid, status, ts, members string) {
	t.Helper()
	if members != "" {
		members = "," + members
	}
	postStatusJSON(t, url, `{"id":"`+wamid+`","status":"`+status+`","timestamp":"`+ts+`"`+members+`}`)
}

// TestStatusRecipientIDs: a status naming its recipient by business-scoped
// user ID alone (no recipient_id) is matched by wamid and recorded; the
// BSUIDs a status gives for a job addressed by number (recipient_user_id,
// recipient_parent_user_id) are kept on the job, and a parent one for a job
// addressed by BSUID; statuses without them, or with IDs not in Meta's
// format, leave the job nothing more than its record (no hash of its own).
func TestStatusRecipientIDs(t *testing.T) {
	e := setup(t)
	r := startWithWebhooks(t, e, 1)
	ctx := context.Background()
	byUserID := &queue.Job{ID: "by-user-id", PhoneNumberID: pn,
		Message: json.RawMessage(`{"messaging_product":"whatsapp","recipient":"` + bsuid + `","type":"text","text":{"body":"hi"}}`)}
	e.publish(t, byUserID, textJob("by-number", "15551234567"), textJob("plain", "15557654321"), textJob("odd", "15557650000"))
	ids := []string{"by-user-id", "by-number", "plain", "odd"}
	e.waitSent(t, 20*time.Second, ids...)
	// The simulator's statuses: the BSUID job's carry recipient_user_id
	// and no recipient_id, the others recipient_id alone.
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range ids {
			st, err := e.ledger.Load(ctx, id)
			if err != nil {
				return err
			}
			if st.Status != "delivered" {
				return fmt.Errorf("%s: status %q", id, st.Status)
			}
		}
		return nil
	})
	waitMetric(t, r.url, `waq_webhook_statuses_total{result="matched",status="delivered"} 4`)
	rdb := e.redis.Client(t)
	noHash := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if n, err := rdb.Exists(ctx, "waq:j:{"+id+"}").Result(); err != nil || n != 0 {
				t.Errorf("%s has a hash of its own (%d, %v): a status without BSUIDs grew its record", id, n, err)
			}
			if st, _ := e.ledger.Load(ctx, id); st.Recipient != (ledger.RecipientIDs{}) {
				t.Errorf("%s: recipient IDs %+v", id, st.Recipient)
			}
		}
	}
	// The BSUID job's own BSUID is in its body: not kept again.
	noHash(ids...)

	wamid := func(id string) string {
		js, _ := e.fake.Job(id)
		if len(js.WAMIDs) == 0 {
			t.Fatalf("%s: no wamid in the simulator", id)
		}
		return js.WAMIDs[0]
	}
	// Meta tells the BSUIDs of a recipient addressed by number.
	postStatusWith(t, r.url, wamid("by-number"), "read", "1764080001",
		`"recipient_id":"15551234567","recipient_user_id":"`+bsuid+`","recipient_parent_user_id":"`+parentBSUID+`"`)
	// A parent BSUID for the job addressed by BSUID (its user ID it has).
	postStatusWith(t, r.url, wamid("by-user-id"), "read", "1764080002", `"recipient_user_id":"`+bsuid+`","recipient_parent_user_id":"`+parentBSUID+`"`)
	// Bad values: not in Meta's format, a parent where the user ID goes,
	// a user ID where the parent goes, far too long.
	postStatusWith(t, r.url, wamid("odd"), "read", "1764080003",
		`"recipient_id":"15557650000","recipient_user_id":"not-a-bsuid","recipient_parent_user_id":"US.1"`)
	postStatusWith(t, r.url, wamid("odd"), "read", "1764080004",
		`"recipient_id":"15557650000","recipient_user_id":"`+parentBSUID+`","recipient_parent_user_id":"US.ENT.`+strings.Repeat("9", 200)+`"`)
	// A status without them.
	postStatusWith(t, r.url, wamid("plain"), "read", "1764080005", `"recipient_id":"15557654321"`)
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, id := range ids {
			if st, _ := e.ledger.Load(ctx, id); st.Status != "read" {
				return fmt.Errorf("%s: status %q", id, st.Status)
			}
		}
		return nil
	})
	if st, _ := e.ledger.Load(ctx, "by-number"); st.Recipient != (ledger.RecipientIDs{UserID: bsuid, ParentUserID: parentBSUID}) {
		t.Errorf("by-number: recipient IDs %+v", st.Recipient)
	}
	if st, _ := e.ledger.Load(ctx, "by-user-id"); st.Recipient != (ledger.RecipientIDs{ParentUserID: parentBSUID}) {
		t.Errorf("by-user-id: recipient IDs %+v", st.Recipient)
	}
	noHash("plain", "odd")
	// A later status without them keeps them; the hash expires with the
	// retention. Whether odd's second read counts as a duplicate depends on
	// the order the two were taken in, so wait for every read to be taken.
	reads := func() (n int64) {
		s := scrape(t, r.url)
		for _, res := range []string{"matched", "duplicate"} {
			m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(`waq_webhook_statuses_total{result="`+res+`",status="read"}`) + ` ([0-9.e+]+)$`).FindStringSubmatch(s)
			if m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				n += int64(v)
			}
		}
		return n
	}
	readsTaken := func(want int64) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, func() error {
			if n := reads(); n != want {
				return fmt.Errorf("%d read statuses taken, want %d", n, want)
			}
			return nil
		})
	}
	readsTaken(5)
	postStatusWith(t, r.url, wamid("by-number"), "read", "1764080006", `"recipient_id":"15551234567"`)
	readsTaken(6)
	if st, _ := e.ledger.Load(ctx, "by-number"); st.Recipient.UserID != bsuid {
		t.Errorf("by-number after a status without IDs: %+v", st.Recipient)
	}
	if ttl, err := rdb.PTTL(ctx, "waq:j:{by-number}").Result(); err != nil || ttl <= 0 || ttl > 168*time.Hour {
		t.Errorf("by-number's hash expires in %v (%v)", ttl, err)
	}
	if logs := e.logs.String(); strings.Contains(logs, "13491208655302741918") || strings.Contains(logs, "11815799212886844830") {
		t.Error("a business-scoped user ID appears in the logs")
	}
}
