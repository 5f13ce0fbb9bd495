package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// generation is the replay generation of a stored entry, read from the
// header of format 1 without decompressing it.
func generation(data []byte) (int, error) {
	if len(data) > 0 && data[0] == formatZstd1 {
		head, _, err := splitHeader(data)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(head[5]) // the header's last field: g
	}
	e, err := decodeEntry(data)
	if err != nil {
		return 0, err
	}
	return e.Replayed, nil
}

// stored returns the stored form of entry id (format 1, or a legacy
// entry's JSON), or nil when there is none.
func (s *Store) stored(ctx context.Context, id string) ([]byte, error) {
	all, _, err := s.storedMany(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// ref names an entry in the base it is in.
type ref struct{ base, id string }

// storedMany returns the stored forms of ids and the bases they are in,
// looked up in every base in one round trip; nil and "" where there is
// none.
func (s *Store) storedMany(ctx context.Context, ids []string) ([][]byte, []string, error) {
	refs := make([]ref, 0, len(ids)*len(s.all))
	for _, id := range ids {
		for _, b := range s.all {
			refs = append(refs, ref{b, id})
		}
	}
	data, err := s.storedAt(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	out, bases := make([][]byte, len(ids)), make([]string, len(ids))
	for i, r := range refs {
		if n := i / len(s.all); out[n] == nil && data[i] != nil {
			out[n], bases[n] = data[i], r.base
		}
	}
	return out, bases, nil
}

// storedAt returns the stored forms of entries whose base is known, in one
// round trip; nil where there is none. Only the legacy base may hold an
// entry in the form before format 1.
func (s *Store) storedAt(ctx context.Context, refs []ref) ([][]byte, error) {
	cur := make([]*redis.StringCmd, len(refs))
	old := make([]*redis.StringCmd, len(refs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			cur[i] = p.Get(ctx, entryKey(r.base, r.id))
			if r.base == s.legacy {
				old[i] = p.HGet(ctx, legacyKey(r.base, r.id), "d")
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load entries: %w", err)
	}
	out := make([][]byte, len(refs))
	for i := range refs {
		b, err := cur[i].Bytes()
		if err != nil && old[i] != nil && errors.Is(err, redis.Nil) {
			b, err = old[i].Bytes()
		}
		switch {
		case err == nil:
			out[i] = b
		case !errors.Is(err, redis.Nil):
			return nil, fmt.Errorf("load entries: %w", err)
		}
	}
	return out, nil
}

// getMany loads entries in one round trip, and the bases they are in; nil
// where there is none (or it does not decode).
func (s *Store) getMany(ctx context.Context, ids []string) ([]*Entry, []string, error) {
	data, bases, err := s.storedMany(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	return decodeAll(data), bases, nil
}

// decodeAll decodes stored forms; nil where there is none or one does not
// decode.
func decodeAll(data [][]byte) []*Entry {
	out := make([]*Entry, len(data))
	for i, d := range data {
		if d != nil {
			out[i], _ = decodeEntry(d)
		}
	}
	return out
}

// exists reports whether an entry is parked under id.
func (s *Store) exists(ctx context.Context, id string) (bool, error) {
	keys := make([]string, 0, len(s.all)+1)
	cmds := make([]*redis.IntCmd, 0, len(s.all))
	for _, b := range s.all {
		keys = append(keys, entryKey(b, id))
	}
	keys = append(keys, legacyKey(s.legacy, id))
	// One EXISTS per key: on a cluster they are in different slots.
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			cmds = append(cmds, p.Exists(ctx, k))
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("exists %s: %w", id, err)
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}
