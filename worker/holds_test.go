package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/fakegraph"
	"github.com/waqhq/waq/internal/testenv"
	"github.com/waqhq/waq/queue"
	"github.com/waqhq/waq/worker"
)

const holdWABA = "9001"

// holdEnv is a worker whose number is in WABA 9001 (phone-number file),
// serving /webhook, with the simulator's templates and webhooks pointed at
// it, and holds that look again every 100 ms.
type holdEnv struct {
	*env
	cfg  worker.Config
	vars map[string]string
	r    *running
}

func setupHolds(t *testing.T, templates []fakegraph.Template, tune func(*worker.Config)) *holdEnv {
	t.Helper()
	e := setup(t)
	file := filepath.Join(t.TempDir(), "numbers.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("phone_numbers:\n  - {phone_number_id: %q, waba_id: %q, token_env: TOK}\n", pn, holdWABA)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.AccessToken, cfg.PhoneNumbersFile = "", file
	cfg.AppSecret, cfg.WebhookVerifyToken = appSecret, "verify-token"
	cfg.HoldRecheck = 100 * time.Millisecond
	cfg.PauseProbe = 100 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	h := &holdEnv{env: e, cfg: cfg, vars: map[string]string{"TOK": token}}
	sc := e.fake.Scenario()
	sc.Templates = templates
	sc.PhoneNumbers = []fakegraph.PhoneNumber{{PhoneNumberID: pn, WABAID: holdWABA, DisplayPhoneNumber: "+1 555-010-0001"}}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	h.r = h.startEnv(t, cfg, h.vars)
	sc.Webhooks = fakegraph.Webhooks{URL: h.r.url + "/webhook", AppSecret: appSecret, Statuses: []string{"sent"}}
	if err := e.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	return h
}

func tmplJob(id, to, name string) *queue.Job {
	j := templateJob(id, to, name)
	j.PhoneNumberID = pn
	return j
}

// readyTemplates is /readyz's templates and number_quality.
type readyTemplates struct {
	Templates []struct {
		Name, Language, Status, Reason, Category, Quality string
	} `json:"templates"`
	NumberQuality []struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
		Event              string `json:"event"`
	} `json:"number_quality"`
	Paused []struct {
		PhoneNumberID, Reason, Source string
	} `json:"paused"`
}

func getReadyTemplates(t *testing.T, url string) readyTemplates {
	t.Helper()
	return getReadyAs[readyTemplates](t, url)
}

// waitTemplate waits until /readyz lists the template with status.
func (h *holdEnv) waitTemplate(t *testing.T, name, status string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, tp := range getReadyTemplates(t, h.r.url).Templates {
			if tp.Name == name && tp.Status == status {
				return nil
			}
		}
		return fmt.Errorf("template %s not %s in /readyz", name, status)
	})
}

// sendsOf counts the simulator's sends (accepted or not) of the jobs.
func (h *holdEnv) sendsOf(t *testing.T, ids []string) int64 {
	t.Helper()
	var n int64
	for _, id := range ids {
		js, _ := h.fake.Job(id)
		n += js.Sends
	}
	return n
}

func (h *holdEnv) publishN(t *testing.T, prefix, template string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		h.publish(t, tmplJob(id, fmt.Sprintf("1555400%04d", i), template))
		ids = append(ids, id)
	}
	return ids
}

// approveSentOnce approves template and waits until every held job is
// sent, once, with none parked and the stream empty.
func (h *holdEnv) approveSentOnce(t *testing.T, template string, held []string) {
	t.Helper()
	if err := h.fake.UpdateTemplate(template, "en_US", fakegraph.TemplateUpdate{Status: "APPROVED"}); err != nil {
		t.Fatal(err)
	}
	h.waitSent(t, 20*time.Second, held...)
	h.streamEmpty(t, 10*time.Second)
	h.noneParked(t)
	for _, id := range held {
		if js, _ := h.fake.Job(id); js.Sends != 1 {
			t.Errorf("%s: %d sends, want 1", id, js.Sends)
		}
	}
}

func (h *holdEnv) noneParked(t *testing.T) {
	t.Helper()
	page, err := h.dlq.List(context.Background(), deadletter.Filter{}, "", 10)
	if err != nil || len(page.Entries) != 0 {
		t.Fatalf("parked: %d entries (%v)", len(page.Entries), err)
	}
}

