package fakegraph

import (
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"
)

// Account webhooks: changes to a template, a number or a WABA made over the
// control API (or a scenario's account_events) change what sends get, as
// at Meta, and send the webhook Meta sends for them, to the scenario's
// webhook URL, signed like the status webhooks. Field names follow Meta's
// webhook reference (2026).

// TemplateUpdate changes one template in one language: its status
// (message_template_status_update) or its quality
// (message_template_quality_update), one of the two.
type TemplateUpdate struct {
	// Status is APPROVED, PAUSED, DISABLED, REJECTED, PENDING_DELETION,
	// DELETED, REINSTATED, FLAGGED, IN_APPEAL, ... A send of a template
	// that is not APPROVED fails as at Meta (132015, 132016, 132001).
	Status string `json:"status,omitempty" yaml:"status,omitempty"`
	// Quality is GREEN, YELLOW, RED or UNKNOWN.
	Quality string `json:"quality,omitempty" yaml:"quality,omitempty"`
	// Reason is the webhook's reason (NONE by default); Title and
	// Description its other_info (FIRST_PAUSE, "... paused for 3 hours").
	Reason      string `json:"reason,omitempty" yaml:"reason,omitempty"`
	Title       string `json:"title,omitempty" yaml:"title,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// NumberUpdate is a phone_number_quality_update of one business number.
type NumberUpdate struct {
	// Event is FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, ONBOARDING or
	// THROUGHPUT_UPGRADE. FLAGGED makes the number's quality_rating RED,
	// UNFLAGGED GREEN.
	Event        string `json:"event" yaml:"event"`
	CurrentLimit string `json:"current_limit,omitempty" yaml:"current_limit,omitempty"`
	OldLimit     string `json:"old_limit,omitempty" yaml:"old_limit,omitempty"`
}

// AccountUpdate is an account_update of one WABA.
type AccountUpdate struct {
	// Event is ACCOUNT_RESTRICTION, DISABLED_UPDATE, ACCOUNT_VIOLATION,
	// ACCOUNT_DELETED, ...
	Event string `json:"event" yaml:"event"`
	// Restrictions is restriction_info: a *_INITIATED_MESSAGING one makes
	// every send of the WABA fail with 131031 until an ACCOUNT_RESTRICTION
	// without one.
	Restrictions []Restriction `json:"restriction_info,omitempty" yaml:"restriction_info,omitempty"`
	// BanState is ban_info.waba_ban_state of DISABLED_UPDATE: DISABLE
	// (sends fail with 131031), REINSTATE, SCHEDULE_FOR_DISABLE.
	BanState      string `json:"ban_state,omitempty" yaml:"ban_state,omitempty"`
	ViolationType string `json:"violation_type,omitempty" yaml:"violation_type,omitempty"`
}

// Restriction is one entry of restriction_info.
type Restriction struct {
	Type       string `json:"restriction_type" yaml:"restriction_type"`
	Expiration string `json:"expiration,omitempty" yaml:"expiration,omitempty"`
}

var (
	templateEvents = []string{"APPROVED", "PAUSED", "DISABLED", "REJECTED", "PENDING_DELETION", "DELETED", "REINSTATED",
		"FLAGGED", "IN_APPEAL", "PENDING", "ARCHIVED", "UNARCHIVED", "LOCKED", "UNLOCKED", "LIMIT_EXCEEDED"}
	templateQualities = []string{"GREEN", "YELLOW", "RED", "UNKNOWN"}
	numberEvents      = []string{"FLAGGED", "UNFLAGGED", "DOWNGRADE", "UPGRADE", "ONBOARDING", "THROUGHPUT_UPGRADE"}
	accountEvents     = []string{"ACCOUNT_RESTRICTION", "DISABLED_UPDATE", "ACCOUNT_VIOLATION", "ACCOUNT_DELETED", "ACCOUNT_OFFBOARDED", "ACCOUNT_RECONNECTED"}
	banStates         = []string{"DISABLE", "REINSTATE", "SCHEDULE_FOR_DISABLE"}
)

// check says what is wrong with u: the field and the problem ("" when
// nothing is). The control API and a scenario's account_events share it.
func (u TemplateUpdate) check() (field, msg string) {
	switch {
	case (u.Status == "") == (u.Quality == ""):
		return "", "give one of status and quality"
	case u.Status != "" && !oneOf(u.Status, templateEvents):
		return "status", "status " + strconv.Quote(u.Status) + ": want one of " + strings.Join(templateEvents, ", ")
	case u.Quality != "" && !oneOf(u.Quality, templateQualities):
		return "quality", "quality " + strconv.Quote(u.Quality) + ": want GREEN, YELLOW, RED or UNKNOWN"
	}
	return "", ""
}

func (u NumberUpdate) check() (field, msg string) {
	if !oneOf(u.Event, numberEvents) {
		return "event", "event " + strconv.Quote(u.Event) + ": want one of " + strings.Join(numberEvents, ", ")
	}
	return "", ""
}

func (u AccountUpdate) check() (field, msg string) {
	switch {
	case !oneOf(u.Event, accountEvents):
		return "event", "event " + strconv.Quote(u.Event) + ": want one of " + strings.Join(accountEvents, ", ")
	case u.BanState != "" && !oneOf(u.BanState, banStates):
		return "ban_state", "ban_state " + strconv.Quote(u.BanState) + ": want DISABLE, REINSTATE or SCHEDULE_FOR_DISABLE"
	case (u.Event == "DISABLED_UPDATE") != (u.BanState != ""):
		return "ban_state", "ban_state goes with DISABLED_UPDATE, and only with it"
	}
	for _, r := range u.Restrictions {
		if r.Type == "" {
			return "restriction_info", "a restriction needs its restriction_type"
		}
	}
	return "", ""
}

// UpdateTemplate changes a template's status or quality and sends the
// webhook. The template must exist in the scenario.
func (s *Server) UpdateTemplate(name, lang string, u TemplateUpdate) error {
	if _, msg := u.check(); msg != "" {
		return errString(msg)
	}
	s.mu.Lock()
	var t *templateInfo
	for _, ti := range s.snap.Load().templates[name] {
		if ti.language == lang {
			t = ti
			break
		}
	}
	if t == nil {
		s.mu.Unlock()
		return errString("no template " + strconv.Quote(name) + " in language " + strconv.Quote(lang) + " in the scenario")
	}
	waba, id, category, prevQuality := t.WABAID, t.id, t.Category, t.quality
	if u.Status != "" {
		m := maps.Clone(s.ov.templateStatus)
		if m == nil {
			m = map[string]string{}
		}
		status := u.Status
		if status == "REINSTATED" || status == "UNARCHIVED" || status == "UNLOCKED" {
			status = "APPROVED"
		}
		if status == "APPROVED" || status == "PAUSED" || status == "DISABLED" || status == "REJECTED" || status == "PENDING_DELETION" || status == "DELETED" {
			m[name+":"+lang] = status
		}
		s.ov.templateStatus = m
	} else {
		m := maps.Clone(s.ov.templateQuality)
		if m == nil {
			m = map[string]string{}
		}
		m[name+":"+lang] = u.Quality
		s.ov.templateQuality = m
	}
	s.rebuildLocked()
	sn := s.snap.Load()
	s.mu.Unlock()
	if waba == "" {
		waba = DefaultWABAID
	}
	tid, _ := strconv.ParseInt(id, 10, 64)
	v := map[string]any{"message_template_id": tid, "message_template_name": name, "message_template_language": lang}
	field := "message_template_status_update"
	if u.Status != "" {
		reason := u.Reason
		if reason == "" {
			reason = "NONE"
		}
		v["event"], v["reason"], v["message_template_category"] = u.Status, reason, category
		if u.Status == "PENDING_DELETION" {
			v["reason"] = nil
		}
		if u.Title != "" || u.Description != "" {
			v["other_info"] = map[string]string{"title": u.Title, "description": u.Description}
		}
		if u.Status == "DISABLED" {
			v["disable_info"] = map[string]int64{"disable_date": s.now().Unix()}
		}
	} else {
		field = "message_template_quality_update"
		if prevQuality == "" {
			prevQuality = "GREEN"
		}
		v["previous_quality_score"], v["new_quality_score"] = prevQuality, u.Quality
	}
	s.hooks.account(sn, waba, field, v)
	return nil
}

// UpdateNumber sends a phone_number_quality_update for a number of the
// scenario; FLAGGED and UNFLAGGED change its quality_rating too.
func (s *Server) UpdateNumber(phoneNumberID string, u NumberUpdate) error {
	if _, msg := u.check(); msg != "" {
		return errString(msg)
	}
	s.mu.Lock()
	p := s.snap.Load().phones[phoneNumberID]
	if p == nil {
		s.mu.Unlock()
		return errString("no phone number " + strconv.Quote(phoneNumberID) + " in the scenario")
	}
	if u.Event == "FLAGGED" || u.Event == "UNFLAGGED" {
		m := maps.Clone(s.ov.numberQuality)
		if m == nil {
			m = map[string]string{}
		}
		m[phoneNumberID] = map[bool]string{true: "RED", false: "GREEN"}[u.Event == "FLAGGED"]
		s.ov.numberQuality = m
		s.rebuildLocked()
	}
	sn := s.snap.Load()
	s.mu.Unlock()
	if u.CurrentLimit == "" {
		u.CurrentLimit = "TIER_1K"
	}
	v := map[string]any{"display_phone_number": p.displayDigits, "event": u.Event, "current_limit": u.CurrentLimit,
		"max_daily_conversations_per_business": u.CurrentLimit}
	if u.OldLimit != "" {
		v["old_limit"] = u.OldLimit
	}
	s.hooks.account(sn, p.WABAID, "phone_number_quality_update", v)
	return nil
}

// UpdateAccount sends an account_update for a WABA; a messaging
// restriction or a DISABLE locks its sends (131031) until lifted.
func (s *Server) UpdateAccount(waba string, u AccountUpdate) error {
	if waba == "" || !digitsLike(waba) {
		return errString("WABA id must be digits")
	}
	if _, msg := u.check(); msg != "" {
		return errString(msg)
	}
	locks := false
	for _, r := range u.Restrictions {
		if strings.HasSuffix(r.Type, "_INITIATED_MESSAGING") {
			locks = true
		}
	}
	v := map[string]any{"event": u.Event}
	switch u.Event {
	case "ACCOUNT_RESTRICTION":
		v["restriction_info"] = append([]Restriction{}, u.Restrictions...)
		s.SetLocked(waba, locks)
	case "DISABLED_UPDATE":
		v["ban_info"] = map[string]string{"waba_ban_state": u.BanState, "waba_ban_date": s.now().UTC().Format("January 2, 2006")}
		if u.BanState != "SCHEDULE_FOR_DISABLE" {
			s.SetLocked(waba, u.BanState == "DISABLE")
		}
	case "ACCOUNT_VIOLATION":
		v["violation_info"] = map[string]string{"violation_type": u.ViolationType}
	case "ACCOUNT_DELETED":
		s.SetLocked(waba, true)
	}
	s.hooks.account(s.snap.Load(), waba, "account_update", v)
	return nil
}

func digitsLike(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) <= 64
}

// account sends one account webhook change.
func (h *hookRunner) account(sn *snapshot, waba, field string, value map[string]any) {
	cfg := &sn.webhooks
	if cfg.URL == "" {
		h.s.log.Warn("fakegraph: an account webhook was asked for but no webhook URL is configured; it is not sent", "field", field)
		return
	}
	body, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": waba, "time": h.s.now().Unix(), "changes": []any{map[string]any{"value": value, "field": field}},
	}}})
	h.scheduled.Add(1)
	h.schedule(&hookJob{gen: h.gen.Load(), url: cfg.URL, secret: cfg.AppSecret, status: field,
		body: body, retries: cfg.Retries, backoff: cfg.RetryBackoff.D()}, time.Now())
}
