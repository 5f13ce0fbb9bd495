package fakegraph

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// liveRule is an installed rule with its counters; it survives the rebuilds
// of the snapshot, so a rule added over the control API keeps counting down.
type liveRule struct {
	Rule
	remaining atomic.Int64 // sends left when Times > 0
	matched   atomic.Int64
	// added says it came after the scenario (AddRules, the control API):
	// the lean mode answers those.
	added bool
}

// take reports whether the rule answers one more send, counting it down.
func (r *liveRule) take() bool {
	if r.Times == 0 {
		r.matched.Add(1)
		return true
	}
	for {
		n := r.remaining.Load()
		if n <= 0 {
			return false
		}
		if r.remaining.CompareAndSwap(n, n-1) {
			r.matched.Add(1)
			return true
		}
	}
}

func (r *liveRule) matches(s *Send, msgType string) bool {
	m := &r.Match
	return (m.To == "" || m.To == s.To) &&
		(m.PhoneNumberID == "" || m.PhoneNumberID == s.PhoneNumberID) &&
		(m.Template == "" || m.Template == s.Template) &&
		(m.JobID == "" || m.JobID == s.JobID) &&
		(m.Type == "" || m.Type == msgType) &&
		(m.API == "" || m.API == s.API)
}

// phoneInfo is a registry entry with its defaults filled in.
type phoneInfo struct {
	PhoneNumber
	displayDigits string
}

type templateInfo struct {
	Template
	language string
	id       string
	quality  string // set over the control API; "" before
}

// tokenInfo is what the simulator knows of one token.
type tokenInfo struct {
	expiresAt *time.Time
	revoked   bool
	scopes    []string
}

// TokenUpdate makes a token known, expiring or revoked; a token updated with
// neither is valid again.
type TokenUpdate struct {
	Token string `json:"token"`
	// ExpiresAt makes it expire (190, subcode 463) at that time.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Revoked invalidates it now (190, subcode 460).
	Revoked bool `json:"revoked,omitempty"`
	// Scopes debug_token reports; empty keeps the defaults.
	Scopes []string `json:"scopes,omitempty"`
}

// overrides are the changes made over the control API that outlive a
// scenario replacement (a reset drops them).
type overrides struct {
	tokens    map[string]TokenUpdate
	locked    map[string]bool // phone number or WABA id
	appUntil  time.Time
	wabaUntil map[string]time.Time
	// throughput is by phone number id; replaced, never changed in place,
	// since snapshots share it.
	throughput map[string]ThroughputUpdate
	// Account webhooks' changes (account.go), replaced like throughput:
	// template status and quality by name:language, a number's quality
	// rating by phone number id.
	templateStatus, templateQuality, numberQuality map[string]string
}

func newOverrides() overrides {
	return overrides{tokens: map[string]TokenUpdate{}, locked: map[string]bool{}, wabaUntil: map[string]time.Time{}}
}

// snapshot is the immutable view of the scenario and the overrides that the
// hot path reads through one atomic pointer.
type snapshot struct {
	scenario     Scenario // as installed, with the rules added since
	rules        []*liveRule
	addedRules   bool // a rule was added since the scenario: the lean mode steps aside
	random       []RandomFailure
	phones       map[string]*phoneInfo
	templates    map[string][]*templateInfo // by name
	templateList []*templateInfo            // in the scenario's order
	tokens       map[string]*tokenInfo
	anyToken     bool
	locked       map[string]bool
	appUntil     time.Time
	wabaUntil    map[string]time.Time
	throughput   map[string]ThroughputUpdate // see overrides

	// defaultPhones caches the entries made up for numbers when the
	// registry is empty, so the hot path does not build one per send.
	defaultPhones sync.Map // id → *phoneInfo
	defaultCount  atomic.Int64

	latency  Latency
	limits   Limits
	window   Window
	webhooks Webhooks
	app      App
}

var defaultScopes = []string{"whatsapp_business_management", "whatsapp_business_messaging", "public_profile"}

