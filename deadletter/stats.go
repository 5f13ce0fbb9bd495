package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/policy"
)

// Stats counts the entries a filter selects, by each dimension, and says
// whether their failure is isolated to one recipient, template or number,
// or broad: the first question of Meta's 131000 troubleshooting guide.
type Stats struct {
	// Total is the number of entries.
	Total int64 `json:"total"`
	// Recipients is the number of distinct recipients among them.
	Recipients int64 `json:"recipients"`
	// ByReason, ByCode ("none" for failures without a code), ByPhoneNumber
	// and ByTemplate count the entries by each value; FreeForm counts those
	// without a template.
	ByReason      map[string]int64 `json:"by_reason"`
	ByCode        map[string]int64 `json:"by_code"`
	ByPhoneNumber map[string]int64 `json:"by_phone_number"`
	ByTemplate    map[string]int64 `json:"by_template"`
	FreeForm      int64            `json:"free_form"`
	// Oldest and Newest are the parked times of the first and last entry.
	Oldest *time.Time `json:"oldest,omitempty"`
	Newest *time.Time `json:"newest,omitempty"`
	// Isolation is the dimension that explains the failures, chosen by
	// what is common to them (verdict.go): "none" (no entries), "single"
	// (one entry), "recipient", "template", "code", "phone_number",
	// "account" or "broad".
	Isolation string `json:"isolation"`
	// Verdict says the same in one line, for a person.
	Verdict string `json:"verdict"`
	// Advice is the next step when the entries share one code or one
	// reason (policy.AdviceFor); absent when they are broad.
	Advice *policy.Advice `json:"advice,omitempty"`

	// numbers is how many phone numbers have entries in the whole store:
	// failures of one number are isolated to it only if others have some.
	numbers int
}

// Stats counts the entries f selects. Without a filter or with one
// dimension (and no --since shorter than the retention, no recipient) it reads the
// counter hashes and corrects them for entries expired but not yet swept,
// so its cost does not grow with the store; otherwise it scans the
// smallest index f names.
func (s *Store) Stats(ctx context.Context, f Filter) (*Stats, error) {
	st := &Stats{ByReason: map[string]int64{}, ByCode: map[string]int64{}, ByPhoneNumber: map[string]int64{}, ByTemplate: map[string]int64{}}
	dims := f.dims()
	var err error
	if len(dims) <= 1 && (f.Since == 0 || f.Since >= s.retention) && f.Recipient == "" {
		scope := "all"
		if len(dims) == 1 {
			scope = dims[0]
		}
		err = s.countedStats(ctx, scope, st)
	} else {
		err = s.scannedStats(ctx, f, st)
	}
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	st.FreeForm = st.Total
	for _, n := range st.ByTemplate {
		st.FreeForm -= n
	}
	st.numbers = len(st.ByPhoneNumber)
	if len(dims) > 0 || f.Since > 0 || f.Recipient != "" {
		all, err := s.rdb.HGetAll(ctx, s.countKey("all")).Result()
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		st.numbers = 0
		for k := range all {
			if strings.HasPrefix(k, "pn=") {
				st.numbers++
			}
		}
	}
	st.Isolation, st.Verdict, st.Advice = verdict(st)
	return st, nil
}

// add counts one entry's index values into st with sign delta.
func (st *Stats) add(reason, code, pn, tpl string, delta int64) {
	st.Total += delta
	bump(st.ByReason, reason, delta)
	bump(st.ByCode, code, delta)
	if pn != "" {
		bump(st.ByPhoneNumber, pn, delta)
	}
	if tpl != "" {
		bump(st.ByTemplate, tpl, delta)
	}
}

func bump(m map[string]int64, k string, delta int64) {
	if m[k] += delta; m[k] <= 0 {
		delete(m, k)
	}
}

// countedStats reads the counters of scope ("all" or one dimension) and
// takes off the entries of its index that have expired.
func (s *Store) countedStats(ctx context.Context, scope string, st *Stats) error {
	ck, index := s.countKey(scope), s.indexKey(scope)
	counts, err := s.rdb.HGetAll(ctx, ck).Result()
	if err != nil {
		return err
	}
	recipients, err := s.rdb.HLen(ctx, ck+":to").Result()
	if err != nil {
		return err
	}
	for k, v := range counts {
		n, _ := strconv.ParseInt(v, 10, 64)
		dim, val, _ := strings.Cut(k, "=")
		switch dim {
		case "n":
			st.Total = n
		case "reason":
			st.ByReason[val] = n
		case "code":
			st.ByCode[val] = n
		case "pn":
			st.ByPhoneNumber[val] = n
		case "tpl":
			st.ByTemplate[val] = n
		}
	}
	st.Recipients = recipients

	// Entries parked before the retention are still counted until the
	// sweep removes them: take them off, so that stats never show them.
	cutoff := s.now().Add(-s.retention).UnixMilli()
	gone := map[string]int64{}
	max, skip := strconv.FormatInt(cutoff-1, 10), ""
	for round := 0; round < 1_000_000; round++ {
		rows, err := s.page(ctx, index, max, skip, 0, scanBatch, statFields)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if !r.found {
				continue
			}
			st.add(r.fields[0], r.fields[1], r.fields[2], r.fields[3], -1)
			if r.fields[4] != "" {
				gone[r.fields[4]]++
			}
		}
		if len(rows) < scanBatch {
			break
		}
		last := rows[len(rows)-1]
		max, skip = strconv.FormatInt(last.score, 10), last.id
	}
	if len(gone) > 0 {
		tos := make([]string, 0, len(gone))
		for to := range gone {
			tos = append(tos, to)
		}
		for len(tos) > 0 {
			n := min(len(tos), 1000)
			vals, err := s.rdb.HMGet(ctx, ck+":to", tos[:n]...).Result()
			if err != nil {
				return err
			}
			for i, v := range vals {
				have, _ := strconv.ParseInt(str(v), 10, 64)
				if have <= gone[tos[i]] {
					st.Recipients--
				}
			}
			tos = tos[n:]
		}
	}
	if st.Total < 0 {
		st.Total = 0
	}
	if st.Total == 0 {
		return nil
	}
	first, err := s.rdb.ZRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{Min: strconv.FormatInt(cutoff, 10), Max: "+inf", Count: 1}).Result()
	if err != nil {
		return err
	}
	last, err := s.rdb.ZRevRangeWithScores(ctx, index, 0, 0).Result()
	if err != nil {
		return err
	}
	if len(first) == 1 && len(last) == 1 {
		o, n := time.UnixMilli(int64(first[0].Score)).UTC(), time.UnixMilli(int64(last[0].Score)).UTC()
		st.Oldest, st.Newest = &o, &n
	}
	return nil
}

// scannedStats counts by walking the entries f selects.
func (s *Store) scannedStats(ctx context.Context, f Filter, st *Stats) error {
	tos := map[string]struct{}{}
	var oldest, newest int64
	err := s.scan(ctx, f, "", statFields, func(rows []row) (bool, error) {
		for _, r := range rows {
			st.add(r.fields[0], r.fields[1], r.fields[2], r.fields[3], 1)
			if r.fields[4] != "" {
				tos[r.fields[4]] = struct{}{}
			}
			if newest == 0 || r.score > newest {
				newest = r.score
			}
			if oldest == 0 || r.score < oldest {
				oldest = r.score
			}
		}
		return true, nil
	})
	st.Recipients = int64(len(tos))
	if st.Total > 0 {
		o, n := time.UnixMilli(oldest).UTC(), time.UnixMilli(newest).UTC()
		st.Oldest, st.Newest = &o, &n
	}
	return err
}
