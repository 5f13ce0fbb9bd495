package fakegraph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
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
	pairs     sync.Map // phone number id + "|" + wa_id → *bucket
	appCalls  atomic.Pointer[callWindow]
	wabaCalls sync.Map // waba id → *callWindow
	windows   sync.Map // phone number id (or "*") + "|" + wa_id → time.Time

	hooks *hookRunner
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
	s.hooks.close()
	return nil
}

// install makes sc the scenario, with fresh rules. s.mu must be held or the
// server not yet shared.
func (s *Server) install(sc *Scenario) {
	s.current = sc.clone()
	s.current.Rules = nil
	s.rules = nil
	s.addRulesLocked(sc.Rules)
	now := s.now()
	for _, o := range sc.Window.Open {
		s.openWindow(o.PhoneNumberID, o.To, now)
	}
	s.rebuildLocked()
}

func (s *Server) addRulesLocked(rules []Rule) []string {
	names := make([]string, 0, len(rules))
	for _, r := range rules {
		s.ruleSeq++
		lr := &liveRule{Rule: r}
		if lr.Name == "" {
			lr.Name = "rule-" + strconv.Itoa(s.ruleSeq)
		}
		lr.Match.To = digitsOnly(lr.Match.To)
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
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.addRulesLocked(rules)
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

// Inbound simulates a message from a customer: it opens the customer's
// 24-hour window with phoneNumberID ("" opens it with every number) and,
// when webhooks are on and phoneNumberID is given, sends the message's
// webhook.
func (s *Server) Inbound(phoneNumberID, from, text string) error {
	if !phoneLike(from) {
		return errString("from must be a phone number with its country code")
	}
	s.openWindow(phoneNumberID, from, s.now())
	if phoneNumberID != "" {
		sn := s.snap.Load()
		if text == "" {
			text = "Hi"
		}
		s.hooks.inbound(sn, sn.phone(phoneNumberID), digitsOnly(from), text)
	}
	return nil
}

func (s *Server) openWindow(phoneNumberID, to string, at time.Time) {
	if phoneNumberID == "" {
		phoneNumberID = "*"
	}
	s.windows.Store(phoneNumberID+"|"+digitsOnly(to), at)
}

func (s *Server) windowOpen(sn *snapshot, phoneNumberID, waID string, now time.Time) bool {
	d := sn.window.Duration.D()
	for _, k := range [2]string{phoneNumberID + "|" + waID, "*|" + waID} {
		if v, ok := s.windows.Load(k); ok && now.Sub(v.(time.Time)) < d {
			return true
		}
	}
	return false
}

type errString string

func (e errString) Error() string { return string(e) }

// ServeHTTP routes the Graph API endpoints and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/_fake/") || p == "/_fake" {
		s.control(w, r)
		return
	}
	version, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	node, edge, _ := strings.Cut(rest, "/")
	if !validVersion(version) || node == "" || strings.Contains(edge, "/") {
		s.writeGraphError(w, r, unknownPath(p))
		return
	}
	switch {
	case edge == "messages":
		if r.Method != http.MethodPost {
			s.writeGraphError(w, r, unsupported(r.Method, node))
			return
		}
		s.messages(w, r, node)
	case edge == "message_templates" && r.Method == http.MethodGet:
		s.readTemplates(w, r, node)
	case edge == "" && node == "debug_token" && r.Method == http.MethodGet:
		s.readDebugToken(w, r)
	case edge == "" && r.Method == http.MethodGet:
		s.readNode(w, r, node)
	case edge == "" || edge == "message_templates":
		s.writeGraphError(w, r, unsupported(r.Method, node))
	default:
		s.writeGraphError(w, r, unknownPath(p))
	}
}

