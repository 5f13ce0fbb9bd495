package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// PurgeRequest says what to purge: IDs, or the entries Filter selects that
// were parked at least OlderThan ago. Build it with Params.PurgeRequest.
type PurgeRequest struct {
	IDs       []string
	Filter    Filter
	OlderThan time.Duration
	// DryRun reports what would be purged without removing anything.
	DryRun bool
}

// PurgeResult is the outcome of one entry, the line `waq dlq purge --json`
// prints.
type PurgeResult struct {
	ID     string `json:"id"`
	Purged bool   `json:"purged"`
	Error  string `json:"error,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Brief is the entry purged (absent when there was none).
	Brief
}

// Purge removes the selected entries for good, with their indexes and
// counters. emit receives one result per entry; an error from emit stops
// the purge.
func (s *Store) Purge(ctx context.Context, req PurgeRequest, emit func(PurgeResult) error) (Totals, error) {
	var tot Totals
	one := func(id string, b Brief, removed bool, err error) error {
		r := PurgeResult{ID: id, Purged: removed && !req.DryRun, DryRun: req.DryRun}
		if removed {
			r.Brief = b
		}
		switch {
		case err != nil:
			r.Error = err.Error()
		case !removed:
			r.Error = ErrNotFound.Error()
		}
		if r.Error != "" {
			tot.Failed++
		} else {
			tot.Done++
		}
		return emit(r)
	}
	if len(req.IDs) > 0 {
		for ids := req.IDs; len(ids) > 0; {
			batch := ids[:min(len(ids), scanBatch)]
			ids = ids[len(batch):]
			// What each line shows is read before the entry goes.
			entries, bases, err := s.getMany(ctx, batch)
			if err != nil {
				return tot, fmt.Errorf("purge: %w", err)
			}
			for i, id := range batch {
				if ctx.Err() != nil {
					return tot, fmt.Errorf("purge: %w", ctx.Err())
				}
				var b Brief
				if entries[i] != nil {
					b = entries[i].Brief()
				}
				// Found in one base (just looked up in every one), or
				// parked meanwhile: then anywhere.
				in := s.all
				if bases[i] != "" {
					in = []string{bases[i]}
				}
				ok := bases[i] != ""
				var err error
				if !req.DryRun {
					var r Removed
					r, err = s.remove(ctx, in, id, -1)
					ok = r == RemovedOK
				}
				if errors.Is(err, context.Canceled) {
					return tot, fmt.Errorf("purge: %w", err)
				}
				if err := one(id, b, ok, err); err != nil {
					return tot, fmt.Errorf("purge: %w", err)
				}
			}
		}
		return tot, nil
	}
	f := req.Filter
	f.Since = 0
	max := strconv.FormatInt(s.now().Add(-req.OlderThan).UnixMilli(), 10)
	err := s.scanFrom(ctx, f, max, "", scanBatch, statFields, func(rows []row) (bool, error) {
		for _, r := range rows {
			ok := true
			var err error
			if !req.DryRun {
				var rm Removed
				rm, err = s.remove(ctx, []string{r.base}, r.id, -1)
				ok = rm == RemovedOK
				if rm == RemovedNone && err == nil {
					continue // removed meanwhile (replayed, swept): not ours to report
				}
			}
			if err := one(r.id, briefOf(r), ok, err); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return tot, fmt.Errorf("purge: %w", err)
	}
	return tot, nil
}

// Show returns the whole entry with that id, or ErrNotFound, also for an
// entry past the retention that the sweep has not removed yet.
func (s *Store) Show(ctx context.Context, id string) (*Entry, error) {
	e, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.ParkedAt.Before(s.now().Add(-s.retention)) {
		return nil, ErrNotFound
	}
	return e, nil
}
