package bench

// The Redis statistics of a phase: commands run per job, from INFO
// commandstats.

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// benchCommands are the bench's own commands to Redis, left out of the
// count.
var benchCommands = map[string]bool{"info": true, "config|set": true, "config|resetstat": true, "psubscribe": true, "punsubscribe": true, "ping": true, "hello": true, "client|setinfo": true}

// commandCalls reads how many times Redis ran each command
// (INFO commandstats).
func commandCalls(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info), nil
}

// parseCommandStats reads "cmdstat_NAME:calls=N,usec=..." lines.
func parseCommandStats(info string) map[string]int64 {
	calls := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				if c, err := strconv.ParseInt(v, 10, 64); err == nil {
					calls[strings.TrimPrefix(name, "cmdstat_")] = c
				}
			}
		}
	}
	return calls
}

// perJob is each command's calls between two readings, per job, without
// the bench's own.
func perJob(before, after map[string]int64, jobs int) map[string]float64 {
	out := map[string]float64{}
	if jobs <= 0 {
		return out
	}
	for name, c := range after {
		if d := c - before[name]; d > 0 && !benchCommands[name] {
			out[name] = float64(d) / float64(jobs)
		}
	}
	return out
}

// parseMemoryInfo reads INFO memory's numeric fields; it fails without a
// positive used_memory.
func parseMemoryInfo(info string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	if out["used_memory"] <= 0 {
		return nil, errors.New("INFO memory: no used_memory above 0")
	}
	return out, nil
}