func validVersion(v string) bool {
	if len(v) < 4 || v[0] != 'v' {
		return false
	}
	dot := strings.IndexByte(v, '.')
	if dot < 2 || dot == len(v)-1 {
		return false
	}
	for i := 1; i < len(v); i++ {
		if i != dot && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return true
}

// messageBody is the part of a message object the simulator checks.
type messageBody struct {
	MessagingProduct *string `json:"messaging_product"`
	RecipientType    string  `json:"recipient_type"`
	To               *string `json:"to"`
	Type             *string `json:"type"`
	Text             *struct {
		Body *string `json:"body"`
	} `json:"text"`
	Template    *templateBody `json:"template"`
	Image       present       `json:"image"`
	Audio       present       `json:"audio"`
	Video       present       `json:"video"`
	Document    present       `json:"document"`
	Sticker     present       `json:"sticker"`
	Location    present       `json:"location"`
	Contacts    present       `json:"contacts"`
	Interactive present       `json:"interactive"`
	Reaction    present       `json:"reaction"`
}

type templateBody struct {
	Name     *string `json:"name"`
	Language *struct {
		Code   string `json:"code"`
		Policy string `json:"policy"`
	} `json:"language"`
	Components []struct {
		Type       string `json:"type"`
		Parameters count  `json:"parameters"`
	} `json:"components"`
}

var messageTypes = []string{"audio", "contacts", "document", "image", "interactive", "location", "reaction", "sticker", "template", "text", "video"}

// decision is what the simulator answers one send.
type decision struct {
	resp  *Response // a scripted answer; nil for the simulator's own
	err   *errSpec  // the simulator's own error; nil with resp nil is a success
	usage []header  // rate-limit headers
	waID  string
	input string // "to" as the request gave it
	phone *phoneInfo
	// async is a failure to report by webhook after accepting.
	async *AsyncFailure
}

type header struct{ k, v string }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// messages serves POST /{version}/{phone_number_id}/messages.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, phoneID string) {
	sn := s.snap.Load()
	now := s.now()
	send := Send{Time: now, PhoneNumberID: phoneID, JobID: r.Header.Get("X-Waq-Job-Id")}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	n, rerr := buf.ReadFrom(io.LimitReader(r.Body, s.maxBody+1))
	body := buf.Bytes()
	if send.JobID == "" {
		sum := sha256.Sum256(body)
		send.JobID = "body:" + hex.EncodeToString(sum[:8])
	}
	d := s.decide(sn, r, &send, body, n > s.maxBody || rerr != nil, now)
	if buf.Cap() <= 64<<10 {
		bufPool.Put(buf)
	}
	if d.resp != nil {
		s.writeScripted(w, r, sn, &send, &d)
	} else {
		s.wait(r.Context(), sn.latency.delay())
		if d.err != nil {
			d.err.headers = append(d.err.headers, d.usage...)
			s.writeError(w, &send, d.err)
		} else {
			s.writeAccept(w, &send, &d)
		}
	}
	s.stats.record(&send)
	if s.cfg.OnSend != nil {
		s.cfg.OnSend(send)
	}
	if send.Outcome == OutcomeAccepted {
		s.hooks.accepted(sn, &send, d.phone, d.async)
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("send", "job_id", send.JobID, "phone_number_id", send.PhoneNumberID,
			"outcome", send.Outcome, "code", send.Code, "http_status", send.HTTPStatus, "rule", send.Rule)
	}
}

