package deadletter

import (
	"context"
	"sort"

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
	// Every id is in the "all" index, one sorted set under the store's
	// hash tag: one ZSCAN, on a cluster too.
	var found []string
	more := false
	iter := s.rdb.ZScan(ctx, s.indexKey("all"), 0, conn.MatchPrefix(id), 1000).Iterator()
	for i := 0; iter.Next(ctx); i++ {
		if i%2 == 1 { // members and scores alternate
			continue
		}
		if len(found) == queue.MaxCandidates {
			more = true
			break
		}
		found = append(found, iter.Val())
	}
	if err := iter.Err(); err != nil {
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
