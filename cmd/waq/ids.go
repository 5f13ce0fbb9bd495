package main

import (
	"context"
	"errors"

	"github.com/waqhq/waq/deadletter"
)

// expandIDs turns each unique start of an id into the whole id, as the
// tables print ids in full but people type the start; an id no entry has
// stays as given (the operation reports it not found), an ambiguous start
// is an error that lists the candidates.
func expandIDs(ctx context.Context, store *deadletter.Store, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		full, err := store.ResolveID(ctx, id)
		switch {
		case errors.Is(err, deadletter.ErrNotFound):
			full = id
		case err != nil:
			return nil, err
		}
		out[i] = full
	}
	return out, nil
}
