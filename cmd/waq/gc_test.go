package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the worker's defaults apply only where GOGC and GOMEMLIMIT
// are unset.
func TestTuneGC(t *testing.T) {
	pct, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(pct); debug.SetMemoryLimit(limit) })

	if got := tuneGC(func(string) string { return "" }, 128); got != "GOGC=400 GOMEMLIMIT=170MiB" {
		t.Errorf("defaults described as %q", got)
	}
	if p := debug.SetGCPercent(100); p != defaultGCPercent {
		t.Errorf("GC percent %d, want %d", p, defaultGCPercent)
	}
	if l := debug.SetMemoryLimit(-1); l != defaultMemoryLimit {
		t.Errorf("memory limit %d, want %d", l, defaultMemoryLimit)
	}

	tuneGC(func(string) string { return "" }, 4096)
	if l := debug.SetMemoryLimit(-1); l != 4096*memoryPerSend {
		t.Errorf("memory limit at 4,096 in flight %d, want %d", l, 4096*memoryPerSend)
	}

	debug.SetGCPercent(100)
	debug.SetMemoryLimit(1 << 30)
	set := map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}
	if got := tuneGC(func(k string) string { return set[k] }, 128); got != "GOGC=150 GOMEMLIMIT=1GiB" {
		t.Errorf("operator's settings described as %q", got)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC set by the operator, yet the percent became %d", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 1<<30 {
		t.Errorf("GOMEMLIMIT set by the operator, yet the limit became %d", l)
	}
}
