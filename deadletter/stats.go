package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
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
	// UserIDEntries is how many of them are addressed by business-scoped
	// user ID (message.recipient) rather than phone number (message.to).
	// Entries parked before the store counted them are counted as phone
	// numbers until they go.
	UserIDEntries int64 `json:"user_id_entries"`
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
// dimension (and no --since shorter than the retention, no recipient) it
// reads the counter hashes and corrects them for entries expired but not
// yet swept, so its cost does not grow with the store (for a code, its
// oldest and newest entries are looked for in the indexes of its reasons:
// codeEnds); otherwise it scans the smallest index f names.
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
		all, err := s.counts(ctx, "all")
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		numbers := map[string]bool{}
		for _, m := range all {
			for k := range m {
				if strings.HasPrefix(k, "pn=") {
					numbers[k] = true
				}
			}
		}
		st.numbers = len(numbers)
	}
	st.Isolation, st.Verdict, st.Advice = verdict(st)
	return st, nil
}

// add counts one entry's index values into st with sign delta.
func (st *Stats) add(reason, code, pn, tpl, to string, delta int64) {
	st.Total += delta
	if userIDAddressee(to) {
		st.UserIDEntries += delta
	}
	bump(st.ByReason, reason, delta)
	bump(st.ByCode, code, delta)
	if pn != "" {
		bump(st.ByPhoneNumber, pn, delta)
	}
	if tpl != "" {
		bump(st.ByTemplate, tpl, delta)
	}
}

// userIDAddressee reports whether an entry's addressee is a business-scoped
// user ID: it has a dot, as every BSUID has ("US.1349…") and no phone number
// does. accountLua counts by the same rule, so counted and scanned stats
// agree.
func userIDAddressee(to string) bool { return strings.Contains(to, ".") }

func bump(m map[string]int64, k string, delta int64) {
	if m[k] += delta; m[k] <= 0 {
		delete(m, k)
	}
}

// statEnds is an index that countedStats reads, and its first entry not
// expired, its last one and its oldest.
type statEnds struct {
	base, index         string
	first, last, oldest *redis.ZSliceCmd
}

