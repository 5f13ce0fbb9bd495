package deadletter

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// genScript returns the generation of a parked entry, in either stored
// form, or nil. KEYS: entry, legacy entry. ARGV: base, id.
var genScript = redis.NewScript(loadLua + `
local f = load(ARGV[1], ARGV[2])
if not f then return false end
return f.g
`)

// stored returns the stored form of entry id (format 1, or a legacy
// entry's JSON), or nil when there is none.
func (s *Store) stored(ctx context.Context, id string) ([]byte, error) {
	all, err := s.storedMany(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	return all[0], nil
}

// storedMany returns the stored forms of ids in one round trip; nil where
// there is none.
func (s *Store) storedMany(ctx context.Context, ids []string) ([][]byte, error) {
	cur := make([]*redis.StringCmd, len(ids))
	old := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cur[i] = p.Get(ctx, s.entryKey(id))
			old[i] = p.HGet(ctx, s.legacyKey(id), "d")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load entries: %w", err)
	}
	out := make([][]byte, len(ids))
	for i := range ids {
		if b, err := cur[i].Bytes(); err == nil {
			out[i] = b
		} else if b, err := old[i].Bytes(); err == nil {
			out[i] = b
		} else if !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("load entries: %w", err)
		}
	}
	return out, nil
}

// getMany loads entries in one round trip; nil where there is none (or it
// does not decode).
func (s *Store) getMany(ctx context.Context, ids []string) ([]*Entry, error) {
	data, err := s.storedMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*Entry, len(ids))
	for i, d := range data {
		if d != nil {
			out[i], _ = decodeEntry(d)
		}
	}
	return out, nil
}

// exists reports whether an entry is parked under id.
func (s *Store) exists(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.entryKey(id), s.legacyKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("exists %s: %w", id, err)
	}
	return n >= 1, nil
}