// TestTemplatePausedByWebhookHeldAndReleased: a template Meta pauses by
// webhook holds its jobs (not sent, not parked) while other templates go;
// the held jobs survive a worker restart; once Meta approves the template
// again every held job is sent, once.
func TestTemplatePausedByWebhookHeldAndReleased(t *testing.T) {
	h := setupHolds(t, []fakegraph.Template{
		{Name: "spring_sale", Language: "en_US", Category: "MARKETING", WABAID: holdWABA},
		{Name: "receipt", Language: "en_US", Category: "UTILITY", WABAID: holdWABA},
	}, nil)
	if err := h.fake.UpdateTemplate("spring_sale", "en_US", fakegraph.TemplateUpdate{Status: "PAUSED", Title: "FIRST_PAUSE",
		Description: "Your WhatsApp message template has been paused for 3 hours."}); err != nil {
		t.Fatal(err)
	}
	h.waitTemplate(t, "spring_sale", "PAUSED")
	held := h.publishN(t, "sale", "spring_sale", 20)
	others := h.publishN(t, "receipt", "receipt", 5)
	h.waitSent(t, 20*time.Second, others...)
	waitMetricAtLeast(t, h.r.url, `waq_held_total{scope="template"}`, 40) // each held job looked at least twice
	if n := h.sendsOf(t, held); n != 0 {
		t.Fatalf("%d sends of a paused template's jobs", n)
	}
	h.noneParked(t)
	m := scrape(t, h.r.url)
	for _, want := range []string{
		`waq_template_status{language="en_US",status="PAUSED",template="spring_sale"} 1`,
		`waq_account_events_total{event="PAUSED",field="message_template_status_update"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grep(m, "waq_template"))
		}
	}
	rt := getReadyTemplates(t, h.r.url)
	if len(rt.Templates) != 1 || !strings.Contains(rt.Templates[0].Reason, "FIRST_PAUSE") || rt.Templates[0].Category != "MARKETING" {
		t.Errorf("readyz templates = %+v", rt.Templates)
	}

	// A restart: the held jobs are still in the hold set, still held.
	if err := h.r.stop(); err != nil {
		t.Fatal(err)
	}
	h.r = h.startEnv(t, h.cfg, h.vars)
	h.waitTemplate(t, "spring_sale", "PAUSED") // read back from Redis
	// The simulator posts to the old listener's address: point it anew.
	sc := h.fake.Scenario()
	sc.Webhooks.URL = h.r.url + "/webhook"
	if err := h.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	waitMetricAtLeast(t, h.r.url, `waq_held_total{scope="template"}`, 20)
	if n := h.sendsOf(t, held); n != 0 {
		t.Fatalf("%d sends after the restart", n)
	}

	h.approveSentOnce(t, "spring_sale", held)
	if rt := getReadyTemplates(t, h.r.url); len(rt.Templates) != 0 {
		t.Errorf("readyz still lists %+v", rt.Templates)
	}
}

// TestTemplateHoldParksAfterMax: jobs held past WAQ_TEMPLATE_HOLD_MAX are
// parked as template with the webhook's reason; a rejected template parks
// its jobs at once, unsent.
func TestTemplateHoldParksAfterMax(t *testing.T) {
	h := setupHolds(t, []fakegraph.Template{
		{Name: "spring_sale", Language: "en_US", Category: "MARKETING", WABAID: holdWABA},
		{Name: "abandoned_cart", Language: "en_US", Category: "MARKETING", WABAID: holdWABA},
	}, func(c *worker.Config) { c.TemplateHoldMax = 2 * time.Second })
	if err := h.fake.UpdateTemplate("spring_sale", "en_US", fakegraph.TemplateUpdate{Status: "DISABLED", Reason: "NONE", Title: "DISABLED",
		Description: "Your template was disabled after repeated pauses."}); err != nil {
		t.Fatal(err)
	}
	if err := h.fake.UpdateTemplate("abandoned_cart", "en_US", fakegraph.TemplateUpdate{Status: "REJECTED", Reason: "INVALID_FORMAT"}); err != nil {
		t.Fatal(err)
	}
	h.waitTemplate(t, "spring_sale", "DISABLED")
	h.waitTemplate(t, "abandoned_cart", "REJECTED")
	start := time.Now()
	rejected := h.publishN(t, "cart", "abandoned_cart", 3)
	disabled := h.publishN(t, "sale", "spring_sale", 3)
	for _, id := range rejected {
		e := h.waitParked(t, 10*time.Second, id)
		if e.Reason != "template" || !strings.Contains(e.Problem, "REJECTED") || !strings.Contains(e.Problem, "INVALID_FORMAT") {
			t.Errorf("rejected: %s %q", e.Reason, e.Problem)
		}
	}
	for _, id := range disabled {
		e := h.waitParked(t, 10*time.Second, id)
		if e.Reason != "template" || !strings.Contains(e.Problem, "DISABLED") || !strings.Contains(e.Problem, "repeated pauses") ||
			!strings.Contains(e.Problem, "WAQ_TEMPLATE_HOLD_MAX") {
			t.Errorf("disabled: %s %q", e.Reason, e.Problem)
		}
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("the disabled template's jobs were parked after %s, before the hold's bound", took)
	}
	if n := h.sendsOf(t, append(rejected, disabled...)); n != 0 {
		t.Errorf("%d sends", n)
	}
	h.streamEmpty(t, 10*time.Second)
}

// TestTemplatePausedLearnedFromSend: with no webhook, a 132015 holds the
// template's jobs rather than parking them; one job tries again after
// WAQ_TEMPLATE_RETRY, and once the template is back all are sent.
func TestTemplatePausedLearnedFromSend(t *testing.T) {
	h := setupHolds(t, []fakegraph.Template{
		{Name: "spring_sale", Language: "en_US", Category: "MARKETING", WABAID: holdWABA, Status: "PAUSED"},
	}, func(c *worker.Config) { c.TemplateRetry = 300 * time.Millisecond })
	sc := h.fake.Scenario()
	sc.Webhooks = fakegraph.Webhooks{} // no webhook: only the sends tell
	if err := h.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	h.publish(t, tmplJob("first", "15550009999", "spring_sale"))
	h.waitTemplate(t, "spring_sale", "PAUSED")
	start := time.Now()
	held := append(h.publishN(t, "sale", "spring_sale", 20), "first")
	waitMetricAtLeast(t, h.r.url, `waq_held_total{scope="template"}`, 40)
	// The first send, then at most one try per WAQ_TEMPLATE_RETRY.
	tries := int64(time.Since(start)/(300*time.Millisecond)) + 2
	if st := h.fake.Stats(false); st.ByCode[132015] > tries {
		t.Errorf("%d sends answered 132015 in %s: the hold should stop all but one try per WAQ_TEMPLATE_RETRY", st.ByCode[132015], time.Since(start))
	}
	h.noneParked(t)

	sc.Templates[0].Status = "APPROVED"
	if err := h.fake.SetScenario(&sc); err != nil {
		t.Fatal(err)
	}
	h.waitSent(t, 20*time.Second, held...)
	h.streamEmpty(t, 10*time.Second)
	h.noneParked(t)
	testenv.Eventually(t, 5*time.Second, func() error {
		if rt := getReadyTemplates(t, h.r.url); len(rt.Templates) != 0 {
			return fmt.Errorf("readyz still lists %+v", rt.Templates)
		}
		return nil
	})
}

// TestAccountRestrictionPausesWABA: an account_update restricting
// business-initiated messaging pauses the WABA's number before any send
// fails, with the webhook's reason; lifting it resumes, nothing lost.
func TestAccountRestrictionPausesWABA(t *testing.T) {
	h := setupHolds(t, []fakegraph.Template{{Name: "receipt", Language: "en_US", WABAID: holdWABA}}, nil)
	if err := h.fake.UpdateAccount(holdWABA, fakegraph.AccountUpdate{Event: "ACCOUNT_RESTRICTION",
		Restrictions: []fakegraph.Restriction{{Type: "RESTRICTED_BIZ_INITIATED_MESSAGING", Expiration: time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05-0700")}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		rt := getReadyTemplates(t, h.r.url)
		if len(rt.Paused) == 1 && rt.Paused[0].Source == "webhook" && strings.Contains(rt.Paused[0].Reason, "RESTRICTED_BIZ_INITIATED_MESSAGING") {
			return nil
		}
		return fmt.Errorf("paused = %+v", rt.Paused)
	})
	ids := h.publishN(t, "r", "receipt", 10)
	waitMetricAtLeast(t, h.r.url, `waq_throttled_total{scope="paused"}`, 10)
	if n := h.sendsOf(t, ids); n != 0 {
		t.Fatalf("%d sends from a restricted WABA", n)
	}
	if ready := getReady(t, h.r.url); ready.Ready {
		t.Error("ready while the only number is restricted")
	}
	h.noneParked(t)
	if err := h.fake.UpdateAccount(holdWABA, fakegraph.AccountUpdate{Event: "ACCOUNT_RESTRICTION"}); err != nil {
		t.Fatal(err)
	}
	h.waitSent(t, 20*time.Second, ids...)
	h.streamEmpty(t, 10*time.Second)
	h.noneParked(t)
	if st := h.fake.Stats(false); st.ByCode[131031] != 0 {
		t.Errorf("%d sends answered 131031", st.ByCode[131031])
	}
}

// TestLowQualityHoldsMarketingOnly: a FLAGGED number holds its marketing
// template jobs and lets utility ones through; UNFLAGGED releases them.
func TestLowQualityHoldsMarketingOnly(t *testing.T) {
	h := lowQuality(t, "", false) // the default: hold
	marketing := h.publishN(t, "sale", "spring_sale", 5)
	utility := h.publishN(t, "receipt", "receipt", 5)
	h.waitSent(t, 20*time.Second, utility...)
	waitMetricAtLeast(t, h.r.url, `waq_held_total{scope="quality"}`, 10)
	if n := h.sendsOf(t, marketing); n != 0 {
		t.Fatalf("%d marketing sends on a FLAGGED number", n)
	}
	if err := h.fake.UpdateNumber(pn, fakegraph.NumberUpdate{Event: "UNFLAGGED"}); err != nil {
		t.Fatal(err)
	}
	h.waitSent(t, 20*time.Second, marketing...)
	h.streamEmpty(t, 10*time.Second)
	h.noneParked(t)
}

// waitMetricAtLeast waits until a counter or gauge line reaches min.
func waitMetricAtLeast(t *testing.T, url, series string, min float64) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, l := range strings.Split(scrape(t, url), "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err == nil && f >= min {
					return nil
				}
				return fmt.Errorf("%s = %s, want at least %v", series, v, min)
			}
		}
		return fmt.Errorf("no %s yet", series)
	})
}
