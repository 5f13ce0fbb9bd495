package throttle

import (
	"testing"
	"time"
)

// TestLoweredBadFields: fields of a rate state that do not parse give no
// times, rather than 1970 or a panic; since after the last 130429 (a clock
// gone back) is not believed.
func TestLoweredBadFields(t *testing.T) {
	at := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	dec := "1796313600000" // at
	for _, c := range []struct {
		mps              int
		rate, dec, since string
		zero             bool
	}{
		{10, "", "", "", true},
		{10, "x", dec, "", true},
		{10, "8", "later", "", true},
		{0, "8", dec, "", true},
		{10, "8", dec, "junk", false},
		{10, "8", dec, "1796313700000", false},
	} {
		from, until := lowered(c.mps, c.rate, c.dec, c.since)
		if c.zero != from.IsZero() || c.zero != until.IsZero() {
			t.Errorf("%+v: %s, %s", c, from, until)
		}
		if !c.zero && (!from.Equal(at) || !until.Equal(at.Add(4*time.Second))) {
			t.Errorf("%+v: from %s until %s, want %s and 4s later", c, from, until, at)
		}
	}
	if from, until := lowered(10, "12", dec, ""); !from.Equal(at) || !until.Equal(at) {
		t.Errorf("a rate above mps: %s, %s", from, until)
	}
}