// decide checks a send the way Meta does: token, phone number, body, then
// the scripted rules and random failures, then the account, the limits, the
// recipient, the template and the window.
func (s *Server) decide(sn *snapshot, r *http.Request, send *Send, body []byte, tooLarge bool, now time.Time) decision {
	var d decision
	if e := sn.checkToken(bearer(r), now); e != nil {
		d.err = e
		return d
	}
	d.phone = sn.phone(send.PhoneNumberID)
	if d.phone == nil {
		d.err = unknownObject("post", send.PhoneNumberID)
		return d
	}
	if tooLarge {
		d.err = invalidParam("(#100) The request body is too large.", "The request body is larger than the simulator's bound of "+strconv.FormatInt(s.maxBody, 10)+" bytes.")
		return d
	}
	var msg messageBody
	if err := json.Unmarshal(body, &msg); err != nil {
		d.err = invalidParam("(#100) Invalid parameter", "The request body is not a valid JSON object: "+err.Error())
		return d
	}
	msgType, e := checkMessage(&msg)
	if e != nil {
		if msg.To != nil {
			send.To = *msg.To
		}
		d.err = e
		return d
	}
	d.input = *msg.To
	d.waID = digitsOnly(d.input)
	send.To = d.waID
	send.Type = msgType
	if msg.Template != nil {
		send.Template = *msg.Template.Name
	}

	for _, lr := range sn.rules {
		if lr.matches(send, msgType) && lr.take() {
			send.Rule = lr.Name
			d.resp = &lr.Respond
			d.async = lr.Respond.Async
			return d
		}
	}
	if len(sn.random) > 0 {
		u, cum := rand.Float64(), 0.0
		for i := range sn.random {
			f := &sn.random[i]
			if f.PhoneNumberID != "" && f.PhoneNumberID != send.PhoneNumberID {
				continue
			}
			cum += f.Rate
			if u < cum {
				send.Rule = "random-" + strconv.Itoa(i+1)
				d.resp = &f.Respond
				d.async = f.Respond.Async
				return d
			}
		}
	}

	if sn.locked[send.PhoneNumberID] || sn.locked[d.phone.WABAID] {
		d.err = codeError(131031)
		return d
	}
	if e := s.checkLimits(sn, send, &d, now); e != nil {
		d.err = e
		return d
	}
	if d.phone.displayDigits != "" && d.phone.displayDigits == d.waID && len(sn.phones) > 0 {
		d.err = codeError(131021)
		return d
	}
	if msg.Template != nil && len(sn.templates) > 0 {
		if e := sn.checkTemplate(msg.Template, d.phone.WABAID); e != nil {
			d.err = e
			return d
		}
	}
	if sn.window.Enforce && msgType != "template" && !s.windowOpen(sn, send.PhoneNumberID, d.waID, now) {
		if sn.window.Async && sn.webhooks.URL != "" {
			d.async = &AsyncFailure{Error: Code(131047)}
			send.Rule = "window"
		} else {
			d.err = codeError(131047)
		}
	}
	return d
}

// checkLimits applies the app, WABA, throughput and pair limits.
func (s *Server) checkLimits(sn *snapshot, send *Send, d *decision, now time.Time) *errSpec {
	l := &sn.limits
	waba := d.phone.WABAID
	if now.Before(sn.appUntil) {
		e := codeError(4)
		e.headers = append(e.headers, header{"X-App-Usage", appUsageHeader(100)})
		return e
	}
	if until, ok := sn.wabaUntil[waba]; ok && now.Before(until) {
		e := codeError(80007)
		e.headers = append(e.headers, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, 100, until.Sub(now))})
		return e
	}
	if l.App.Calls > 0 {
		u, ok := s.appCalls.Load().take(now, l.App)
		if !ok {
			e := codeError(4)
			e.headers = append(e.headers, header{"X-App-Usage", appUsageHeader(u.pct)})
			return e
		}
		if l.UsageHeaders {
			d.usage = append(d.usage, header{"X-App-Usage", appUsageHeader(u.pct)})
		}
	} else if l.UsageHeaders {
		d.usage = append(d.usage, header{"X-App-Usage", appUsageHeader(0)})
	}
	if l.WABA.Calls > 0 {
		v, ok := s.wabaCalls.Load(waba)
		if !ok {
			v, _ = s.wabaCalls.LoadOrStore(waba, &callWindow{})
		}
		u, ok := v.(*callWindow).take(now, l.WABA)
		if !ok {
			e := codeError(80007)
			e.headers = append(e.headers, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, u.pct, u.regain)})
			return e
		}
		if l.UsageHeaders {
			d.usage = append(d.usage, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, u.pct, 0)})
		}
	} else if l.UsageHeaders {
		d.usage = append(d.usage, header{"X-Business-Use-Case-Usage", bucUsageHeader(waba, 0, 0)})
	}
	if l.Throughput.Enabled {
		mps := d.phone.MPS
		burst := l.Throughput.Burst
		if burst <= 0 {
			burst = max(1, mps/4)
		}
		v, ok := s.buckets.Load(send.PhoneNumberID)
		if !ok {
			v, _ = s.buckets.LoadOrStore(send.PhoneNumberID, &bucket{})
		}
		if !v.(*bucket).take(now, float64(mps), float64(burst)) {
			return codeError(130429)
		}
	}
	if l.Pair.Enabled {
		key := send.PhoneNumberID + "|" + d.waID
		v, ok := s.pairs.Load(key)
		if !ok {
			v, _ = s.pairs.LoadOrStore(key, &bucket{})
		}
		if !v.(*bucket).take(now, 1/l.Pair.Every.D().Seconds(), float64(l.Pair.Burst)) {
			return codeError(131056)
		}
	}
	return nil
}

