package fakegraph

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. The zero value accepts any non-empty token and
// every well-formed send.
type Config struct {
	// Tokens are accepted access tokens, besides the scenario's. With none
	// here nor in the scenario, any non-empty token is accepted.
	Tokens []string
	// Scenario is the initial scenario, restored by a reset. Defaults to the
	// empty scenario.
	Scenario *Scenario
	// Now is the clock of token expiry, limits and windows. Defaults to
	// time.Now. Latency and webhook delays use real time.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// WebhookURL receives status webhooks unless the scenario names one.
	WebhookURL string
	// AppSecret signs webhooks unless the scenario gives one.
	AppSecret string
	// SendsLog is how many recent sends GET /_fake/sends keeps. Defaults to
	// 1000; negative keeps none.
	SendsLog int
	// MaxBody bounds a request body. Defaults to 1 MiB.
	MaxBody int64
	// HTTPClient delivers webhooks. Defaults to a client with keep-alive.
	HTTPClient *http.Client
	// OnSend, when set, is called with every request to the messages
	// endpoint once it is answered (see onsend.go).
	OnSend func(Send)
	// Fast is the lean mode (see fast.go): a well-formed send is accepted
	// with almost no CPU spent on it, its body read only for "to", without
	// the scenario's random failures, limits, windows, templates, webhooks
	// or per-job counts; only latency still applies, and while there are
	// rules added (AddRules) every send takes the full path. Anything it
	// cannot accept so (no or a wrong token, an unknown number, no "to") goes
	// through the full checks and gets Meta's error. Defaults to false.
	Fast bool
}

// Server is the simulator: an http.Handler for the Graph API endpoints and
// the control API under /_fake/. Close stops its webhook deliveries.
type Server struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	maxBody int64
	stats   *stats

	mu      sync.Mutex // serializes changes of the scenario and overrides
	initial Scenario
	current Scenario // without its rules: they live in rules
	rules   []*liveRule
	ruleSeq int
	ov      overrides
	snap    atomic.Pointer[snapshot]

	buckets   sync.Map // phone number id → *bucket
	rates     sync.Map // phone number id → *slidingWindow (strict throughput)
	pairs     sync.Map // phone number id + "|" + wa_id → *bucket
	appCalls  atomic.Pointer[callWindow]
	wabaCalls sync.Map // waba id → *callWindow
	windows   sync.Map // phone number id (or "*") + "|" + wa_id → time.Time

	hooks *hookRunner
	// eventTimers send the scenario's account events; eventGen counts the
	// scenarios installed, so that a replaced one's events are not sent.
	eventTimers []*time.Timer
	eventGen    atomic.Int64
}

// New returns a simulator configured by cfg.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, now: cfg.Now, log: cfg.Logger, maxBody: cfg.MaxBody}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	ring := cfg.SendsLog
	if ring == 0 {
		ring = 1000
	}
	if ring < 0 {
		ring = 0
	}
	s.stats = newStats(ring)
	if cfg.Scenario != nil {
		s.initial = cfg.Scenario.clone()
	}
	s.ov = newOverrides()
	s.appCalls.Store(&callWindow{})
	s.hooks = newHookRunner(s)
	s.install(&s.initial)
	return s
}

// Close stops the webhook deliveries in flight and waits for them. The
// handler keeps answering; call Close after the HTTP server is shut down.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopAccountEvents()
	s.mu.Unlock()
	s.hooks.close()
	return nil
}

// install makes sc the scenario, with fresh rules. s.mu must be held or the
// server not yet shared.
func (s *Server) install(sc *Scenario) {
	s.current = sc.clone()
	s.current.Rules = nil
	s.rules = nil
	s.addRulesLocked(sc.Rules, false)
	now := s.now()
	for _, o := range sc.Window.Open {
		s.openWindow(o.PhoneNumberID, o.To, now)
	}
	s.rebuildLocked()
	s.startAccountEvents(sc)
}

func (s *Server) addRulesLocked(rules []Rule, added bool) []string {
	names := make([]string, 0, len(rules))
	for _, r := range rules {
		s.ruleSeq++
		lr := &liveRule{Rule: r, added: added}
		if lr.Name == "" {
			lr.Name = "rule-" + strconv.Itoa(s.ruleSeq)
		}
		lr.Match.To = recipientKey(lr.Match.To)
		lr.remaining.Store(int64(r.Times))
		s.rules = append(s.rules, lr)
		names = append(names, lr.Name)
	}
	return names
}

