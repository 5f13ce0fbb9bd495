package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
)

// TestNoRecipientInRedisKeys: after sends to a number and to a
// business-scoped user ID that hit the pair limit (131056), no Redis key
// holds either in clear; the pair limit's schedule is keyed by the
// recipient hash.
func TestNoRecipientInRedisKeys(t *testing.T) {
	e := setup(t)
	if err := e.fake.SetScenario(&fakegraph.Scenario{Limits: fakegraph.Limits{
		Pair: fakegraph.PairLimit{Enabled: true, Every: fakegraph.Duration(time.Second), Burst: 1}}}); err != nil {
		t.Fatal(err)
	}
	e.start(t, e.config())
	const number = "15557654321"
	var ids []string
	for i := range 3 {
		j := textJob(fmt.Sprintf("pair-to-%d", i), number)
		b := &queue.Job{ID: fmt.Sprintf("pair-bsuid-%d", i), PhoneNumberID: pn,
			Message: []byte(`{"messaging_product":"whatsapp","recipient":"` + bsuid + `","type":"text","text":{"body":"hi"}}`)}
		e.publish(t, j, b)
		ids = append(ids, j.ID, b.ID)
	}
	rdb := e.redis.Client(t)
	ctx := context.Background()
	clear := []string{number, bsuid, strings.TrimPrefix(bsuid, "US.")}
	check := func() (pairKeys int) {
		t.Helper()
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			for _, c := range clear {
				if strings.Contains(k, c) {
					t.Errorf("Redis key %q holds the recipient in clear", k)
				}
			}
			if strings.Contains(k, "}:p:") {
				pairKeys++
				if h := k[strings.LastIndex(k, ":")+1:]; !strings.HasPrefix(h, "r_") || len(h) != 18 {
					t.Errorf("pair key %q: want the recipient hash (r_ and 16 hex digits) at its end", k)
				}
			}
		}
		return pairKeys
	}
	// Both recipients are slowed after their second send (burst 1).
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := check(); n < 2 {
			return fmt.Errorf("%d pair keys, want 2 (one per recipient)", n)
		}
		return nil
	})
	e.waitSent(t, 60*time.Second, ids...)
	check()
}
