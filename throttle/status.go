package throttle

import (
	"sort"
	"time"

	"github.com/waqhq/waq/numbers"
)

// Status is what /readyz shows of the gate.
type Status struct {
	Paused    []State `json:"paused"`
	Throttled []State `json:"throttled"`
	// AllPaused is true when no number can send.
	AllPaused bool `json:"all_paused"`
	// Numbers is the pace of every number the gate knows.
	Numbers []Pace `json:"numbers"`
}

// Pace is the rate one number is paced at, and where it comes from.
type Pace struct {
	PhoneNumberID string `json:"phone_number_id"`
	// MPS is the number's allowed rate: the file's mps, the rate of its
	// throughput level, or the default 80 (Source says which).
	MPS int `json:"mps"`
	// Source is "file" (mps in the phone-number file, which overrides the
	// level), "level" (the throughput level read from the Graph API) or
	// "default".
	Source string `json:"source"`
	// Level is the throughput level last read (STANDARD, HIGH, ...), ""
	// before the first read.
	Level string `json:"level,omitempty"`
	// Rate is the rate now: MPS, or lower after a 130429 while it climbs
	// back.
	Rate float64 `json:"rate"`
}

// State is one number (or token, WABA, the app) held back, and why.
type State struct {
	Key           string `json:"key"`
	PhoneNumberID string `json:"phone_number_id,omitempty"`
	Scope         string `json:"scope"`
	Reason        string `json:"reason"`
	Code          *int   `json:"code,omitempty"`
	// Since is when it began: the pause, the hold, or the first 130429
	// that lowered a number's rate.
	Since time.Time `json:"since,omitzero"`
	// Until is a hold's end, a pause's next probe, or when a lowered rate
	// is back at mps if no other 130429 lowers it.
	Until time.Time `json:"until,omitzero"`
	Rate  float64   `json:"rate,omitempty"`
	MPS   int       `json:"mps,omitempty"`
	// Source is "webhook" for a pause an account webhook set.
	Source string `json:"source,omitempty"`
}

// known is every number the gate knows of: the file's and those seen.
func (g *Gate) known() []numbers.Number {
	byID := map[string]numbers.Number{}
	for _, n := range g.numbers.Listed() {
		byID[n.PhoneNumberID] = n
	}
	g.mu.RLock()
	for id, n := range g.seen {
		if _, ok := byID[id]; !ok {
			byID[id] = n
		}
	}
	g.mu.RUnlock()
	out := make([]numbers.Number, 0, len(byID))
	for _, n := range byID {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PhoneNumberID < out[j].PhoneNumberID })
	return out
}

// Status lists what is paused or throttled.
func (g *Gate) Status() Status {
	var st Status
	known := g.known()
	g.mu.RLock()
	defer g.mu.RUnlock()
	now := g.now()
	paused := 0
	st.Numbers = make([]Pace, 0, len(known))
	for _, n := range known {
		p := g.pacedLocked(n)
		src, lvl := g.rateSourceLocked(n)
		rate := float64(p.MPS)
		if r, ok := g.rates[n.PhoneNumberID]; ok && r.mps == p.MPS {
			rate = r.rate
		}
		st.Numbers = append(st.Numbers, Pace{PhoneNumberID: n.PhoneNumberID, MPS: p.MPS, Source: src, Level: lvl, Rate: rate})
		for _, k := range pauseKeys(n) {
			if h, ok := g.holds[k]; ok {
				st.Paused = append(st.Paused, State{Key: k, PhoneNumberID: n.PhoneNumberID, Scope: h.Scope, Reason: h.Reason, Code: h.Code, Since: h.Since, Until: h.Until, Source: h.Source})
				paused++
				break
			}
		}
		if r, ok := g.rates[n.PhoneNumberID]; ok && r.rate < float64(r.mps)-0.01 {
			st.Throttled = append(st.Throttled, State{Key: "rate", PhoneNumberID: n.PhoneNumberID, Scope: "number", Reason: "130429: rate lowered",
				Rate: r.rate, MPS: r.mps, Since: r.since, Until: r.until})
		}
	}
	keys := make([]string, 0, len(g.holds))
	for k := range g.holds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h := g.holds[k]
		if h.Kind == "hold" && now.Before(h.Until) {
			st.Throttled = append(st.Throttled, State{Key: k, Scope: h.Scope, Reason: h.Reason, Since: h.Since, Until: h.Until})
		}
	}
	// No number can send when every known number is paused (and there is
	// at least one), or the default token is paused with no file.
	st.AllPaused = len(known) > 0 && paused == len(known)
	if _, ok := g.holds["pause:app"]; ok {
		st.AllPaused = true
	}
	if len(g.numbers.Listed()) == 0 && g.numbers.HasDefaultToken() {
		if _, ok := g.holds["pause:token:"+numbers.DefaultTokenEnv]; ok {
			st.AllPaused = true
		}
	}
	return st
}

func (g *Gate) publishMetrics() {
	if g.metrics == nil {
		return
	}
	st := g.Status()
	g.metrics.Paused.Reset()
	g.metrics.ThrottledNumber.Reset()
	for _, n := range g.known() {
		g.metrics.Paused.WithLabelValues(n.PhoneNumberID).Set(0)
	}
	for _, p := range st.Paused {
		g.metrics.Paused.WithLabelValues(p.PhoneNumberID).Set(1)
	}
	g.mu.RLock()
	for pn, r := range g.rates {
		g.metrics.Rate.WithLabelValues(pn).Set(r.rate)
		v := 0.0
		if r.rate < float64(r.mps)-0.01 {
			v = 1
		}
		g.metrics.ThrottledNumber.WithLabelValues(pn).Set(v)
	}
	g.mu.RUnlock()
	g.publishTemplateMetrics()
}

// publishTemplateMetrics sets the template and number quality gauges.
func (g *Gate) publishTemplateMetrics() {
	hm := g.metrics.Holds
	if hm == nil {
		return
	}
	ts, qs := g.Templates()
	hm.TemplateStatus.Reset()
	hm.TemplateQuality.Reset()
	hm.NumberQuality.Reset()
	for _, t := range ts {
		if t.Status != "" && t.Status != "APPROVED" {
			hm.TemplateStatus.WithLabelValues(t.Name, t.Language, t.Status).Set(1)
		}
		if t.Quality != "" {
			hm.TemplateQuality.WithLabelValues(t.Name, t.Language, t.Quality).Set(1)
		}
	}
	for _, q := range qs {
		hm.NumberQuality.WithLabelValues(q.DisplayPhoneNumber, q.Event, q.CurrentLimit).Set(1)
	}
}
