package throttle

import (
	"context"
	"encoding/json"
	"time"

	"github.com/waqhq/waq/deadletter"
	"github.com/waqhq/waq/graph"
	"github.com/waqhq/waq/numbers"
	"github.com/waqhq/waq/policy"
)

// hold is a pause or a time-limited hold, as stored in the shared hash.
type hold struct {
	Kind      string                `json:"kind"` // "hold" or "pause"
	Scope     string                `json:"scope"`
	Reason    string                `json:"reason"`
	Code      *int                  `json:"code,omitempty"`
	Since     time.Time             `json:"since"`
	Until     time.Time             `json:"until"` // hold: its end; pause: the next probe
	Probes    int                   `json:"probes,omitempty"`
	LastError *deadletter.LastError `json:"last_error,omitempty"`
	// ProbeNumber and ProbeTokenEnv say how to probe: a read of that
	// number with its token.
	ProbeNumber   string `json:"probe_number,omitempty"`
	ProbeTokenEnv string `json:"probe_token_env,omitempty"`
	// Source is "webhook" for a pause an account webhook set: not probed;
	// Until is then the restriction's end (zero: until a webhook lifts it).
	Source string `json:"source,omitempty"`
}

func mustJSON(h hold) []byte {
	data, _ := json.Marshal(h)
	return data
}

func (g *Gate) holdsKey() string { return g.cfg.Prefix + ":{gate}:holds" }

// countPausesLocked recounts the pauses among the holds (g.mu held).
func (g *Gate) countPausesLocked() {
	g.pauses = 0
	for _, h := range g.holds {
		if h.Kind == "pause" {
			g.pauses++
		}
	}
}

func (g *Gate) heldFor(num numbers.Number) (string, hold, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if len(g.holds) == 0 {
		// The common case, asked for every job: no keys to build.
		return "", hold{}, false
	}
	now := g.now()
	keys := []string{"hold:app"}
	if num.WABAID != "" {
		keys = append(keys, "hold:waba:"+num.WABAID)
	}
	keys = append(keys, "hold:number:"+num.PhoneNumberID)
	for _, k := range keys {
		if h, ok := g.holds[k]; ok && now.Before(h.Until) {
			return k, h, true
		}
	}
	return "", hold{}, false
}

// store writes a hold to the shared hash (only if absent when onlyNew) and
// to memory.
func (g *Gate) store(ctx context.Context, key string, h hold, onlyNew bool) bool {
	data, _ := json.Marshal(h)
	var err error
	ok := true
	if onlyNew {
		ok, err = g.rdb.HSetNX(ctx, g.holdsKey(), key, data).Result()
	} else {
		err = g.rdb.HSet(ctx, g.holdsKey(), key, data).Err()
	}
	if err != nil {
		g.log.Warn("could not share a hold; it applies to this worker only", "key", key, "error", err)
	}
	if ok || err != nil {
		g.mu.Lock()
		g.holds[key] = h
		g.countPausesLocked()
		g.mu.Unlock()
	}
	return ok
}

// holdBack holds the app or num's WABA back after a 4 or 80007, until the
// time the usage headers give (or fallback), and returns how long to hold
// the job back.
func (g *Gate) holdBack(ctx context.Context, num numbers.Number, scope policy.Scope, usage *graph.Usage, fallback time.Duration) time.Duration {
	d := usage.RegainAccessIn()
	if d <= 0 {
		d = fallback
	}
	if d < time.Second {
		d = time.Second
	}
	key := "hold:app"
	if scope == policy.ScopeWABA {
		key = "hold:waba:" + num.WABAID
		if num.WABAID == "" {
			key = "hold:number:" + num.PhoneNumberID
		}
	}
	h := hold{Kind: "hold", Scope: string(scope), Reason: "rate limit (" + string(scope) + ")", Since: g.now().UTC(), Until: g.now().Add(d).UTC()}
	g.store(ctx, key, h, false)
	g.log.Warn("app or WABA limit: holding", "key", key, "until", h.Until, "from_headers", usage.RegainAccessIn() > 0)
	return spread(d)
}