// checkMessage validates a message object the way the messages endpoint
// does and returns its type.
func checkMessage(m *messageBody) (string, *errSpec) {
	if m.MessagingProduct == nil || *m.MessagingProduct == "" {
		return "", invalidParam("(#100) The parameter messaging_product is required.", "The parameter messaging_product is required.")
	}
	if *m.MessagingProduct != "whatsapp" {
		return "", invalidParam("(#100) Param messaging_product must be one of {WHATSAPP} - got \""+*m.MessagingProduct+"\".",
			"messaging_product must be \"whatsapp\".")
	}
	if m.RecipientType != "" && m.RecipientType != "individual" && m.RecipientType != "group" {
		return "", invalidParam("(#100) Param recipient_type must be one of {INDIVIDUAL, GROUP} - got \""+m.RecipientType+"\".",
			"recipient_type must be \"individual\".")
	}
	if m.To == nil || *m.To == "" {
		return "", invalidParam("(#100) The parameter to is required.", "The parameter to is required.")
	}
	if !phoneLike(*m.To) {
		return "", invalidParam("(#100) Invalid parameter", "Param to must be a phone number with its country code, got \""+*m.To+"\".")
	}
	t := "text" // Meta's default when type is left out
	if m.Type != nil {
		t = *m.Type
	}
	var present bool
	switch t {
	case "text":
		if m.Text == nil || m.Text.Body == nil {
			return "", invalidParam("(#100) The parameter text['body'] is required.", "The parameter text['body'] is required.")
		}
		if *m.Text.Body == "" {
			return "", invalidParam("(#100) Param text['body'] must be at least 1 characters long.", "text['body'] must not be empty.")
		}
		if len(*m.Text.Body) > 4096 {
			return "", invalidParam("(#100) Param text['body'] must be at most 4096 characters long.", "text['body'] must be at most 4096 characters long.")
		}
		return t, nil
	case "template":
		tb := m.Template
		if tb == nil {
			return "", invalidParam("(#100) The parameter template is required.", "The parameter template is required.")
		}
		if tb.Name == nil || *tb.Name == "" {
			return "", invalidParam("(#100) The parameter template['name'] is required.", "The parameter template['name'] is required.")
		}
		if tb.Language == nil || tb.Language.Code == "" {
			return "", invalidParam("(#100) The parameter template['language'] is required.", "The parameter template['language']['code'] is required.")
		}
		return t, nil
	case "image":
		present = bool(m.Image)
	case "audio":
		present = bool(m.Audio)
	case "video":
		present = bool(m.Video)
	case "document":
		present = bool(m.Document)
	case "sticker":
		present = bool(m.Sticker)
	case "location":
		present = bool(m.Location)
	case "contacts":
		present = bool(m.Contacts)
	case "interactive":
		present = bool(m.Interactive)
	case "reaction":
		present = bool(m.Reaction)
	default:
		return "", invalidParam("(#100) Param type must be one of {"+strings.ToUpper(strings.Join(messageTypes, ", "))+"} - got \""+t+"\".",
			"The message type \""+t+"\" is not supported.")
	}
	if !present {
		return "", invalidParam("(#100) The parameter "+t+" is required.", "The parameter "+t+" is required for a message of type "+t+".")
	}
	return t, nil
}

// present records that a JSON value other than null was given, without
// keeping it.
type present bool

func (p *present) UnmarshalJSON(b []byte) error {
	*p = present(!bytes.Equal(b, []byte("null")))
	return nil
}

// count is the length of a JSON array, counted without decoding it.
type count int

