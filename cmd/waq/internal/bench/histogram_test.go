package bench

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	for us := int64(0); us < 1<<22; us = us*11/10 + 1 {
		i := bucketOf(us)
		if v := bucketValue(i); v < us || float64(v-us) > 0.032*float64(us)+1 {
			t.Fatalf("%dus: bucket %d tops at %d", us, i, v)
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	s := h.summary()
	if s.Count != 1000 || s.P50 < 490 || s.P50 > 510 || s.P99 < 980 || s.P99 > 1000 || s.Max != 1000 {
		t.Errorf("summary %+v", s)
	}
	if (&histogram{}).summary() != nil {
		t.Error("empty histogram has a summary")
	}
}
