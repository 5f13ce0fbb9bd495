package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/ledger"
)

// TestMessageStatusAndPricing: the send answer's message_status and the
// first pricing a status webhook gives are kept on the compact record,
// beside the delivery status; values Meta adds later read as "other".
func TestMessageStatusAndPricing(t *testing.T) {
	r := testenv.StartRedis(t)
	l := ledger.New(r.Client(t), ledger.Options{})
	ctx := context.Background()
	sent := time.Now().Truncate(time.Second)
	for id, ms := range map[string]string{"held": "held_for_quality_assessment", "acc": "accepted", "new": "queued_for_later", "none": ""} {
		if err := l.RecordSentMany(ctx, []ledger.SentRecord{{ID: id, WAMID: "wamid." + id, MessageStatus: ms, Fresh: true,
			Attempt: ledger.Attempt{At: sent}}}); err != nil {
			t.Fatal(err)
		}
		want := ms
		if ms == "queued_for_later" {
			want = ledger.Other
		}
		if st, _ := l.Load(ctx, id); st.MessageStatus != want || st.Pricing != nil || !st.SentAs("wamid."+id) {
			t.Errorf("%s: message status %q, pricing %v; want %q and none", id, st.MessageStatus, st.Pricing, want)
		}
	}
	p := &ledger.Pricing{Billable: true, PricingModel: "PMP", Category: "marketing", Type: "regular"}
	out, err := l.RecordStatusWith(ctx, "held", "sent", sent.Add(time.Minute), p)
	if err != nil || !out.Status || !out.Pricing {
		t.Fatalf("first status with pricing: %+v %v", out, err)
	}
	// The same pricing again (Meta repeats it on delivered and read): not
	// counted twice; a later status still recorded.
	out, _ = l.RecordStatusWith(ctx, "held", "delivered", sent.Add(2*time.Minute), &ledger.Pricing{Category: "utility"})
	if !out.Status || out.Pricing {
		t.Errorf("second: %+v", out)
	}
	out, _ = l.RecordStatusWith(ctx, "held", "sent", sent.Add(3*time.Minute), p)
	if out.Status || out.Pricing {
		t.Errorf("a late sent: %+v", out)
	}
	st, _ := l.Load(ctx, "held")
	if st.Status != "delivered" || st.MessageStatus != "held_for_quality_assessment" || st.Pricing == nil || *st.Pricing != *p {
		t.Errorf("state %+v pricing %+v", st, st.Pricing)
	}
	// Pricing alone, with values the record has no code for.
	out, _ = l.RecordStatusWith(ctx, "acc", "", sent, &ledger.Pricing{PricingModel: "XYZ", Category: "new_category", Type: "free_trial"})
	if out.Status || !out.Pricing {
		t.Errorf("pricing alone: %+v", out)
	}
	st, _ = l.Load(ctx, "acc")
	if st.Pricing == nil || *st.Pricing != (ledger.Pricing{PricingModel: ledger.Other, Category: ledger.Other, Type: ledger.Other}) || st.MessageStatus != "accepted" || st.Status != "" {
		t.Errorf("unknown values: %+v %+v", st, st.Pricing)
	}
	// A webhook failure that parks keeps the rest of the record.
	a := ledger.Attempt{At: time.Now(), Outcome: "failed"}
	if o, err := l.RecordWebhookFailure(ctx, "held", "wamid.held", true, "window", 0, a); err != nil || o != ledger.WebhookRecorded {
		t.Fatalf("park: %v %v", o, err)
	}
	if st, _ := l.Load(ctx, "held"); st.Pricing == nil || st.MessageStatus != "held_for_quality_assessment" {
		t.Errorf("after a park: %+v", st)
	}
	// No record: nothing recorded, no error.
	if out, err := l.RecordStatusWith(ctx, "never", "delivered", sent, p); err != nil || out.Status || out.Pricing {
		t.Errorf("unknown job: %+v %v", out, err)
	}
}

// TestLegacyPricing: a record written before the compact index takes
// pricing once too.
func TestLegacyPricing(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	ctx := context.Background()
	rdb.HSet(ctx, "waq:j:{old}", "w", "wamid.old", "s", time.Now().UnixMilli(), "sg", 0)
	l := ledger.New(rdb, ledger.Options{})
	p := &ledger.Pricing{Billable: false, PricingModel: "PMP", Category: "service", Type: "free_customer_service"}
	if out, err := l.RecordStatusWith(ctx, "old", "delivered", time.Now(), p); err != nil || !out.Status || !out.Pricing {
		t.Fatalf("%+v %v", out, err)
	}
	if out, _ := l.RecordStatusWith(ctx, "old", "read", time.Now(), p); !out.Status || out.Pricing {
		t.Errorf("again: %+v", out)
	}
	if st, _ := l.Load(ctx, "old"); st.Pricing == nil || *st.Pricing != *p || st.Status != "read" {
		t.Errorf("%+v", st)
	}
}
