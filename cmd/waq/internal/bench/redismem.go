package bench

// Redis's bytes per job: what the jobs left in Redis, without what Redis
// holds whatever the jobs (connections' buffers, the append-only file's
// buffer, the script caches, and the latency histogram Redis 7 keeps for
// every command it has run, about 24 KB each), split into what expires soon
// and what is kept for the whole retention.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// shortLived is the age below which a key counts as short-lived: it expires
// within the resend window (24 h by default) and a little more, where the
// sent index keeps its records for the whole retention (7 days).
const shortLived = 25 * time.Hour

// notState are INFO memory's parts of used_memory that are not what the
// jobs left: connections, the append-only file's buffer, the replication
// backlog, the caches of scripts and functions, the cluster bus.
var notState = []string{"mem_clients_normal", "mem_clients_slaves", "mem_aof_buffer", "mem_replication_backlog",
	"used_memory_scripts", "mem_cluster_links"}

// redisState is what Redis holds at one moment.
type redisState struct {
	info map[string]int64
	// bytes is used_memory less notState and the latency histograms.
	bytes int64
	// short is the bytes (MEMORY USAGE, sampled) of keys that expire within
	// shortLived.
	short  int64
	groups []KeyGroup
	// bodies is the bytes on the bodies' stream (disk, not Redis).
	bodies uint64
}

// readState measures Redis's state. It resets Redis's statistics first
// (CONFIG RESETSTAT), which frees the latency histograms: read INFO
// commandstats before it.
func (b *bench) readState(ctx context.Context) (redisState, error) {
	var s redisState
	if err := b.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return s, fmt.Errorf("config resetstat: %w", err)
	}
	info, err := memoryInfo(ctx, b.rdb)
	if err != nil {
		return s, err
	}
	s.info, s.bytes = info, info["used_memory"]
	for _, f := range notState {
		s.bytes -= info[f]
	}
	if s.groups, err = keyDump(ctx, b.rdb, 10_000_000); err != nil {
		return s, err
	}
	for _, g := range s.groups {
		s.short += g.ShortBytes
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if st, err := b.js.Stream(ictx, b.bodiesStream()); err == nil {
		if si, err := st.Info(ictx); err == nil {
			s.bodies = si.State.Bytes
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return s, fmt.Errorf("bodies stream: %w", err)
	}
	return s, nil
}

// bodiesStream is the workers' stream of sent jobs' bodies.
func (b *bench) bodiesStream() string {
	if v := b.cfg.Getenv("WAQ_BODIES_STREAM"); v != "" {
		return v
	}
	return "WAQ_BODIES"
}