func buildSnapshot(sc *Scenario, rules []*liveRule, cfgTokens []string, ov *overrides, cfg *Config) *snapshot {
	sn := &snapshot{
		scenario:   *sc,
		rules:      rules,
		random:     sc.Random,
		phones:     map[string]*phoneInfo{},
		templates:  map[string][]*templateInfo{},
		tokens:     map[string]*tokenInfo{},
		locked:     map[string]bool{},
		appUntil:   ov.appUntil,
		wabaUntil:  ov.wabaUntil,
		throughput: ov.throughput,
		latency:    sc.Latency,
		limits:     sc.Limits,
		window:     sc.Window,
		webhooks:   sc.Webhooks,
		app:        sc.App,
	}
	for _, r := range rules {
		sn.addedRules = sn.addedRules || r.added
	}
	sn.scenario.Rules = make([]Rule, len(rules))
	for i, r := range rules {
		sn.scenario.Rules[i] = r.Rule
	}
	// Defaults of the limits.
	if sn.limits.Throughput.MPS <= 0 {
		sn.limits.Throughput.MPS = 80
	}
	if sn.limits.Pair.Every <= 0 {
		sn.limits.Pair.Every = Duration(6 * time.Second)
	}
	if sn.limits.Pair.Burst <= 0 {
		sn.limits.Pair.Burst = 3
	}
	if sn.limits.App.Per <= 0 {
		sn.limits.App.Per = Duration(time.Hour)
	}
	if sn.limits.WABA.Per <= 0 {
		sn.limits.WABA.Per = Duration(time.Hour)
	}
	if sn.window.Duration <= 0 {
		sn.window.Duration = Duration(24 * time.Hour)
	}
	for _, p := range sc.PhoneNumbers {
		pi := &phoneInfo{PhoneNumber: p}
		fillPhoneDefaults(&pi.PhoneNumber, sn.limits.Throughput.MPS)
		applyThroughput(&pi.PhoneNumber, sn.throughput)
		if len(p.AllowedRecipients) > 0 {
			pi.AllowedRecipients = make([]string, len(p.AllowedRecipients))
			for i, a := range p.AllowedRecipients {
				pi.AllowedRecipients[i] = recipientKey(a)
			}
		}
		if q, ok := ov.numberQuality[p.PhoneNumberID]; ok {
			pi.QualityRating = q
		}
		pi.displayDigits = digitsOnly(pi.DisplayPhoneNumber)
		sn.phones[p.PhoneNumberID] = pi
		if p.Locked {
			sn.locked[p.PhoneNumberID] = true
		}
	}
	for i, t := range sc.Templates {
		langs := t.Languages
		if t.Language != "" {
			langs = append([]string{t.Language}, langs...)
		}
		for j, l := range langs {
			ti := &templateInfo{Template: t, language: l, id: strconv.Itoa(880000000000000 + i*100 + j)}
			if ti.Status == "" {
				ti.Status = "APPROVED"
			}
			if ti.Category == "" {
				ti.Category = "UTILITY"
			}
			if st, ok := ov.templateStatus[t.Name+":"+l]; ok {
				ti.Status = st
			}
			ti.quality = ov.templateQuality[t.Name+":"+l]
			sn.templates[t.Name] = append(sn.templates[t.Name], ti)
			sn.templateList = append(sn.templateList, ti)
		}
	}
	for _, t := range cfgTokens {
		sn.tokens[t] = &tokenInfo{scopes: defaultScopes}
	}
	for _, t := range sc.Tokens {
		ti := &tokenInfo{expiresAt: t.ExpiresAt, scopes: t.Scopes}
		if len(ti.scopes) == 0 {
			ti.scopes = defaultScopes
		}
		sn.tokens[t.Token] = ti
	}
	sn.anyToken = len(sn.tokens) == 0
	for _, u := range ov.tokens {
		ti := &tokenInfo{expiresAt: u.ExpiresAt, revoked: u.Revoked, scopes: u.Scopes}
		if len(ti.scopes) == 0 {
			if old := sn.tokens[u.Token]; old != nil {
				ti.scopes = old.scopes
			} else {
				ti.scopes = defaultScopes
			}
		}
		sn.tokens[u.Token] = ti
	}
	for id, l := range ov.locked {
		if l {
			sn.locked[id] = true
		} else {
			delete(sn.locked, id)
		}
	}

	w := &sn.webhooks
	if w.URL == "" {
		w.URL = cfg.WebhookURL
	}
	if w.AppSecret == "" {
		w.AppSecret = cfg.AppSecret
	}
	if len(w.Statuses) == 0 {
		w.Statuses = []string{"sent", "delivered"}
	}
	if w.Duplicates <= 0 {
		w.Duplicates = 1
	}
	switch {
	case w.Retries == 0:
		w.Retries = 3
	case w.Retries < 0:
		w.Retries = 0
	}
	if w.RetryBackoff <= 0 {
		w.RetryBackoff = Duration(200 * time.Millisecond)
	}
	if w.Timeout <= 0 {
		w.Timeout = Duration(5 * time.Second)
	}
	if sn.app.ID == "" {
		sn.app.ID = DefaultAppID
	}
	if sn.app.Name == "" {
		sn.app.Name = "waq fakegraph"
	}
	return sn
}

