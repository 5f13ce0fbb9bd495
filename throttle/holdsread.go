package throttle

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Holds is what the shared hashes say is held, read without a gate (waq
// doctor reads it from Redis as the workers left it).
type Holds struct {
	// Templates are the templates whose status or quality holds their
	// jobs (TemplateState.Held), by name, language and WABA.
	Templates []TemplateState `json:"templates"`
	// Numbers are the business numbers Meta flagged, by display number
	// (PhoneNumberID is empty: a worker learns it from the Graph API).
	Numbers []NumberQuality `json:"number_quality"`
	// Accounts are the pauses an account webhook set (Source "webhook"):
	// Key is pause:waba:WABA_ID.
	Accounts []State `json:"accounts"`
	// HeldJobs is how many jobs wait in the workers' hold set (ZCARD of
	// HoldSetKey): jobs held for their template or quality, out of the
	// stream until their look-again time.
	HeldJobs int64 `json:"held_jobs"`
}

// HoldSetKey is the sorted set of held jobs by look-again time under
// prefix ("" is "waq"); the held messages are in HoldSetKey + ":jobs".
// One hash tag ({held}), so on Redis Cluster the set lives on one node.
func HoldSetKey(prefix string) string {
	if prefix == "" {
		prefix = "waq"
	}
	return prefix + ":{held}"
}

// ReadHolds reads the template, number quality and account holds the
// workers share under prefix (Config.Prefix; "" is "waq").
func ReadHolds(ctx context.Context, rdb redis.Cmdable, prefix string) (Holds, error) {
	if prefix == "" {
		prefix = "waq"
	}
	pipe := rdb.Pipeline()
	tc := pipe.HGetAll(ctx, prefix+":{gate}:templates")
	nc := pipe.HGetAll(ctx, prefix+":{gate}:numq")
	hc := pipe.HGetAll(ctx, prefix+":{gate}:holds")
	held := pipe.ZCard(ctx, HoldSetKey(prefix))
	if _, err := pipe.Exec(ctx); err != nil {
		return Holds{}, err
	}
	templates, numq := decodeTemplates(tc.Val(), nc.Val())
	var ts []TemplateState
	for _, list := range templates {
		ts = append(ts, list...)
	}
	var qs []NumberQuality
	for _, q := range numq {
		qs = append(qs, q)
	}
	hs := Holds{Accounts: []State{}, HeldJobs: held.Val()}
	hs.Templates, hs.Numbers = Unhealthy(ts, qs)
	for k, v := range hc.Val() {
		var h hold
		if !strings.HasPrefix(k, "pause:waba:") || json.Unmarshal([]byte(v), &h) != nil || h.Source != pauseSourceWebhook {
			continue
		}
		hs.Accounts = append(hs.Accounts, State{Key: k, Scope: h.Scope, Reason: h.Reason, Since: h.Since, Until: h.Until, Source: h.Source})
	}
	sortTemplates(hs.Templates)
	sortQualities(hs.Numbers)
	sort.Slice(hs.Accounts, func(i, j int) bool { return hs.Accounts[i].Key < hs.Accounts[j].Key })
	return hs, nil
}

// WABAOf is the WABA id of an account pause's key (pause:waba:ID).
func (s State) WABAOf() string {
	id, _ := strings.CutPrefix(s.Key, "pause:waba:")
	return id
}

// Unhealthy keeps of ts the templates that hold their jobs (Held) and of qs
// the numbers Meta flagged; never nil.
func Unhealthy(ts []TemplateState, qs []NumberQuality) ([]TemplateState, []NumberQuality) {
	held, flagged := []TemplateState{}, []NumberQuality{}
	for _, t := range ts {
		if t.Held() {
			held = append(held, t)
		}
	}
	for _, q := range qs {
		if q.Flagged() {
			flagged = append(flagged, q)
		}
	}
	return held, flagged
}
