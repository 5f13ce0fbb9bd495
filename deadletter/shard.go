package deadletter

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
)

// The store is spread over shards, each under a hash tag of its own, so
// that on a Redis Cluster the entries spread over as many slots, and the
// masters that hold them. A shard has the layout the whole store had under
// {dlq}: an entry, its indexes and its counters share a slot, and one
// script updates them atomically. An entry's shard is chosen by its
// recipient, so that all the entries of one recipient, and their counts in
// the ":to" hashes, are in one shard: the distinct recipients of a
// selection are the sum over the shards.
//
// The store as it was, under {dlq}, is read as one more base ("legacy"),
// so that entries parked before the shards are listed, shown, counted,
// replayed and removed until they expire; nothing is written there any
// more, and an entry parked again moves to its shard.
//
// Whatever does not name one entry (list, stats, sweep, a prefix) runs in
// every base at once, in one pipeline, which a cluster client splits by
// node and sends to the nodes concurrently, and merges the answers.

// shardCount is the number of shards. Every process that shares a store
// must use the same count; it is not configurable for that reason.
const shardCount = 16

// shardTags are the numbers of the shards' hash tags ({dlq:40}, {dlq:3},
// ...), chosen so that the slots of the 16 tags lie one in each sixteenth of
// the 16,384 slots, in its middle half: a cluster whose masters hold equal
// ranges of slots, as `redis-cli --cluster create` makes them, gets an even
// share (6, 5 and 5 shards of three masters; 4 of each of four), where
// {dlq:0} to {dlq:15} would give three masters 4, 5 and 7.
// TestClusterSpread checks the slots with CLUSTER KEYSLOT. Never change
// them: entries are found by them for the whole retention.
var shardTags = [shardCount]int{40, 3, 39, 13, 41, 2, 38, 12, 42, 1, 28, 11, 43, 0, 29, 10}

// shardBases are the key prefixes of the shards, then the legacy one.
func shardBases(prefix string) (shards []string, legacy string) {
	shards = make([]string, shardCount)
	for i, tag := range shardTags {
		shards[i] = prefix + ":{dlq:" + strconv.Itoa(tag) + "}"
	}
	return shards, prefix + ":{dlq}"
}

// baseOf is the base entry e is parked in: the shard of its recipient (of
// its id when it has none, as a body that is not a job). The shard is a
// hash of the recipient taken modulo 16: the key holds four bits of it and
// never the recipient. FNV-1a may never change either.
func (s *Store) baseOf(e *Entry) string {
	if len(s.shards) == 0 {
		return s.legacy
	}
	who := e.Addressee()
	if who == "" {
		who = e.ID
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(who))
	return s.shards[h.Sum32()%uint32(len(s.shards))]
}

// scriptCall is one script run in one base.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// evalAll runs calls in one pipeline (ending in the store's replica wait,
// when it has one) and returns their results in order. A Redis that has
// forgotten a script (restarted, failed over) gets it loaded, and the calls
// that failed for it are sent again: the scripts run here are idempotent
// or reads. also adds reads to each pipeline sent. A script's nil answer
// is not an error; the first other error is returned.
func (s *Store) evalAll(ctx context.Context, calls []scriptCall, wait conn.Replicas, also func(redis.Pipeliner)) ([]*redis.Cmd, error) {
	out := make([]*redis.Cmd, len(calls))
	todo := make([]int, len(calls))
	for i := range todo {
		todo[i] = i
	}
	for try := 0; ; try++ {
		_, err := wait.Pipelined(ctx, s.rdb, func(p redis.Pipeliner) error {
			for _, i := range todo {
				c := calls[i]
				out[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
			}
			if also != nil {
				also(p)
			}
			return nil
		})
		if errors.Is(err, conn.ErrNotReplicated) || errors.Is(err, conn.ErrWaitOnCluster) {
			return out, err
		}
		var again []int
		for _, i := range todo {
			if redis.HasErrorPrefix(out[i].Err(), "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if len(again) == 0 || try == 1 {
			break
		}
		loaded := map[*redis.Script]bool{}
		for _, i := range again {
			if sc := calls[i].script; !loaded[sc] {
				if err := sc.Load(ctx, s.rdb).Err(); err != nil {
					return out, fmt.Errorf("load script: %w", err)
				}
				loaded[sc] = true
			}
		}
		todo = again
	}
	for _, c := range out {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return out, err
		}
	}
	return out, nil
}