func fillPhoneDefaults(p *PhoneNumber, defaultMPS int) {
	if p.WABAID == "" {
		p.WABAID = DefaultWABAID
	}
	if p.DisplayPhoneNumber == "" {
		id := p.PhoneNumberID
		if len(id) > 4 {
			id = id[len(id)-4:]
		}
		p.DisplayPhoneNumber = "+1 555-01" + strings.Repeat("0", 4-len(id)) + id
	}
	if p.VerifiedName == "" {
		p.VerifiedName = "waq Test Business"
	}
	if p.QualityRating == "" {
		p.QualityRating = "GREEN"
	}
	if p.Status == "" {
		p.Status = "CONNECTED"
	}
	if p.CodeVerificationStatus == "" {
		p.CodeVerificationStatus = "VERIFIED"
	}
	if p.NameStatus == "" {
		p.NameStatus = "APPROVED"
	}
	if p.MPS == 0 {
		p.MPS = defaultMPS
	}
	if p.ThroughputLevel == "" {
		p.ThroughputLevel = "STANDARD"
		if p.MPS > 80 {
			p.ThroughputLevel = "HIGH"
		}
	}
	if p.MessagingLimitTier == "" {
		p.MessagingLimitTier = "TIER_1K"
	}
}

// phone returns the registry entry of id, or a default one when the
// registry is empty; nil when the registry does not list id.
func (sn *snapshot) phone(id string) *phoneInfo {
	if p := sn.phones[id]; p != nil {
		return p
	}
	if len(sn.phones) > 0 {
		return nil
	}
	if v, ok := sn.defaultPhones.Load(id); ok {
		return v.(*phoneInfo)
	}
	p := &phoneInfo{PhoneNumber: PhoneNumber{PhoneNumberID: id}}
	fillPhoneDefaults(&p.PhoneNumber, sn.limits.Throughput.MPS)
	applyThroughput(&p.PhoneNumber, sn.throughput)
	p.displayDigits = digitsOnly(p.DisplayPhoneNumber)
	if n := sn.defaultCount.Add(1); n > maxDefaultPhones {
		return p // a test with endless numbers: do not grow without bound
	}
	v, _ := sn.defaultPhones.LoadOrStore(id, p)
	return v.(*phoneInfo)
}

const maxDefaultPhones = 10000

// wabaKnown reports whether id is a WABA of the registry (or the default
// one when the registry is empty).
func (sn *snapshot) wabaKnown(id string) bool {
	if len(sn.phones) == 0 {
		return id == DefaultWABAID
	}
	for _, p := range sn.phones {
		if p.WABAID == id {
			return true
		}
	}
	return false
}

// digitsOnly keeps the digits of a phone number: "+1 (555) 123-4567" →
// "15551234567".
func digitsOnly(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
