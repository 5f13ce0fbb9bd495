package throttle

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
)

func (g *Gate) probeKey(k string) string { return g.cfg.Prefix + ":{gate}:probe:" + k }

// pauseKeys are the pause keys that would stop num, most specific first.
func pauseKeys(num numbers.Number) []string {
	keys := []string{"pause:number:" + num.PhoneNumberID}
	if num.WABAID != "" {
		keys = append(keys, "pause:waba:"+num.WABAID)
	}
	keys = append(keys, "pause:token:"+num.TokenEnv, "pause:app")
	return keys
}

// pausedFor finds the pause that stops num. It is asked before every send,
// so it builds no key when nothing is paused (the usual case).
func (g *Gate) pausedFor(num numbers.Number) (string, hold, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.pauses == 0 {
		return "", hold{}, false
	}
	for _, k := range pauseKeys(num) {
		if h, ok := g.holds[k]; ok {
			return k, h, true
		}
	}
	return "", hold{}, false
}

// Pause is told of a credential or account failure and returns how long to
// hold the job back.
func (g *Gate) Pause(ctx context.Context, num numbers.Number, scope policy.Scope, f graph.Failure, last *deadletter.LastError) time.Duration {
	var key string
	switch scope {
	case policy.ScopeToken:
		key = "pause:token:" + num.TokenEnv
	case policy.ScopeWABA:
		if num.WABAID != "" {
			key = "pause:waba:" + num.WABAID
		} else {
			key = "pause:number:" + num.PhoneNumberID
		}
	case policy.ScopeApp:
		key = "pause:app"
	default:
		key = "pause:number:" + num.PhoneNumberID
	}
	now := g.now().UTC()
	var code *int
	if f.HasCode {
		c := f.Code
		code = &c
	}
	reason := "code " + f.String()
	if last != nil && last.Title != "" {
		reason += ": " + last.Title
	}
	h := hold{Kind: "pause", Scope: string(scope), Reason: reason, Code: code, Since: now, Until: now.Add(g.cfg.ProbeFirst),
		LastError: last, ProbeNumber: num.PhoneNumberID, ProbeTokenEnv: num.TokenEnv}
	if g.store(ctx, key, h, true) {
		g.log.Warn("paused: credential or account problem; probing until it is fixed", "key", key, "code", f.String(),
			"affects", strings.Join(g.affected(key), ","), "probe_in", g.cfg.ProbeFirst.String())
	}
	g.publishMetrics()
	return spread(g.cfg.ProbeFirst)
}

// probe reads the paused number with its token. One worker probes at a time
// (a Redis lock); the others wait for the next probe time. It resumes the
// pause when the read shows the number can send.
func (g *Gate) probe(ctx context.Context, key string, h hold, num numbers.Number) (bool, time.Time) {
	now := g.now()
	ok, err := g.rdb.SetNX(ctx, g.probeKey(key), "1", 20*time.Second).Result()
	if err != nil || !ok {
		return false, now.Add(2 * time.Second)
	}
	defer g.rdb.Del(context.WithoutCancel(ctx), g.probeKey(key))
	pn := h.ProbeNumber
	if pn == "" {
		pn = num.PhoneNumberID
	}
	pnum, lerr := g.numbers.Lookup(pn)
	if lerr != nil {
		pnum = num
	}
	var out struct {
		Status     string `json:"status"`
		Throughput struct {
			Level string `json:"level"`
		} `json:"throughput"`
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = g.graph.Get(pctx, url.PathEscape(pn), url.Values{"fields": {"status,throughput"}}, pnum.Token(), &out)
	cancel()
	if err == nil {
		g.noteLevel(pnum, out.Throughput.Level)
	}
	if err == nil && sendable(out.Status) {
		g.rdb.HDel(ctx, g.holdsKey(), key)
		g.mu.Lock()
		delete(g.holds, key)
		g.countPausesLocked()
		g.mu.Unlock()
		g.log.Info("resumed: the probe succeeded", "key", key, "status", out.Status, "paused_for", now.Sub(h.Since).Round(time.Second).String())
		g.publishMetrics()
		return true, now
	}
	h.Probes++
	wait := g.cfg.ProbeFirst << min(h.Probes, 10)
	if wait > g.cfg.ProbeMax || wait <= 0 {
		wait = g.cfg.ProbeMax
	}
	h.Until = now.Add(wait).UTC()
	g.store(ctx, key, h, false)
	why := out.Status
	if err != nil {
		why = err.Error()
	}
	g.log.Info("still paused: the probe failed", "key", key, "probe", h.Probes, "result", why, "next_probe_in", wait.String())
	return false, h.Until
}

// sendable says whether a phone number status allows sending.
func sendable(status string) bool {
	switch strings.ToUpper(status) {
	case "RESTRICTED", "BANNED", "DELETED", "DISCONNECTED", "UNVERIFIED", "PENDING", "DEPRECATED":
		return false
	}
	return true
}

// affected lists the known numbers a pause key stops.
func (g *Gate) affected(key string) []string {
	var out []string
	for _, n := range g.known() {
		for _, k := range pauseKeys(n) {
			if k == key {
				out = append(out, n.PhoneNumberID)
				break
			}
		}
	}
	return out
}

// Paused reports, from memory, whether num is paused now, and how long to
// hold its jobs back (until the next probe). It costs no round trip: the
// worker asks it right before each send.
func (g *Gate) Paused(num numbers.Number) (time.Duration, bool) {
	_, h, ok := g.pausedFor(num)
	if !ok {
		return 0, false
	}
	if h.Source == pauseSourceWebhook {
		return g.webhookPauseWait(h, g.now()), true
	}
	return spread(h.Until.Sub(g.now())), true
}
