package ledger

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
)

// ErrNoRecord means no job record has that id or starts with it.
var ErrNoRecord = errors.New("no job record with that id")

// ResolveID returns the id of the job record that id names: that very id,
// else the one id that starts with it. No such record is ErrNoRecord;
// several are a *queue.AmbiguousIDError. A prefix costs a SCAN of the
// keyspace (every master's, on a cluster) and finds only jobs with a hash
// of their own (that failed at least once): the compact index keeps
// digests, not ids. A whole id costs one Load.
func (l *Ledger) ResolveID(ctx context.Context, id string) (string, error) {
	// A job's record in the compact index (a job sent first time has no
	// key of its own), its hash, or its attempts alone (a job still
	// retrying).
	if st, err := l.Load(ctx, id); err != nil {
		return "", err
	} else if st != (State{}) {
		return id, nil
	}
	n, err := l.rdb.Exists(ctx, l.stateKey(id)).Result()
	if err == nil && n == 0 {
		n, err = l.rdb.Exists(ctx, l.historyKey(id)).Result()
	}
	if err != nil {
		return "", err
	}
	if n == 1 {
		return id, nil
	}
	// The record, its attempts and its body: "waq:j:{ID}", "...}:h", "...}:b".
	pattern := l.prefix + ":j:{" + conn.MatchPrefix(id)
	var (
		mu    sync.Mutex
		found = map[string]bool{}
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			jid := strings.TrimPrefix(k, l.prefix+":j:{")
			if i := strings.LastIndexByte(jid, '}'); i >= 0 {
				jid = jid[:i]
			}
			mu.Lock()
			found[jid] = true
			mu.Unlock()
		}
		return iter.Err()
	}
	if cc, ok := l.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, l.rdb)
	}
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(found))
	for k := range found {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	switch len(ids) {
	case 0:
		return "", ErrNoRecord
	case 1:
		return ids[0], nil
	}
	e := &queue.AmbiguousIDError{Prefix: id, Candidates: ids}
	if len(ids) > queue.MaxCandidates {
		e.Candidates, e.More = ids[:queue.MaxCandidates], true
	}
	return "", e
}
