package fakegraph

import (
	"fmt"
	"strconv"
	"strings"
)

var (
	qualityRatings = []string{"GREEN", "YELLOW", "RED", "UNKNOWN", "NA"}
	templateStates = []string{"APPROVED", "PAUSED", "DISABLED", "REJECTED", "PENDING", "IN_APPEAL", "PENDING_DELETION", "DELETED", "LIMIT_EXCEEDED"}
	statusNames    = []string{"sent", "delivered", "read"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// validate checks what decoding cannot: values that make no sense together.
func (s *Scenario) validate() error {
	if s.Latency.Jitter < 0 || s.Latency.Base < 0 {
		return errAt("must not be negative", "latency")
	}
	for i, t := range s.Tokens {
		if t.Token == "" {
			return errAt("token must not be empty", "tokens", i, "token")
		}
	}
	for i, f := range s.Random {
		if f.Rate < 0 || f.Rate > 1 {
			return errAt(fmt.Sprintf("rate %v: want a share between 0 and 1", f.Rate), "random", i, "rate")
		}
		if err := f.Respond.validate("random", i, "respond"); err != nil {
			return err
		}
	}
	for i, r := range s.Rules {
		if r.Times < 0 {
			return errAt("times must not be negative (0 means always)", "rules", i, "times")
		}
		if err := r.Respond.validate("rules", i, "respond"); err != nil {
			return err
		}
		if err := r.Match.validate("rules", i, "match"); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, p := range s.PhoneNumbers {
		if p.PhoneNumberID == "" {
			return errAt("phone_number_id must not be empty", "phone_numbers", i)
		}
		if seen[p.PhoneNumberID] {
			return errAt("phone number "+p.PhoneNumberID+" listed twice", "phone_numbers", i, "phone_number_id")
		}
		seen[p.PhoneNumberID] = true
		if p.QualityRating != "" && !oneOf(p.QualityRating, qualityRatings) {
			return errAt("quality_rating "+p.QualityRating+": want GREEN, YELLOW, RED or UNKNOWN", "phone_numbers", i, "quality_rating")
		}
		if p.ThroughputLevel != "" && !oneOf(p.ThroughputLevel, throughputLevels) {
			return errAt("throughput_level "+p.ThroughputLevel+": want STANDARD, HIGH or NOT_APPLICABLE", "phone_numbers", i, "throughput_level")
		}
		for j, a := range p.AllowedRecipients {
			if !phoneLike(a) && !isBSUID(a) {
				return errAt("allowed recipient "+strconv.Quote(a)+": want a phone number or a BSUID", "phone_numbers", i, "allowed_recipients", j)
			}
		}
		if p.MPS < 0 {
			return errAt("mps must not be negative", "phone_numbers", i, "mps")
		}
	}
	for i, t := range s.Templates {
		if t.Name == "" {
			return errAt("name must not be empty", "templates", i)
		}
		if t.Language == "" && len(t.Languages) == 0 {
			return errAt("template "+t.Name+" needs a language or languages", "templates", i)
		}
		if t.Status != "" && !oneOf(t.Status, templateStates) {
			return errAt("status "+t.Status+": want APPROVED, PAUSED, DISABLED, REJECTED or PENDING", "templates", i, "status")
		}
		if t.BodyParams < 0 {
			return errAt("body_params must not be negative", "templates", i, "body_params")
		}
	}
	l := s.Limits
	if l.Throughput.MPS < 0 || l.Throughput.Burst < 0 {
		return errAt("mps and burst must not be negative", "limits", "throughput")
	}
	if l.Throughput.Strict && l.Throughput.Burst > 0 {
		return errAt("strict has no burst: leave burst out", "limits", "throughput", "burst")
	}
	if l.Pair.Burst < 0 {
		return errAt("burst must not be negative", "limits", "pair", "burst")
	}
	if l.App.Calls < 0 {
		return errAt("calls must not be negative", "limits", "app", "calls")
	}
	if l.WABA.Calls < 0 {
		return errAt("calls must not be negative", "limits", "waba", "calls")
	}
	for i, o := range s.Window.Open {
		if o.To == "" {
			return errAt("to must not be empty", "window", "open", i)
		}
	}
	w := s.Webhooks
	for i, st := range w.Statuses {
		if !oneOf(st, statusNames) {
			return errAt("status "+st+": want sent, delivered or read", "webhooks", "statuses", i)
		}
	}
	if w.DuplicateRate < 0 || w.DuplicateRate > 1 {
		return errAt("want a share between 0 and 1", "webhooks", "duplicate_rate")
	}
	if w.ReorderRate < 0 || w.ReorderRate > 1 {
		return errAt("want a share between 0 and 1", "webhooks", "reorder_rate")
	}
	if w.Duplicates < 0 || w.Duplicates > 100 {
		return errAt("want 0 to 100", "webhooks", "duplicates")
	}
	if w.Retries < -1 || w.Retries > 100 {
		return errAt("want -1 (none) to 100", "webhooks", "retries")
	}
	if w.URL != "" && !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
		return errAt("want an http(s) URL", "webhooks", "url")
	}
	return s.validateAccountEvents()
}
