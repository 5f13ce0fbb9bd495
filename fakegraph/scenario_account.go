package fakegraph

import (
	"slices"
	"time"
)

// AccountEvent is an account webhook a scenario sends by itself, After its
// install (or a Reset that brings it back), as the control API would send
// it then: the change applies to sends as at Meta and the webhook goes to
// the scenario's URL, signed. One of Template, Number and Account:
//
//	account_events:
//	  - after: 2s
//	    template: {name: spring_sale, language: en_US, status: PAUSED, reason: LOW_QUALITY}
//	  - after: 5s
//	    template: {name: spring_sale, language: en_US, quality: RED}
//	  - number: {phone_number_id: "106540352242922", event: FLAGGED, current_limit: TIER_1K}
//	  - after: 1m
//	    account: {waba_id: "102290129340398", event: ACCOUNT_RESTRICTION,
//	              restriction_info: [{restriction_type: RESTRICTED_BIZ_INITIATED_MESSAGING}]}
type AccountEvent struct {
	// After is the wait from the install; 0 sends it at once.
	After    Duration       `yaml:"after,omitempty" json:"after,omitzero"`
	Template *TemplateEvent `yaml:"template,omitempty" json:"template,omitempty"`
	Number   *NumberEvent   `yaml:"number,omitempty" json:"number,omitempty"`
	Account  *WABAEvent     `yaml:"account,omitempty" json:"account,omitempty"`
}

// TemplateEvent is a TemplateUpdate of one template of the scenario.
type TemplateEvent struct {
	Name           string `yaml:"name" json:"name"`
	Language       string `yaml:"language" json:"language"`
	TemplateUpdate `yaml:",inline" json:",inline"`
}

// NumberEvent is a NumberUpdate of one number of the scenario.
type NumberEvent struct {
	PhoneNumberID string `yaml:"phone_number_id" json:"phone_number_id"`
	NumberUpdate  `yaml:",inline" json:",inline"`
}

// WABAEvent is an AccountUpdate of one WABA.
type WABAEvent struct {
	WABAID        string `yaml:"waba_id" json:"waba_id"`
	AccountUpdate `yaml:",inline" json:",inline"`
}

// validateAccountEvents checks each event against the scenario: one kind,
// a known template in that language or a known number, values Meta sends.
func (s *Scenario) validateAccountEvents() error {
	for i, e := range s.AccountEvents {
		at := func(msg string, path ...any) error { return errAt(msg, append([]any{"account_events", i}, path...)...) }
		if e.After < 0 {
			return at("after must not be negative", "after")
		}
		kinds := 0
		for _, set := range []bool{e.Template != nil, e.Number != nil, e.Account != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			return at("give one of template, number and account")
		}
		var field, msg, kind string
		switch {
		case e.Template != nil:
			kind = "template"
			t := e.Template
			switch {
			case t.Name == "":
				return at("the template needs its name", kind)
			case t.Language == "":
				return at("template "+t.Name+" needs its language", kind)
			case !s.hasTemplate(t.Name, t.Language):
				return at("no template "+t.Name+" in language "+t.Language+" among the scenario's templates", kind, "name")
			}
			field, msg = t.check()
		case e.Number != nil:
			kind = "number"
			if !slices.ContainsFunc(s.PhoneNumbers, func(p PhoneNumber) bool { return p.PhoneNumberID == e.Number.PhoneNumberID }) {
				return at("no phone number "+e.Number.PhoneNumberID+" among the scenario's phone_numbers", kind, "phone_number_id")
			}
			field, msg = e.Number.check()
		default:
			kind = "account"
			if e.Account.WABAID == "" || !digitsLike(e.Account.WABAID) {
				return at("waba_id must be digits", kind, "waba_id")
			}
			field, msg = e.Account.check()
		}
		if msg != "" {
			if field == "" {
				return at(msg, kind)
			}
			return at(msg, kind, field)
		}
	}
	return nil
}

func (s *Scenario) hasTemplate(name, lang string) bool {
	return slices.ContainsFunc(s.Templates, func(t Template) bool {
		return t.Name == name && (t.Language == lang || slices.Contains(t.Languages, lang))
	})
}

// startAccountEvents stops the events of the scenario installed before and
// starts sc's (s.mu held, or the server not yet shared). An event whose
// scenario was replaced before it fired is not sent.
func (s *Server) startAccountEvents(sc *Scenario) {
	s.stopAccountEvents()
	gen := s.eventGen.Load()
	for _, e := range sc.AccountEvents {
		s.eventTimers = append(s.eventTimers, time.AfterFunc(e.After.D(), func() {
			if s.eventGen.Load() != gen {
				return
			}
			if err := s.sendAccountEvent(e); err != nil {
				s.log.Warn("fakegraph: a scenario's account event was not sent", "error", err)
			}
		}))
	}
}

// stopAccountEvents stops the timers of the events not sent yet (s.mu held).
func (s *Server) stopAccountEvents() {
	s.eventGen.Add(1)
	for _, t := range s.eventTimers {
		t.Stop()
	}
	s.eventTimers = nil
}

func (s *Server) sendAccountEvent(e AccountEvent) error {
	switch {
	case e.Template != nil:
		return s.UpdateTemplate(e.Template.Name, e.Template.Language, e.Template.TemplateUpdate)
	case e.Number != nil:
		return s.UpdateNumber(e.Number.PhoneNumberID, e.Number.NumberUpdate)
	}
	return s.UpdateAccount(e.Account.WABAID, e.Account.AccountUpdate)
}
