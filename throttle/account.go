package throttle

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/waqhq/waq/webhook"
)

// pauseSourceWebhook marks a pause an account_update set: no probe lifts it
// (the number reads fine while its WABA is restricted), only the webhook
// that lifts the restriction or the restriction's expiration.
const pauseSourceWebhook = "webhook"

// restrictsSending reports whether a restriction stops waq's sends:
// business-initiated messaging (templates) or customer-initiated (replies);
// RESTRICTED_ADD_PHONE_NUMBER_ACTION and kin do not.
func restrictsSending(r webhook.Restriction) bool {
	return strings.HasSuffix(strings.ToUpper(r.Type), "_INITIATED_MESSAGING")
}

// AccountUpdate acts on an account_update for a WABA: a restriction on
// messaging, a disabled (banned) or deleted account pauses every number of
// that WABA, as a 131031 does, with the webhook's reason; a lifted
// restriction or a reinstated account resumes them. It reports what it did
// ("paused", "resumed" or "recorded").
func (g *Gate) AccountUpdate(ctx context.Context, ev webhook.AccountEvent) (string, error) {
	key := "pause:waba:" + ev.WABAID
	now := g.now().UTC()
	switch ev.Event {
	case "ACCOUNT_RESTRICTION":
		var until time.Time
		var types []string
		for _, r := range ev.Restrictions {
			if !restrictsSending(r) {
				continue
			}
			types = append(types, r.Type)
			if t, ok := parseExpiration(r.Expiration); ok && t.After(until) {
				until = t
			}
		}
		if len(types) == 0 {
			return g.resumeWebhookPause(ctx, key, false, "restriction lifted")
		}
		if until.Before(now) {
			// No end given (or one past): Meta says when it lifts it.
			until = time.Time{}
		}
		return "paused", g.webhookPause(ctx, key, "account_update ACCOUNT_RESTRICTION: "+strings.Join(types, ", "), now, until)
	case "DISABLED_UPDATE":
		switch ev.BanState {
		case "DISABLE":
			return "paused", g.webhookPause(ctx, key, "account_update DISABLED_UPDATE: the WABA is disabled (waba_ban_state DISABLE)", now, time.Time{})
		case "REINSTATE":
			return g.resumeWebhookPause(ctx, key, true, "account reinstated")
		}
	case "ACCOUNT_DELETED":
		return "paused", g.webhookPause(ctx, key, "account_update ACCOUNT_DELETED: the WABA was deleted", now, time.Time{})
	}
	g.log.Info("account update recorded; nothing to pause", "waba_id", ev.WABAID, "event", ev.Event, "ban_state", ev.BanState, "violation_type", ev.ViolationType)
	return "recorded", nil
}

// parseExpiration reads restriction_info[].expiration: RFC 3339 with or
// without a colon in the offset ("2026-04-19T13:59:20+0000"), or Unix seconds.
func parseExpiration(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05-0700", "2006-01-02T15:04:05.000Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), true
	}
	return time.Time{}, false
}

// webhookPause stores a pause of the WABA that only a webhook (or until,
// when it is not zero) lifts; a pause already there keeps its start.
func (g *Gate) webhookPause(ctx context.Context, key, reason string, now, until time.Time) error {
	h := hold{Kind: "pause", Scope: "waba", Reason: clip(reason), Since: now, Until: until, Source: pauseSourceWebhook}
	g.mu.RLock()
	if old, ok := g.holds[key]; ok {
		h.Since = old.Since
	}
	g.mu.RUnlock()
	if err := g.storeErr(ctx, key, h); err != nil {
		return err
	}
	affected := g.affected(key)
	g.log.Warn("paused by an account webhook", "key", key, "reason", h.Reason, "until", until, "affects", strings.Join(affected, ","))
	if len(affected) == 0 {
		g.log.Warn("no known number is in this WABA: give each number its waba_id in the phone-number file for account webhooks to pause it", "key", key)
	}
	g.publishMetrics()
	return nil
}

// resumeWebhookPause lifts the WABA's pause: one an account webhook set, or
// any (anyPause: Meta says the account is reinstated).
func (g *Gate) resumeWebhookPause(ctx context.Context, key string, anyPause bool, why string) (string, error) {
	g.mu.RLock()
	h, ok := g.holds[key]
	g.mu.RUnlock()
	if !ok || (!anyPause && h.Source != pauseSourceWebhook) {
		return "recorded", nil
	}
	if err := g.rdb.HDel(ctx, g.holdsKey(), key).Err(); err != nil {
		return "", err
	}
	g.dropHold(key)
	g.log.Info("resumed by an account webhook", "key", key, "why", why, "paused_for", g.now().Sub(h.Since).Round(time.Second).String())
	g.publishMetrics()
	return "resumed", nil
}

// storeErr writes a hold to the shared hash and to memory; unlike store it
// fails when Redis does (the webhook event is then delivered again).
func (g *Gate) storeErr(ctx context.Context, key string, h hold) error {
	if err := g.rdb.HSet(ctx, g.holdsKey(), key, mustJSON(h)).Err(); err != nil {
		return err
	}
	g.mu.Lock()
	g.holds[key] = h
	g.countPausesLocked()
	g.mu.Unlock()
	return nil
}

func (g *Gate) dropHold(key string) {
	g.mu.Lock()
	delete(g.holds, key)
	g.countPausesLocked()
	g.mu.Unlock()
}

func sortTemplates(ts []TemplateState) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Name != ts[j].Name {
			return ts[i].Name < ts[j].Name
		}
		if ts[i].Language != ts[j].Language {
			return ts[i].Language < ts[j].Language
		}
		return ts[i].WABAID < ts[j].WABAID
	})
}

func sortQualities(qs []NumberQuality) {
	sort.Slice(qs, func(i, j int) bool { return qs[i].DisplayPhoneNumber < qs[j].DisplayPhoneNumber })
}

// webhookPauseWait is how long a job waits for a pause an account webhook
// set: until the next look, or the restriction's end if sooner.
func (g *Gate) webhookPauseWait(h hold, now time.Time) time.Duration {
	d := g.cfg.HoldRecheck
	if !h.Until.IsZero() && h.Until.Sub(now) < d {
		d = h.Until.Sub(now)
	}
	return spread(d)
}

// expireWebhookPause lifts a restriction whose expiration has passed.
func (g *Gate) expireWebhookPause(ctx context.Context, key string, h hold) {
	if err := g.rdb.HDel(ctx, g.holdsKey(), key).Err(); err != nil {
		return
	}
	g.dropHold(key)
	g.log.Info("resumed: the account restriction expired", "key", key, "until", h.Until)
	g.publishMetrics()
}
