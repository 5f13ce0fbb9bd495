package throttle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
)

// What a low quality does to marketing sends (Config.LowQualityMarketing).
const (
	LowQualityHold = "hold" // held like a paused template (the default)
	LowQualitySlow = "slow" // one marketing send a second per template or number
	LowQualitySend = "send" // let through
)

// The job categories that quality holds tell apart.
const (
	CategoryMarketing = "MARKETING"
)

// Hold scopes of an Admission.
const (
	ScopeTemplate = "template" // a paused or disabled template
	ScopeQuality  = "quality"  // a RED template or a FLAGGED number (marketing)
)

// Job is what Check needs of a job: its template, if any, and category.
type Job struct {
	Template, Language string
	// Category is MARKETING, UTILITY, AUTHENTICATION or "" (unknown: not
	// held for quality). See Category.
	Category string
}

// Category is a job's category for the quality holds: the Marketing
// Messages API sends marketing only; otherwise a template's category as
// its status webhook gave it; otherwise "" (unknown), which is let through.
func (g *Gate) Category(num numbers.Number, marketingAPI bool, template, lang string) string {
	if marketingAPI {
		return CategoryMarketing
	}
	if template == "" {
		return ""
	}
	t, _ := g.templateState(template, lang, num.WABAID)
	return t.Category
}

// Check says whether a job may go as far as its template and its number's
// quality are concerned, before it asks Admit for its paced slot: Wait > 0
// hands it back for that long; Park parks it. It costs no round trip unless
// something is held.
func (g *Gate) Check(ctx context.Context, num numbers.Number, j Job) Admission {
	now := g.now()
	if j.Template != "" {
		if t, ok := g.templateState(j.Template, j.Language, num.WABAID); ok {
			what := fmt.Sprintf("template %s (%s) %s since %s", j.Template, j.Language, t.Status, t.Since.UTC().Format(time.RFC3339))
			if t.Reason != "" {
				what += " (" + t.Reason + ")"
			}
			switch t.Status {
			case "PAUSED", "DISABLED":
				if !t.Until.IsZero() && !now.Before(t.Until) && g.tryOnce(ctx, "tpl:"+templateKey(j.Template, j.Language)) {
					// Learned from a send error, and it is time to see
					// whether the template is back: this one job tries.
					return Admission{}
				}
				return g.held(now, t.Since, ScopeTemplate, policy.ReasonTemplate, what)
			case "REJECTED", "DELETED", "PENDING_DELETION":
				return Admission{Park: policy.ReasonTemplate, Scope: ScopeTemplate, Why: what + "; a template Meta rejected or deleted is never sent"}
			}
			if t.Quality == "RED" && j.Category == CategoryMarketing {
				what := fmt.Sprintf("template %s (%s) quality RED since %s", j.Template, j.Language, t.QualitySince.UTC().Format(time.RFC3339))
				if adm, ok := g.lowQuality(ctx, now, t.QualitySince, "q:"+templateKey(j.Template, j.Language), policy.ReasonTemplate, what); ok {
					return adm
				}
			}
		}
	}
	if j.Category == CategoryMarketing {
		if q, ok := g.numberQuality(num.PhoneNumberID); ok && q.Flagged() {
			what := fmt.Sprintf("phone number %s FLAGGED since %s (messaging limit %s)", num.PhoneNumberID, q.Since.UTC().Format(time.RFC3339), q.CurrentLimit)
			if adm, ok := g.lowQuality(ctx, now, q.Since, "n:"+num.PhoneNumberID, policy.ReasonAccount, what); ok {
				return adm
			}
		}
	}
	return Admission{}
}

// held hands a job back until the next look, or parks it with reason once
// it has been held for Config.TemplateHoldMax since since.
func (g *Gate) held(now, since time.Time, scope, reason, what string) Admission {
	left := g.cfg.TemplateHoldMax - now.Sub(since)
	if left <= 0 {
		return Admission{Park: reason, Scope: scope,
			Why: what + "; held for " + g.cfg.TemplateHoldMax.String() + " (WAQ_TEMPLATE_HOLD_MAX) and still not sendable"}
	}
	return Admission{Wait: spread(min(g.cfg.HoldRecheck, left+time.Second)), Scope: scope, Why: what, Hold: true}
}

// lowQuality applies Config.LowQualityMarketing to a marketing job; false
// lets it through.
func (g *Gate) lowQuality(ctx context.Context, now, since time.Time, key, reason, what string) (Admission, bool) {
	switch g.cfg.LowQualityMarketing {
	case LowQualitySend:
		return Admission{}, false
	case LowQualitySlow:
		if g.tryEvery(ctx, "slow:"+key, time.Second) {
			return Admission{}, false
		}
		return Admission{Wait: spread(time.Second), Scope: ScopeQuality, Why: what + "; marketing slowed to one a second"}, true
	}
	adm := g.held(now, since, ScopeQuality, reason, what+"; marketing held (WAQ_LOW_QUALITY_MARKETING=hold)")
	return adm, true
}

