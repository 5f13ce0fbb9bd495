package deadletter

import (
	"context"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/queue"
)

// ResolveID returns the id of the entry that id names: the entry with
// that very id, else the one entry whose id starts with it. No such entry
// is ErrNotFound; several are a *queue.AmbiguousIDError listing them.
func (s *Store) ResolveID(ctx context.Context, id string) (string, error) {
	ok, err := s.exists(ctx, id)
	if err != nil {
		return "", err
	}
	if ok {
		return id, nil
	}
	// Every id is in the index of its reason: one ZSCAN of each, the steps
	// of all of them in one round trip.
	found, more, err := s.idsWithPrefix(ctx, id)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", ErrNotFound
	case 1:
		return found[0], nil
	}
	sort.Strings(found)
	return "", &queue.AmbiguousIDError{Prefix: id, Candidates: found, More: more}
}

// idsWithPrefix returns up to queue.MaxCandidates ids that start with
// prefix, and whether there are more.
func (s *Store) idsWithPrefix(ctx context.Context, prefix string) (found []string, more bool, err error) {
	idx, err := s.indexesOf(ctx, "all")
	if err != nil {
		return nil, false, err
	}
	cursors := map[string]uint64{} // by index key
	for _, keys := range idx {
		for _, k := range keys {
			cursors[k] = 0
		}
	}
	match := conn.MatchPrefix(prefix)
	seen := map[string]bool{}
	for round := 0; round < 1_000_000 && len(cursors) > 0; round++ {
		keys := make([]string, 0, len(cursors))
		cmds := make([]*redis.ScanCmd, 0, len(cursors))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k, c := range cursors {
				keys = append(keys, k)
				cmds = append(cmds, p.ZScan(ctx, k, c, match, 1000))
			}
			return nil
		})
		if err != nil {
			return nil, false, err
		}
		for i, c := range cmds {
			kv, next := c.Val()
			for j := 0; j < len(kv); j += 2 { // members and scores alternate
				if seen[kv[j]] {
					continue // in two bases while it moves
				}
				if len(found) == queue.MaxCandidates {
					return found, true, nil
				}
				seen[kv[j]] = true
				found = append(found, kv[j])
			}
			if next == 0 {
				delete(cursors, keys[i])
			} else {
				cursors[keys[i]] = next
			}
		}
	}
	return found, false, nil
}

// ResolveIDs resolves each id as ResolveID does; the first that does not
// resolve is the error.
func (s *Store) ResolveIDs(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		r, err := s.ResolveID(ctx, id)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}
