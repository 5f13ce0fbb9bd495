package throttle

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/webhook"
)

// Template and number states, as Meta's account webhooks (and some send
// errors) report them, are kept in two small Redis hashes that every worker
// reads with the holds (twice a second), so a job's check costs no round
// trip:
//
//	{prefix}:{gate}:templates  s:NAME:LANG:WABA → STATUS|SINCE|UNTIL|CATEGORY|REASON
//	                           q:NAME:LANG:WABA → QUALITY|SINCE
//	{prefix}:{gate}:numq       DISPLAY_NUMBER   → EVENT|CURRENT_LIMIT|SINCE
//
// SINCE and UNTIL are Unix milliseconds; UNTIL is 0 for a state a webhook set
// (it lasts until the next webhook) and the time of the next try for one a
// send error set (Meta sends no webhook to lift it when none is subscribed).
// WABA is "" when the job's number has no waba_id in the phone-number file.
// One field per template and language: tens to hundreds of fields.

func (g *Gate) templatesKey() string { return g.cfg.Prefix + ":{gate}:templates" }
func (g *Gate) numqKey() string      { return g.cfg.Prefix + ":{gate}:numq" }

// TemplateState is what the gate knows of one template in one language.
type TemplateState struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	WABAID   string `json:"waba_id,omitempty"`
	// Status is Meta's last template event (APPROVED, PAUSED, DISABLED,
	// REJECTED, PENDING_DELETION, ...), "" when only its quality is known.
	Status string `json:"status,omitempty"`
	// Category is MARKETING, UTILITY or AUTHENTICATION when a webhook said.
	Category string `json:"category,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Since is when the status began; a hold counts from it.
	Since time.Time `json:"since,omitzero"`
	// Until, for a status learned from a send error, is when one job may
	// try again; zero for a webhook's.
	Until time.Time `json:"until,omitzero"`
	// Quality is GREEN, YELLOW, RED or UNKNOWN ("" when never reported).
	Quality      string    `json:"quality,omitempty"`
	QualitySince time.Time `json:"quality_since,omitzero"`
}

// NumberQuality is a business number's last phone_number_quality_update.
type NumberQuality struct {
	DisplayPhoneNumber string    `json:"display_phone_number"`
	PhoneNumberID      string    `json:"phone_number_id,omitempty"`
	Event              string    `json:"event"`
	CurrentLimit       string    `json:"current_limit,omitempty"`
	Since              time.Time `json:"since,omitzero"`
}

// Flagged reports whether Meta flagged the number (its quality is low).
func (q NumberQuality) Flagged() bool { return q.Event == "FLAGGED" }

func templateKey(name, lang string) string { return name + ":" + lang }

// encodeStatus and decodeStatus are a status field's value.
func encodeStatus(t TemplateState) string {
	return strings.Join([]string{t.Status, unix(t.Since), unix(t.Until), t.Category, t.Reason}, "|")
}

func decodeStatus(field, v string, t *TemplateState) bool {
	p := strings.SplitN(v, "|", 5)
	if len(p) != 5 || !splitField(field, t) {
		return false
	}
	t.Status, t.Since, t.Until, t.Category, t.Reason = p[0], fromUnix(p[1]), fromUnix(p[2]), p[3], p[4]
	return true
}

func decodeQuality(field, v string, t *TemplateState) bool {
	p := strings.SplitN(v, "|", 2)
	if len(p) != 2 || !splitField(field, t) {
		return false
	}
	t.Quality, t.QualitySince = p[0], fromUnix(p[1])
	return true
}

// splitField reads NAME:LANG:WABA after the s: or q: of a field.
func splitField(field string, t *TemplateState) bool {
	p := strings.SplitN(field[2:], ":", 3)
	if len(p) != 3 || p[0] == "" || p[1] == "" {
		return false
	}
	t.Name, t.Language, t.WABAID = p[0], p[1], p[2]
	return true
}

func unix(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func fromUnix(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// clip bounds a reason kept in Redis.
func clip(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// RecordTemplate keeps a template status or quality webhook.
func (g *Gate) RecordTemplate(ctx context.Context, ev webhook.AccountEvent) error {
	now := g.now().UTC()
	if ev.Time > 0 {
		now = time.Unix(ev.Time, 0).UTC()
	}
	id := ev.TemplateName + ":" + ev.TemplateLanguage + ":" + ev.WABAID
	if ev.Field == webhook.FieldTemplateQuality {
		if err := g.rdb.HSet(ctx, g.templatesKey(), "q:"+id, ev.Event+"|"+unix(now)).Err(); err != nil {
			return err
		}
		g.log.Info("template quality", "template", ev.TemplateName, "language", ev.TemplateLanguage, "waba_id", ev.WABAID,
			"quality", ev.Event, "was", ev.PreviousQuality)
		g.refreshSoon(ctx)
		return nil
	}
	t := TemplateState{Name: ev.TemplateName, Language: ev.TemplateLanguage, WABAID: ev.WABAID, Status: ev.Event,
		Category: ev.Category, Reason: clip(ev.Reason), Since: now}
	if old, ok := g.templateState(ev.TemplateName, ev.TemplateLanguage, ev.WABAID); ok {
		if old.Status == t.Status && old.Until.IsZero() && !old.Since.IsZero() {
			t.Since = old.Since // a redelivery or a repeat: the hold counts from the first
		}
		if t.Category == "" {
			t.Category = old.Category
		}
	}
	pipe := g.rdb.TxPipeline()
	pipe.HSet(ctx, g.templatesKey(), "s:"+id, encodeStatus(t))
	if ev.WABAID != "" {
		// A state learned from a send error for a number without waba_id
		// gives way to the webhook's.
		pipe.HDel(ctx, g.templatesKey(), "s:"+ev.TemplateName+":"+ev.TemplateLanguage+":")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	g.log.Info("template status", "template", ev.TemplateName, "language", ev.TemplateLanguage, "waba_id", ev.WABAID,
		"status", t.Status, "reason", t.Reason, "category", t.Category)
	g.refreshSoon(ctx)
	return nil
}

// RecordNumberQuality keeps a phone_number_quality_update.
func (g *Gate) RecordNumberQuality(ctx context.Context, ev webhook.AccountEvent) error {
	now := g.now().UTC()
	if ev.Time > 0 {
		now = time.Unix(ev.Time, 0).UTC()
	}
	since := now
	g.mu.RLock()
	if old, ok := g.numq[ev.DisplayPhoneNumber]; ok && old.Event == ev.Event {
		since = old.Since
	}
	g.mu.RUnlock()
	if err := g.rdb.HSet(ctx, g.numqKey(), ev.DisplayPhoneNumber, ev.Event+"|"+clip(ev.CurrentLimit)+"|"+unix(since)).Err(); err != nil {
		return err
	}
	g.log.Info("phone number quality", "display_phone_number", ev.DisplayPhoneNumber, "event", ev.Event, "current_limit", ev.CurrentLimit)
	g.refreshSoon(ctx)
	return nil
}

// templateState finds a template's state in memory for a number of waba
// ("" matches any).
func (g *Gate) templateState(name, lang, waba string) (TemplateState, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.templateStateLocked(name, lang, waba)
}

func (g *Gate) templateStateLocked(name, lang, waba string) (TemplateState, bool) {
	var best TemplateState
	found := false
	for _, t := range g.templates[templateKey(name, lang)] {
		if waba != "" && t.WABAID != "" && t.WABAID != waba {
			continue
		}
		if !found || (t.WABAID != "" && best.WABAID == "") {
			best, found = t, true
		}
	}
	return best, found
}

// readTemplates reads both hashes into memory (from refresh).
func (g *Gate) readTemplates(ctx context.Context) {
	pipe := g.rdb.Pipeline()
	tc := pipe.HGetAll(ctx, g.templatesKey())
	nc := pipe.HGetAll(ctx, g.numqKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return
	}
	templates, numq := decodeTemplates(tc.Val(), nc.Val())
	g.mu.Lock()
	g.templates, g.numq = templates, numq
	g.mu.Unlock()
}

// decodeTemplates reads the two hashes' fields: the templates by
// templateKey, the number quality events by display number. A field of
// another shape is skipped.
func decodeTemplates(tc, nc map[string]string) (map[string][]TemplateState, map[string]NumberQuality) {
	byID := map[string]*TemplateState{}
	for f, v := range tc {
		if len(f) < 3 {
			continue
		}
		id := f[2:]
		t := byID[id]
		if t == nil {
			t = &TemplateState{}
		}
		ok := false
		switch f[:2] {
		case "s:":
			ok = decodeStatus(f, v, t)
		case "q:":
			ok = decodeQuality(f, v, t)
		}
		if ok {
			byID[id] = t
		}
	}
	templates := make(map[string][]TemplateState, len(byID))
	for _, t := range byID {
		k := templateKey(t.Name, t.Language)
		templates[k] = append(templates[k], *t)
	}
	numq := make(map[string]NumberQuality, len(nc))
	for d, v := range nc {
		p := strings.SplitN(v, "|", 3)
		if len(p) != 3 {
			continue
		}
		numq[d] = NumberQuality{DisplayPhoneNumber: d, Event: p[0], CurrentLimit: p[1], Since: fromUnix(p[2])}
	}
	return templates, numq
}

// refreshSoon reads the shared state again now, so that the worker that
// recorded a change acts on it at once (the others within half a second).
func (g *Gate) refreshSoon(ctx context.Context) {
	g.readTemplates(ctx)
	g.publishMetrics()
}
