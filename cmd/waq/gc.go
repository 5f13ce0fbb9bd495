package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// The worker's garbage-collector defaults, for when GOGC and GOMEMLIMIT are
// not set. A worker's live heap is small (tens of MB at the default
// concurrency) and nearly all it allocates is garbage within a job, so
// collecting at 5× the live heap instead of Go's 2× takes about a fifth off
// its CPU per job (waq bench, README "Speed, measured"). The soft memory
// limit bounds what that costs: near it the runtime collects harder, so the
// resident set stays under about 200 MB at the default concurrency (at
// 4,096 sends in flight the limit is 256 MiB and the resident set about
// 280 MiB; README "Speed, measured").
// In a container, set GOMEMLIMIT to about 90% of the memory limit
// (deploy/kubernetes does).
//
// The limit grows with WAQ_CONCURRENCY (64 KiB per send in flight): a job
// in flight holds a goroutine stack, its span and its message, and a limit
// below what the jobs in flight need would have the runtime collect without
// pause (at 4,096 in flight a 170 MiB limit halved the throughput).
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 170 << 20
	memoryPerSend      = 64 << 10
)

// tuneGC applies the worker's defaults where the environment sets none, and
// describes what is in force for the startup log.
func tuneGC(getenv func(string) string, concurrency int) string {
	gogc, limit := strings.TrimSpace(getenv("GOGC")), strings.TrimSpace(getenv("GOMEMLIMIT"))
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
		gogc = fmt.Sprint(defaultGCPercent)
	}
	if limit == "" {
		l := max(int64(defaultMemoryLimit), int64(concurrency)*memoryPerSend)
		debug.SetMemoryLimit(l)
		limit = fmt.Sprintf("%dMiB", l>>20)
	}
	return "GOGC=" + gogc + " GOMEMLIMIT=" + limit
}