// countedStats reads the counters of scope ("all" or one dimension with
// indexes) in every base and takes off the entries of its indexes that have
// expired. A recipient is in one shard, so the distinct recipients are the
// sum over the bases, less those both in the legacy base and in their
// shard.
func (s *Store) countedStats(ctx context.Context, scope string, st *Stats) error {
	idx, err := s.indexesOf(ctx, scope)
	if err != nil {
		return err
	}
	// Counters, recipients, the first and the last entry of every index in
	// one round trip.
	cutoff := s.now().Add(-s.retention).UnixMilli()
	counts := make([]*redis.MapStringStringCmd, len(s.all))
	tos := make([]*redis.IntCmd, len(s.all))
	var all []*statEnds
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range s.all {
			ck := countKey(b, scope)
			counts[i] = p.HGetAll(ctx, ck)
			tos[i] = p.HLen(ctx, ck+":to")
			for _, index := range idx[i] {
				all = append(all, &statEnds{base: b, index: index,
					first:  p.ZRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{Min: strconv.FormatInt(cutoff, 10), Max: "+inf", Count: 1}),
					last:   p.ZRevRangeWithScores(ctx, index, 0, 0),
					oldest: p.ZRangeWithScores(ctx, index, 0, 0)})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, m := range counts {
		for k, v := range m.Val() {
			n, _ := strconv.ParseInt(v, 10, 64)
			dim, val, _ := strings.Cut(k, "=")
			switch dim {
			case "n":
				st.Total += n
			case "u":
				st.UserIDEntries += n
			case "reason":
				st.ByReason[val] += n
			case "code":
				st.ByCode[val] += n
			case "pn":
				st.ByPhoneNumber[val] += n
			case "tpl":
				st.ByTemplate[val] += n
			}
		}
		st.Recipients += tos[i].Val()
	}

	// A code's entries are among those of its reasons' indexes: the rows
	// read are its own only.
	code, byCode := strings.CutPrefix(scope, "code=")
	keep := func(r row) bool { return r.found && (!byCode || r.fields[1] == code) }

	// Entries parked before the retention are still counted until the
	// sweep removes them: take them off, so that stats never show them.
	gone := map[ref]int64{} // recipient in base
	var walks []*walk
	for _, e := range all {
		if o := e.oldest.Val(); len(o) == 1 && int64(o[0].Score) < cutoff {
			walks = append(walks, &walk{base: e.base, index: e.index, max: strconv.FormatInt(cutoff-1, 10)})
		}
	}
	err = s.merged(ctx, walks, 0, scanBatch, statFields, keep, func(rows []row) (bool, error) {
		for _, r := range rows {
			st.add(r.fields[0], r.fields[1], r.fields[2], r.fields[3], r.fields[4], -1)
			if r.fields[4] != "" {
				gone[ref{r.base, r.fields[4]}]++
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		keys := make([]ref, 0, len(gone))
		for k := range gone {
			keys = append(keys, k)
		}
		have, err := s.recipientCounts(ctx, scope, keys)
		if err != nil {
			return err
		}
		for i, k := range keys {
			if have[i] <= gone[k] {
				st.Recipients--
			}
		}
	}
	if st.Recipients > 0 && tos[len(tos)-1].Val() > 0 {
		both, err := s.legacyOverlap(ctx, scope, gone)
		if err != nil {
			return err
		}
		st.Recipients -= both
	}
	if st.Total < 0 {
		st.Total = 0
	}
	st.UserIDEntries = max(0, min(st.UserIDEntries, st.Total))
	if st.Total == 0 {
		return nil
	}
	var first, newest *time.Time
	if byCode {
		first, newest, err = s.codeEnds(ctx, all, code, cutoff)
		if err != nil {
			return err
		}
		all = nil
	}
	for _, e := range all {
		if f := e.first.Val(); len(f) == 1 {
			if t := time.UnixMilli(int64(f[0].Score)).UTC(); first == nil || t.Before(*first) {
				first = &t
			}
		}
		if l := e.last.Val(); len(l) == 1 {
			if t := time.UnixMilli(int64(l[0].Score)).UTC(); newest == nil || t.After(*newest) {
				newest = &t
			}
		}
	}
	if first != nil && newest != nil {
		st.Oldest, st.Newest = first, newest
	}
	return nil
}

// firstOfCodeScript finds the oldest entry of a code at or after a score in
// an index (a reason's), reading up to ARGV[5] entries from offset ARGV[3].
// KEYS: the index. ARGV: base, min score, offset, count, code. Returns the
// entries read, then the id and score of the one found (none: nothing).
var firstOfCodeScript = redis.NewScript(loadLua + `
local z = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', tonumber(ARGV[3]), tonumber(ARGV[4]))
for i = 1, #z, 2 do
  local f = load(ARGV[1], z[i])
  if f and f.c == ARGV[5] then return {#z / 2, z[i], z[i+1]} end
end
return {#z / 2}
`)

// codeEnds finds the oldest entry of code not expired and the newest one
// in the indexes of its reasons: as a rule the first entries read, since a
// code is mostly most of its reason's entries; at worst a walk of those
// reasons' entries, in bounded batches.
func (s *Store) codeEnds(ctx context.Context, all []*statEnds, code string, cutoff int64) (first, newest *time.Time, err error) {
	walks := make([]*walk, len(all))
	for i, e := range all {
		walks[i] = &walk{base: e.base, index: e.index, max: "+inf"}
	}
	keep := func(r row) bool { return r.found && r.fields[1] == code }
	err = s.merged(ctx, walks, cutoff, 1, statFields, keep, func(rows []row) (bool, error) {
		t := time.UnixMilli(rows[0].score).UTC()
		newest = &t
		return false, nil
	})
	if err != nil || newest == nil {
		return nil, nil, err
	}
	// A few entries first, twice as many at each round after: the first
	// entry read is the code's, as a rule.
	todo := make([]int, len(all))
	offsets, counts := make([]int, len(all)), make([]int, len(all))
	for i := range todo {
		todo[i], counts[i] = i, 8
	}
	best := int64(-1)
	for round := 0; round < 1_000_000 && len(todo) > 0; round++ {
		calls := make([]scriptCall, len(todo))
		for j, i := range todo {
			calls[j] = scriptCall{firstOfCodeScript, []string{all[i].index}, []any{all[i].base, cutoff, offsets[i], counts[i], code}}
		}
		res, err := s.evalAll(ctx, calls, conn.Replicas{}, nil)
		if err != nil {
			return nil, nil, err
		}
		var more []int
		for j, i := range todo {
			v, err := res[j].Slice()
			if err != nil || len(v) == 0 {
				return nil, nil, fmt.Errorf("first entry of code %s: %v", code, err)
			}
			n, _ := v[0].(int64) // entries read
			if len(v) == 3 {
				if sc, err := strconv.ParseInt(str(v[2]), 10, 64); err == nil && (best < 0 || sc < best) {
					best = sc
				}
			} else if n == int64(counts[i]) {
				offsets[i] += counts[i]
				counts[i] = min(2*counts[i], scanBatch)
				more = append(more, i)
			}
		}
		todo = more
	}
	if best >= 0 {
		t := time.UnixMilli(best).UTC()
		first = &t
	}
	return first, newest, nil
}

// recipientCounts reads the entries each recipient has in its base's
// ":to" hash of scope, in one round trip.
func (s *Store) recipientCounts(ctx context.Context, scope string, who []ref) ([]int64, error) {
	cmds := make([]*redis.StringCmd, len(who))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range who {
			cmds[i] = p.HGet(ctx, countKey(w.base, scope)+":to", w.id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]int64, len(who))
	for i, c := range cmds {
		out[i], _ = strconv.ParseInt(c.Val(), 10, 64)
	}
	return out, nil
}

// legacyOverlap counts the recipients of scope that have entries both in
// the legacy base and in their shard (parked before and after the shards),
// which the sum over the bases counts twice; gone are the entries of each
// that have expired, already taken off. It reads the legacy base's
// recipients, 1,000 at a time: a cost that ends when the last entry parked
// before the shards has expired and been swept.
func (s *Store) legacyOverlap(ctx context.Context, scope string, gone map[ref]int64) (int64, error) {
	if len(s.shards) == 0 {
		return 0, nil
	}
	key := countKey(s.legacy, scope) + ":to"
	var both int64
	var cursor uint64
	for round := 0; round < 1_000_000; round++ {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "*", 1000).Result()
		if err != nil {
			return 0, err
		}
		var who []ref
		for i := 0; i+1 < len(kv); i += 2 {
			n, _ := strconv.ParseInt(kv[i+1], 10, 64)
			if n > gone[ref{s.legacy, kv[i]}] {
				// The shard is the one Park picks for this addressee
				// (baseOf reads only the addressee).
				who = append(who, ref{s.baseOf(&Entry{To: kv[i]}), kv[i]})
			}
		}
		if len(who) > 0 {
			have, err := s.recipientCounts(ctx, scope, who)
			if err != nil {
				return 0, err
			}
			for i, w := range who {
				if have[i] > gone[w] {
					both++
				}
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return both, nil
}

// scannedStats counts by walking the entries f selects.
func (s *Store) scannedStats(ctx context.Context, f Filter, st *Stats) error {
	tos := map[string]struct{}{}
	var oldest, newest int64
	err := s.scan(ctx, f, "", statFields, func(rows []row) (bool, error) {
		for _, r := range rows {
			st.add(r.fields[0], r.fields[1], r.fields[2], r.fields[3], r.fields[4], 1)
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
