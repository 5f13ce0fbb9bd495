package policy

import (
	"strings"
	"testing"
)

// Every code the default table names (and those SPEC Appendix A lists),
// and every reason, has a next step: an operator never reads only "the
// policy parks 132001".
func TestAdviceCoversTheDefaultTable(t *testing.T) {
	codes := map[int]bool{131030: true, 131062: true} // Appendix A's invalid row
	for _, r := range Default().Rules() {
		for _, c := range r.Codes {
			codes[c] = true
		}
		for _, rg := range r.CodeRanges {
			codes[rg.Lo], codes[rg.Hi], codes[(rg.Lo+rg.Hi)/2] = true, true, true
		}
	}
	if len(codes) < 50 {
		t.Fatalf("only %d codes in the default table: the test reads the wrong table", len(codes))
	}
	for c := range codes {
		a, ok := CodeAdvice(c)
		if !ok {
			t.Errorf("code %d: no advice", c)
			continue
		}
		checkAdvice(t, a)
	}
	for _, r := range Reasons() {
		a := ReasonAdvice(r)
		if a.Key != "reason:"+r {
			t.Errorf("reason %s: got the row %s", r, a.Key)
		}
		checkAdvice(t, a)
	}
	// The table has no rows for codes the policy does not know: each row
	// is one a parked job can carry.
	for _, c := range AdviceCodes() {
		if !codes[c] {
			t.Errorf("advice for %d, which the default table does not name", c)
		}
	}
}

func checkAdvice(t *testing.T, a Advice) {
	t.Helper()
	if a.Title == "" || len(a.Next) < 20 {
		t.Errorf("%s: want a title and a next step, got %+v", a.Key, a)
	}
	for _, f := range []Fit{a.AsIs, a.AsTemplate} {
		if f != FitYes && f != FitAfterFix && f != FitNo {
			t.Errorf("%s: fit %q", a.Key, f)
		}
	}
}

func TestAdviceFor(t *testing.T) {
	tests := []struct {
		reason          string
		code            int
		hasCode         bool
		key             string
		asIs, asTpl     Fit
		warnIs, warnTpl string // a word the warning holds; "" none
	}{
		// A missing template: replay as it is only after the fix.
		{"template", 132001, true, "132001", FitAfterFix, FitNo, "until", "cannot help"},
		// The window: only as a template.
		{"window", 131047, true, "131047", FitNo, FitYes, "cannot help", ""},
		// An invalid job that never reached the API: neither replay.
		{"invalid", 0, false, "reason:invalid", FitNo, FitNo, "cannot help", "cannot help"},
		// A code no row names falls back to its reason.
		{"retries_exhausted", 999999, true, "reason:retries_exhausted", FitYes, FitNo, "", "cannot help"},
		{"account", 250, true, "200-299", FitAfterFix, FitNo, "until", "cannot help"},
		{"bogus", 0, false, "reason:unknown", FitYes, FitNo, "", "cannot help"},
	}
	for _, tt := range tests {
		a := AdviceFor(tt.reason, tt.code, tt.hasCode)
		if a.Key != tt.key || a.AsIs != tt.asIs || a.AsTemplate != tt.asTpl {
			t.Errorf("%s/%d: got %s as_is=%s as_template=%s", tt.reason, tt.code, a.Key, a.AsIs, a.AsTemplate)
		}
		for _, w := range []struct {
			tpl  bool
			want string
		}{{false, tt.warnIs}, {true, tt.warnTpl}} {
			got := a.ReplayWarning(w.tpl)
			if (w.want == "") != (got == "") || !strings.Contains(got, w.want) {
				t.Errorf("%s/%d as_template=%v: warning %q, want one with %q", tt.reason, tt.code, w.tpl, got, w.want)
			}
			fit := a.AsIs
			if w.tpl {
				fit = a.AsTemplate
			}
			if a.Offers(w.tpl) != (fit != FitNo) {
				t.Errorf("%s/%d as_template=%v: offered %v with warning %q", tt.reason, tt.code, w.tpl, a.Offers(w.tpl), got)
			}
		}
	}
}
