package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/waqhq/waq/doctor"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/throttle"
	"github.com/waqhq/waq/webhook"
)

// TestHolds: what account webhooks made the workers hold, as a gate
// records it in a real Redis, is one doctor line each, in text and JSON.
func TestHolds(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	rdb := r.Client(t)
	reg, err := numbers.Parse("numbers.yaml", []byte("phone_numbers:\n  - phone_number_id: \""+pnGood+"\"\n    waba_id: \""+waba+"\"\n  - phone_number_id: \""+pnRed+"\"\n    waba_id: \""+waba+"\"\n"),
		func(string) string { return "tok" })
	if err != nil {
		t.Fatal(err)
	}
	o := doctor.Options{Redis: rdb, KeyPrefix: "doc", Numbers: reg, HoldMax: 24 * time.Hour}

	// Nothing held yet: one ok line.
	rs := doctor.Run(ctx, o)
	if h := find(t, rs, "holds"); h.Status != doctor.OK || !strings.Contains(h.Detail, "nothing held") || h.Hold != nil {
		t.Errorf("nothing held = %+v", h)
	}
	for _, r := range rs {
		if r.Check == "held_jobs" {
			t.Errorf("an empty hold set has a line: %+v", r)
		}
	}
	// Jobs in the hold set are counted (its ZCARD), another prefix's not.
	for i, key := range []string{"doc:{held}", "doc:{held}", "doc:{held}", "else:{held}"} {
		if err := rdb.ZAdd(ctx, key, redis.Z{Score: float64(i), Member: fmt.Sprintf("job-%d", i)}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if h := find(t, doctor.Run(ctx, o), "held_jobs"); h.Status != doctor.OK || h.Hold == nil || h.Hold.Kind != "held_jobs" || h.Hold.Jobs != 3 ||
		!strings.Contains(h.Detail, "3 jobs in the hold set (doc:{held})") {
		t.Errorf("held jobs = %+v (hold %+v)", h, h.Hold)
	}
	if err := rdb.ZRem(ctx, "doc:{held}", "job-1", "job-2").Err(); err != nil {
		t.Fatal(err)
	}
	if h := find(t, doctor.Run(ctx, o), "held_jobs"); h.Hold == nil || h.Hold.Jobs != 1 || !strings.Contains(h.Detail, "1 job in the hold set") {
		t.Errorf("one held job = %+v", h)
	}
	// Another prefix's holds are not this one's.
	other := throttle.New(rdb, reg, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), throttle.Config{Prefix: "else"})
	if err := other.RecordTemplate(ctx, webhook.AccountEvent{Field: webhook.FieldTemplateStatus, WABAID: waba, Event: "PAUSED", TemplateName: "x", TemplateLanguage: "en"}); err != nil {
		t.Fatal(err)
	}

	g := throttle.New(rdb, reg, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), throttle.Config{Prefix: "doc", Now: func() time.Time { return now }})
	at := now.Add(-2 * time.Hour)
	for _, ev := range []webhook.AccountEvent{
		{Field: webhook.FieldTemplateStatus, WABAID: waba, Time: at.Unix(), Event: "PAUSED", TemplateName: "promo", TemplateLanguage: "en_US", Category: "MARKETING", Reason: "LOW_QUALITY"},
		{Field: webhook.FieldTemplateStatus, WABAID: waba, Time: at.Unix(), Event: "REJECTED", TemplateName: "old_offer", TemplateLanguage: "de", Reason: "INCORRECT_CATEGORY"},
		{Field: webhook.FieldTemplateStatus, WABAID: waba, Time: at.Unix(), Event: "APPROVED", TemplateName: "order_update", TemplateLanguage: "en_US"},
		{Field: webhook.FieldTemplateQuality, WABAID: waba, Time: at.Unix(), Event: "RED", PreviousQuality: "YELLOW", TemplateName: "welcome", TemplateLanguage: "en_US"},
		{Field: webhook.FieldNumberQuality, WABAID: waba, Time: at.Unix(), Event: "FLAGGED", DisplayPhoneNumber: "15550001111", CurrentLimit: "TIER_1K"},
		{Field: webhook.FieldNumberQuality, WABAID: waba, Time: at.Unix(), Event: "UPGRADE", DisplayPhoneNumber: "15550002222", CurrentLimit: "TIER_10K"},
	} {
		var err error
		if ev.Field == webhook.FieldNumberQuality {
			err = g.RecordNumberQuality(ctx, ev)
		} else {
			err = g.RecordTemplate(ctx, ev)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.AccountUpdate(ctx, webhook.AccountEvent{Field: webhook.FieldAccountUpdate, WABAID: waba, Event: "ACCOUNT_RESTRICTION",
		Restrictions: []webhook.Restriction{{Type: "RESTRICTED_BIZ_INITIATED_MESSAGING", Expiration: now.Add(72 * time.Hour).Format(time.RFC3339)}}}); err != nil {
		t.Fatal(err)
	}

	for _, policy := range []struct{ set, says string }{{"", "marketing sends held (WAQ_LOW_QUALITY_MARKETING=hold)"}, {"slow", "slowed to one a second"}, {"send", "marketing sends go on"}} {
		o := o
		o.LowQualityMarketing = policy.set
		rs := doctor.Run(ctx, o)
		if !doctor.Failed(rs) {
			t.Errorf("a rejected template and a restricted account failed nothing: %+v", rs)
		}
		byCheck := map[string][]doctor.Result{}
		for _, r := range rs {
			byCheck[r.Check] = append(byCheck[r.Check], r)
		}
		if len(byCheck["holds"]) != 0 {
			t.Errorf("holds say nothing is held: %+v", byCheck["holds"])
		}
		tpl := byCheck["template_hold"]
		if len(tpl) != 2 {
			t.Fatalf("template holds: %+v", tpl)
		}
		// Sorted by name: old_offer, promo.
		if r := tpl[0]; r.Status != doctor.Fail || !strings.Contains(r.Detail, "template old_offer (de, WABA "+waba+") REJECTED since "+at.UTC().Format(time.RFC3339)+" (INCORRECT_CATEGORY)") ||
			!strings.Contains(r.Detail, "parked as template") || !strings.Contains(r.Fix, "--as-template") {
			t.Errorf("rejected = %+v", r)
		}
		if r := tpl[1]; r.Status != doctor.Warn || !strings.Contains(r.Detail, "template promo (en_US, WABA "+waba+") PAUSED since "+at.UTC().Format(time.RFC3339)+" (LOW_QUALITY): its jobs are held") ||
			!strings.Contains(r.Detail, "until "+at.Add(24*time.Hour).UTC().Format(time.RFC3339)+"; then parked as template") ||
			r.Hold == nil || r.Hold.Template != "promo" || r.Hold.Status != "PAUSED" || r.Hold.Reason != "LOW_QUALITY" || !r.Hold.Since.Equal(at.Truncate(time.Second)) {
			t.Errorf("paused = %+v (%+v)", r, r.Hold)
		}
		q := byCheck["template_quality"]
		if len(q) != 1 || q[0].Status != doctor.Warn || !strings.Contains(q[0].Detail, "template welcome (en_US, WABA "+waba+") quality RED") ||
			!strings.Contains(q[0].Detail, policy.says) || !strings.Contains(q[0].Detail, "utility and authentication sends go") {
			t.Errorf("quality (%q) = %+v", policy.set, q)
		}
		n := byCheck["number_quality"]
		if len(n) != 1 || n[0].Status != doctor.Warn || !strings.Contains(n[0].Detail, "phone number 15550001111 FLAGGED since") ||
			!strings.Contains(n[0].Detail, "(messaging limit TIER_1K)") || !strings.Contains(n[0].Detail, policy.says) {
			t.Errorf("number (%q) = %+v", policy.set, n)
		}
		a := byCheck["account"]
		if len(a) != 1 || a[0].Status != doctor.Fail || !strings.Contains(a[0].Detail, "WABA "+waba+" paused by an account webhook") ||
			!strings.Contains(a[0].Detail, "RESTRICTED_BIZ_INITIATED_MESSAGING") || !strings.Contains(a[0].Detail, "numbers "+pnGood+", "+pnRed+" do not send") {
			t.Errorf("account = %+v", a)
		}
	}

	// JSON: the hold's fields for machines, beside check, status, detail, fix.
	tpl := find(t, doctor.Run(ctx, o), "template_hold")
	b, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(b, &line); err != nil {
		t.Fatal(err)
	}
	hold, _ := line["hold"].(map[string]any)
	if line["check"] != "template_hold" || line["status"] != "fail" || hold["kind"] != "template" || hold["template"] != "old_offer" ||
		hold["language"] != "de" || hold["status"] != "REJECTED" || hold["since"] != at.UTC().Truncate(time.Second).Format(time.RFC3339) || hold["until"] != nil {
		t.Errorf("json = %s", b)
	}

	// Lifted: the restriction and the pause go, the rest stays.
	if _, err := g.AccountUpdate(ctx, webhook.AccountEvent{Field: webhook.FieldAccountUpdate, WABAID: waba, Event: "ACCOUNT_RESTRICTION"}); err != nil {
		t.Fatal(err)
	}
	if err := g.RecordTemplate(ctx, webhook.AccountEvent{Field: webhook.FieldTemplateStatus, WABAID: waba, Event: "APPROVED", TemplateName: "promo", TemplateLanguage: "en_US"}); err != nil {
		t.Fatal(err)
	}
	rs = doctor.Run(ctx, o)
	for _, r := range rs {
		if r.Check == "account" || r.Check == "template_hold" && strings.Contains(r.Detail, "promo") {
			t.Errorf("still shown after it was lifted: %+v", r)
		}
	}

	// Redis gone: the holds cannot be read, and say so.
	r.Stop()
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	hs := doctor.Run(dctx, doctor.Options{Redis: rdb, KeyPrefix: "doc"})
	if h := find(t, hs, "holds"); h.Status != doctor.Fail || !strings.Contains(h.Detail, "could not be read") {
		t.Errorf("redis down = %+v", h)
	}
}