func (c *count) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*c = 0
		return nil
	}
	if len(b) < 2 || b[0] != '[' {
		return errString("want an array")
	}
	n, depth, inString, empty := 0, 0, false, true
	for i := 1; i < len(b)-1; i++ {
		ch := b[i]
		switch {
		case inString:
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inString = false
			}
		case ch == '"':
			inString, empty = true, false
		case ch == '[' || ch == '{':
			depth++
			empty = false
		case ch == ']' || ch == '}':
			depth--
		case ch == ',' && depth == 0:
			n++
		case ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r':
			empty = false
		}
	}
	if !empty {
		n++
	}
	*c = count(n)
	return nil
}

// phoneLike accepts what Meta accepts in "to": digits, optionally with a
// leading +, spaces, dashes, dots and parentheses, 5 to 20 digits.
func phoneLike(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == '+' && i == 0, c == ' ', c == '-', c == '.', c == '(', c == ')':
		default:
			return false
		}
	}
	return n >= 5 && n <= 20
}

// checkTemplate checks a template send against the templates that exist.
func (sn *snapshot) checkTemplate(tb *templateBody, waba string) *errSpec {
	name, lang := *tb.Name, tb.Language.Code
	var t *templateInfo
	for _, ti := range sn.templates[name] {
		if ti.language == lang && (ti.WABAID == "" || ti.WABAID == waba) {
			t = ti
			break
		}
	}
	if t == nil {
		e := codeError(132001)
		e.details = "template name (" + name + ") does not exist in " + lang
		e.userMsg = e.details
		return e
	}
	switch t.Status {
	case "APPROVED":
	case "PAUSED":
		e := codeError(132015)
		e.details = "Template " + name + " is paused due to low quality and cannot be sent."
		return e
	case "DISABLED":
		e := codeError(132016)
		e.details = "Template " + name + " has been paused too many times due to low quality and is now permanently disabled."
		return e
	default:
		e := codeError(132001)
		e.details = "template name (" + name + ") does not exist in " + lang + " (status " + t.Status + ")"
		e.userMsg = e.details
		return e
	}
	got := 0
	for _, c := range tb.Components {
		if strings.EqualFold(c.Type, "body") {
			got += int(c.Parameters)
		}
	}
	if got != t.BodyParams {
		e := codeError(132000)
		e.details = "body: number of localizable_params (" + strconv.Itoa(got) + ") does not match the expected number of params (" + strconv.Itoa(t.BodyParams) + ")"
		e.userMsg = e.details
		return e
	}
	return nil
}

// bearer is the access token of a request: the Authorization header
// ("Bearer T" or "OAuth T") or the access_token query parameter.
func bearer(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if r.URL.RawQuery != "" {
		return r.URL.Query().Get("access_token")
	}
	return ""
}

// pst is the zone Meta writes token expiry messages in.
var pst = time.FixedZone("PST", -8*60*60)

// checkToken answers a token the way the Graph API does: 104 without one,
// 190 for one it cannot parse, 190/463 for an expired one, 190/460 for a
// revoked one.
func (sn *snapshot) checkToken(tok string, now time.Time) *errSpec {
	if tok == "" {
		e := codeError(104)
		e.noData = true
		return e
	}
	ti := sn.tokens[tok]
	if ti == nil {
		if sn.anyToken {
			return nil
		}
		return invalidToken()
	}
	if ti.revoked {
		e := codeError(190)
		e.subcode = 460
		e.message = "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
		e.details = "The access token has been invalidated."
		e.noData = true
		return e
	}
	if ti.expiresAt != nil && !now.Before(*ti.expiresAt) {
		e := codeError(190)
		e.message = expiredMessage(*ti.expiresAt, now)
		e.noData = true
		return e
	}
	return nil
}

func expiredMessage(at, now time.Time) string {
	const layout = "Monday, 02-Jan-06 15:04:05 MST"
	return "Error validating access token: Session has expired on " + at.In(pst).Format(layout) +
		". The current time is " + now.In(pst).Format(layout) + "."
}

func invalidToken() *errSpec {
	e := codeError(190)
	e.subcode = 0
	e.message = "Invalid OAuth access token - Cannot parse access token"
	e.details = "The access token could not be decrypted."
	e.noData = true
	return e
}

// wait sleeps d unless ctx ends first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.hooks.done:
		return false
	}
}

func (l Latency) delay() time.Duration {
	d := l.Base.D()
	if l.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(l.Jitter)))
	}
	return d
}