func (s *Server) rebuildLocked() {
	rules := append([]*liveRule(nil), s.rules...)
	s.snap.Store(buildSnapshot(&s.current, rules, s.cfg.Tokens, &s.ov, &s.cfg))
}

// SetScenario replaces the scenario: its rules start counting afresh, its
// windows open now. Changes made over the control API (tokens, locks,
// blocks, windows) stay until Reset.
func (s *Server) SetScenario(sc *Scenario) error {
	if err := sc.validate(); err != nil {
		return &ScenarioError{Msg: err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets.Clear()
	s.rates.Clear()
	s.pairs.Clear()
	s.install(sc)
	return nil
}

// Scenario returns the scenario in force, with the rules added since it was
// installed.
func (s *Server) Scenario() Scenario {
	return s.snap.Load().scenario
}

// AddRules appends rules after those in force and returns their names.
func (s *Server) AddRules(rules ...Rule) ([]string, error) {
	for i := range rules {
		if rules[i].Times < 0 {
			return nil, &ScenarioError{Msg: errAt("times must not be negative", "rules", i, "times").Error()}
		}
		if err := rules[i].Respond.validate("rules", i, "respond"); err != nil {
			return nil, &ScenarioError{Msg: err.Error()}
		}
		if err := rules[i].Match.validate("rules", i, "match"); err != nil {
			return nil, &ScenarioError{Msg: err.Error()}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.addRulesLocked(rules, true)
	s.rebuildLocked()
	return names, nil
}

// ClearRules removes every rule.
func (s *Server) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
	s.rebuildLocked()
}

// Reset clears the counters, the sends log, the pending webhooks and every
// change made since the start, and installs the initial scenario again.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.reset()
	s.hooks.reset()
	s.ov = newOverrides()
	s.buckets.Clear()
	s.rates.Clear()
	s.pairs.Clear()
	s.appCalls.Store(&callWindow{})
	s.wabaCalls.Clear()
	s.windows.Clear()
	s.install(&s.initial)
}

// Stats returns the counters; allJobs adds the count of every job id.
func (s *Server) Stats(allJobs bool) Stats {
	st := s.stats.snapshot(allJobs)
	for _, r := range s.snap.Load().rules {
		rem := int64(-1)
		if r.Times > 0 {
			rem = r.remaining.Load()
		}
		st.Rules = append(st.Rules, RuleStats{Name: r.Name, Matched: r.matched.Load(), Remaining: rem})
	}
	st.Webhooks = s.hooks.stats()
	return st
}

// Sends returns up to limit of the latest sends (all kept when limit <= 0),
// oldest first.
func (s *Server) Sends(limit int) []Send { return s.stats.recent(limit) }

// Job returns what the simulator saw of one job id; false when it saw none.
func (s *Server) Job(id string) (JobStats, bool) { return s.stats.job(id) }

// SetToken makes a token known, expiring, revoked, or valid again.
func (s *Server) SetToken(u TokenUpdate) error {
	if u.Token == "" {
		return errString("token must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.tokens[u.Token] = u
	s.rebuildLocked()
	return nil
}

// SetLocked locks (131031) or unlocks a phone number or a whole WABA.
func (s *Server) SetLocked(id string, locked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.locked[id] = locked
	s.rebuildLocked()
}

// BlockApp makes every call fail with code 4 for d (0 lifts the block).
func (s *Server) BlockApp(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.appUntil = time.Time{}
	if d > 0 {
		s.ov.appUntil = s.now().Add(d)
	}
	s.rebuildLocked()
}

// BlockWABA makes every send of a WABA fail with code 80007 for d (0 lifts
// the block).
func (s *Server) BlockWABA(waba string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]time.Time, len(s.ov.wabaUntil)+1)
	for k, v := range s.ov.wabaUntil {
		m[k] = v
	}
	delete(m, waba)
	if d > 0 {
		m[waba] = s.now().Add(d)
	}
	s.ov.wabaUntil = m
	s.rebuildLocked()
}

type errString string

func (e errString) Error() string { return string(e) }