// tryOnce takes a lock shared by every worker: one job at a time tries a
// template learned paused from a send error. The lock lasts half of
// TemplateRetry (at most 30 s, the longest a send takes), so that it is
// gone by the next try's time; HoldTemplate drops it when the try fails.
func (g *Gate) tryOnce(ctx context.Context, key string) bool {
	return g.tryEvery(ctx, key, min(30*time.Second, max(g.cfg.TemplateRetry/2, 100*time.Millisecond)))
}

func (g *Gate) tryKey(key string) string { return g.cfg.Prefix + ":{gate}:try:" + key }

// tryEvery reports true at most once per every, across all workers.
func (g *Gate) tryEvery(ctx context.Context, key string, every time.Duration) bool {
	ok, err := g.rdb.SetNX(ctx, g.tryKey(key), "1", every).Result()
	return err == nil && ok
}

// numberQuality is num's last quality event, found by its display number.
func (g *Gate) numberQuality(pn string) (NumberQuality, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if len(g.numq) == 0 {
		return NumberQuality{}, false
	}
	q, ok := g.numq[g.displays[pn]]
	q.PhoneNumberID = pn
	return q, ok
}

// HoldTemplate is told of a send that failed because its template is
// paused (132015) or disabled (132016): the template is held as if a
// webhook had said so, until TemplateRetry has passed and one job tries
// again (or a webhook says APPROVED). It returns how long to hold the job
// back.
func (g *Gate) HoldTemplate(ctx context.Context, num numbers.Number, template, lang string, f graph.Failure, last *deadletter.LastError) time.Duration {
	status := "PAUSED"
	if f.HasCode && f.Code == 132016 {
		status = "DISABLED"
	}
	now := g.now().UTC()
	t := TemplateState{Name: template, Language: lang, WABAID: num.WABAID, Status: status, Since: now,
		Until: now.Add(g.cfg.TemplateRetry), Reason: "code " + f.String()}
	if last != nil && last.Title != "" {
		t.Reason += ": " + last.Title
	}
	if old, ok := g.templateState(template, lang, num.WABAID); ok {
		if old.Status == status && old.Until.IsZero() {
			// A webhook said so already; it will say when it is over.
			return spread(g.cfg.HoldRecheck)
		}
		if old.Status == status {
			t.Since = old.Since
		}
		t.Category = old.Category
		t.WABAID = old.WABAID
	}
	t.Reason = clip(t.Reason)
	field := "s:" + template + ":" + lang + ":" + t.WABAID
	pipe := g.rdb.TxPipeline()
	pipe.HSet(ctx, g.templatesKey(), field, encodeStatus(t))
	pipe.Del(ctx, g.tryKey("tpl:"+templateKey(template, lang)))
	if _, err := pipe.Exec(ctx); err != nil {
		g.log.Warn("could not share a template hold", "template", template, "error", err)
	}
	g.log.Warn("template held: a send says it cannot be sent", "template", template, "language", lang, "status", status,
		"code", f.String(), "next_try", t.Until)
	g.refreshSoon(ctx)
	return spread(min(g.cfg.HoldRecheck, g.cfg.TemplateRetry))
}

// TemplateSent is told of a template job sent: a hold learned from a send
// error for that template is over.
func (g *Gate) TemplateSent(ctx context.Context, num numbers.Number, template, lang string) {
	t, ok := g.templateState(template, lang, num.WABAID)
	if !ok || t.Until.IsZero() || (t.Status != "PAUSED" && t.Status != "DISABLED") {
		return
	}
	field := "s:" + template + ":" + lang + ":" + t.WABAID
	if err := g.rdb.HDel(ctx, g.templatesKey(), field).Err(); err != nil {
		return
	}
	g.log.Info("template released: a send went through", "template", template, "language", lang, "held_for", g.now().Sub(t.Since).Round(time.Second).String())
	g.refreshSoon(ctx)
}

// Templates lists the templates the gate knows a state of, and Numbers'
// quality events (for /readyz, doctor and the console).
func (g *Gate) Templates() ([]TemplateState, []NumberQuality) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var ts []TemplateState
	for _, list := range g.templates {
		ts = append(ts, list...)
	}
	byDisplay := map[string]string{}
	for pn, d := range g.displays {
		byDisplay[d] = pn
	}
	var qs []NumberQuality
	for d, q := range g.numq {
		q.PhoneNumberID = byDisplay[d]
		qs = append(qs, q)
	}
	sortTemplates(ts)
	sortQualities(qs)
	return ts, qs
}

// Held reports whether a template state holds its jobs back.
func (t TemplateState) Held() bool {
	switch t.Status {
	case "PAUSED", "DISABLED", "REJECTED", "DELETED", "PENDING_DELETION":
		return true
	}
	return strings.EqualFold(t.Quality, "RED")
}
