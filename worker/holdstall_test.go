package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/worker"
)

// TestHeldJobsBeyondMaxAckPending measures (issue 23, item 6): more jobs of
// a paused template than WAQ_MAX_ACK_PENDING, then jobs of another template.
// Held jobs wait in the hold set, out of the stream, so the other
// template's jobs go at once; once the template is approved, every held job
// is sent, once.
func TestHeldJobsBeyondMaxAckPending(t *testing.T) {
	h := setupHolds(t, []fakegraph.Template{
		{Name: "spring_sale", Language: "en_US", Category: "MARKETING", WABAID: holdWABA},
		{Name: "receipt", Language: "en_US", Category: "UTILITY", WABAID: holdWABA},
	}, func(c *worker.Config) { c.MaxAckPending, c.Concurrency = 10, 4; c.HoldRecheck = 2 * time.Second })
	if err := h.fake.UpdateTemplate("spring_sale", "en_US", fakegraph.TemplateUpdate{Status: "PAUSED"}); err != nil {
		t.Fatal(err)
	}
	h.waitTemplate(t, "spring_sale", "PAUSED")
	held := h.publishN(t, "sale", "spring_sale", 30)
	others := h.publishN(t, "receipt", "receipt", 5)
	start := time.Now()
	h.waitSent(t, 15*time.Second, others...)
	t.Logf("5 jobs of another template sent %v after 30 held jobs (max ack pending 10)", time.Since(start))
	if n := h.sendsOf(t, held); n != 0 {
		t.Fatalf("%d sends of a paused template's jobs", n)
	}
	h.approveSentOnce(t, "spring_sale", append(held, others...))
}

// TestHeldJobPublishedTwiceSentOnce: a crash between a held job's publish
// and its removal from the hold set publishes it again; past JetStream's
// de-duplication window the copy is a new message. Both copies of every
// held job are in the stream at release: each job is sent once, and the
// hold set ends empty.
func TestHeldJobPublishedTwiceSentOnce(t *testing.T) {
	h := setupHolds(t, []fakegraph.Template{
		{Name: "spring_sale", Language: "en_US", Category: "MARKETING", WABAID: holdWABA},
	}, func(c *worker.Config) { c.HoldRecheck = time.Second })
	if err := h.fake.UpdateTemplate("spring_sale", "en_US", fakegraph.TemplateUpdate{Status: "PAUSED"}); err != nil {
		t.Fatal(err)
	}
	h.waitTemplate(t, "spring_sale", "PAUSED")
	held := h.publishN(t, "sale", "spring_sale", 10)
	rdb := h.redis.Client(t)
	ctx := context.Background()
	var entries map[string]string
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		if entries, err = rdb.HGetAll(ctx, "waq:{held}:jobs").Result(); err != nil {
			return err
		}
		if len(entries) != len(held) {
			return fmt.Errorf("%d jobs in the hold set, want %d", len(entries), len(held))
		}
		return nil
	})
	// The gauge follows the set (its ZCARD, read every tick).
	waitMetric(t, h.r.url, fmt.Sprintf("waq_held_jobs %d\n", len(held)))
	for key, v := range entries {
		var e struct {
			Subject string      `json:"s"`
			Header  nats.Header `json:"h"`
			Data    []byte      `json:"d"`
		}
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(e.Subject)
		m.Header, m.Data = e.Header, e.Data
		m.Header.Set(queue.HeaderMsgID, key+"~copy")
		if _, err := h.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	h.approveSentOnce(t, "spring_sale", held)
	testenv.Eventually(t, 10*time.Second, func() error {
		n, err := rdb.HLen(ctx, "waq:{held}:jobs").Result()
		if err != nil {
			return err
		}
		z, _ := rdb.ZCard(ctx, "waq:{held}").Result()
		if n != 0 || z != 0 {
			return fmt.Errorf("hold set not empty after release: %d jobs, %d due times", n, z)
		}
		return nil
	})
	waitMetric(t, h.r.url, "waq_held_jobs 0\n")
}
