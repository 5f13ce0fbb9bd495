package deadletter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
	"github.com/waqhq/waq/ledger"
)

// ErrNotFound means no entry has that id.
var ErrNotFound = errors.New("no dead-letter entry with that id")

// Store is the Redis dead-letter store. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	// shards are the key prefixes entries are parked under (shard.go),
	// legacy the store's prefix before them, still read; all is both.
	shards    []string
	legacy    string
	all       []string
	retention time.Duration
	now       func() time.Time
	wait      conn.Replicas
	// ledger gives a replayed job its attempts back (RestoreHistory).
	ledger *ledger.Ledger
}

// Options configure a Store; the zero value means the defaults.
type Options struct {
	// Prefix of every key. Defaults to "waq".
	Prefix string
	// Retention is how long an entry is kept. Defaults to 720h.
	Retention time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// WaitReplicas is how many replicas must acknowledge a parked entry
	// before Park returns (Redis WAIT, in the write's own round trip).
	// Defaults to 0: the primary's answer suffices. Not supported on a
	// Redis Cluster.
	WaitReplicas int
	// WaitTimeout bounds that wait. Defaults to 1s.
	WaitTimeout time.Duration
}

// New returns a store over rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	s := &Store{rdb: rdb, retention: opts.Retention, now: opts.Now,
		wait: conn.Replicas{N: opts.WaitReplicas, Timeout: opts.WaitTimeout}}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "waq"
	}
	s.shards, s.legacy = shardBases(prefix)
	s.ledger = ledger.New(rdb, ledger.Options{Prefix: prefix})
	s.all = append(append([]string{}, s.shards...), s.legacy)
	if s.retention <= 0 {
		s.retention = 720 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Retention is how long entries are kept.
func (s *Store) Retention() time.Duration { return s.retention }

// entryKey is where an entry is stored (format 1) in base; legacyKey
// where an entry parked before format 1 is (a hash, read until it
// expires: only in the legacy base, which is where the store was then).
func entryKey(base, id string) string    { return base + ":v:" + id }
func legacyKey(base, id string) string   { return base + ":e:" + id }
func indexKey(base, dim string) string   { return base + ":i:" + dim }
func countKey(base, scope string) string { return base + ":c:" + scope }
func entryKeys(base, id string) []string { return []string{entryKey(base, id), legacyKey(base, id)} }

// accountLua adds (delta 1) or removes (delta -1) an entry's contribution to
// the indexes and counters. Each dimension ("reason=window", "code=131047",
// "pn=1065...", "tpl=order_update") has a counter hash, and "all" spans
// every entry. A counter hash counts its entries ("n"), their values in the
// other dimensions, those addressed by business-scoped user ID ("u",
// userIDAddressee), and (in ":to") their recipients, which is what the
// isolation verdict of stats needs.
//
// Reasons, phone numbers and templates have an index of ids each (sorted
// sets scored by parked time, the costliest part of an entry after the
// entry itself: about 150 bytes each). "all" and codes have none: every
// entry has one reason, so the reasons' indexes are "all" between them
// (indexedScopes), and a code is found in the indexes of the reasons its
// counter names (one or two, as a rule: a code mostly parks for one
// reason), filtered by the entry's header. Entries parked before are in an
// ":i:all" and ":i:code=" index too, which a removal still clears.
const accountLua = loadLua + `
local P = ARGV[1]
local function account(id, reason, code, pn, tpl, to, score, delta)
  local d = {'reason=' .. reason, 'code=' .. code}
  if pn ~= '' then d[#d+1] = 'pn=' .. pn end
  if tpl ~= '' then d[#d+1] = 'tpl=' .. tpl end
  local scopes = {'all'}
  for _, x in ipairs(d) do scopes[#scopes+1] = x end
  for i, sc in ipairs(scopes) do
    local ik = P .. ':i:' .. sc
    if delta < 0 then redis.call('ZREM', ik, id) elseif i ~= 1 and i ~= 3 then redis.call('ZADD', ik, score, id) end
    local h = P .. ':c:' .. sc
    if redis.call('HINCRBY', h, 'n', delta) <= 0 then
      redis.call('DEL', h, h .. ':to')
    else
      for _, x in ipairs(d) do
        if redis.call('HINCRBY', h, x, delta) <= 0 then redis.call('HDEL', h, x) end
      end
      if to ~= '' and redis.call('HINCRBY', h .. ':to', to, delta) <= 0 then
        redis.call('HDEL', h .. ':to', to)
      end
      if string.find(to, '.', 1, true) and redis.call('HINCRBY', h, 'u', delta) <= 0 then
        redis.call('HDEL', h, 'u')
      end
    end
  end
end
local function remove(id)
  local f, k = load(P, id)
  if not f then return false end
  account(id, f.r, f.c, f.p, f.t, f.x, 0, -1)
  redis.call('DEL', k)
  return true
end
`

// parkScript writes an entry, replacing an older entry of the same id.
// KEYS: entry, legacy entry. ARGV: base, id, stored entry, score, reason,
// code, pn, tpl, to.
var parkScript = redis.NewScript(accountLua + `
remove(ARGV[2])
redis.call('SET', KEYS[1], ARGV[3])
account(ARGV[2], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[4], 1)
return 1
`)

// removeScript deletes an entry, only if its generation is ARGV[3] (or any,
// when ARGV[3] is "") and, when ARGV[4] is given, only if it is still that
// stored form. KEYS: entry, legacy entry. ARGV: base, id, gen[, stored].
// Returns 1 removed, 0 missing, -1 a different generation (or entry) is
// parked now.
var removeScript = redis.NewScript(accountLua + `
local f = load(P, ARGV[2])
if not f then return 0 end
if ARGV[3] ~= '' and f.g ~= ARGV[3] then return -1 end
if ARGV[4] and f.d ~= ARGV[4] then return -1 end
remove(ARGV[2])
return 1
`)

// sweepScript removes up to ARGV[3] entries parked before ARGV[2] (ms).
// KEYS: an index (a reason's, or the ":i:all" of entries parked before).
// ARGV: base, cutoff, limit.
var sweepScript = redis.NewScript(accountLua + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  if not remove(id) then redis.call('ZREM', KEYS[1], id) end
end
return #ids
`)

// Park stores the entry durably (Redis has confirmed the write, and with
// WaitReplicas that many replicas too, when it returns nil). An entry with
// the same id is replaced.
func (s *Store) Park(ctx context.Context, e *Entry) error {
	if e.ID == "" || e.Reason == "" {
		return errors.New("park: entry needs an id and a reason")
	}
	if e.ParkedAt.IsZero() {
		e.ParkedAt = s.now().UTC()
	}
	if e.Attempts == nil {
		e.Attempts = []ledger.Attempt{}
	}
	data, err := e.encode()
	if err != nil {
		return fmt.Errorf("park %s: encode: %w", e.ID, err)
	}
	base := s.baseOf(e)
	park := []scriptCall{{parkScript, entryKeys(base, e.ID), []any{base, e.ID, data, e.ParkedAt.UnixMilli(), e.Reason, e.codeKey(),
		e.PhoneNumberID, e.Template, e.Addressee()}}}
	if _, err := s.evalAll(ctx, park, s.wait, nil); err != nil {
		return fmt.Errorf("park %s: %w", e.ID, err)
	}
	if err := s.parkedOnce(ctx, e, base, data); err != nil {
		return fmt.Errorf("park %s: remove the entry it replaces: %w", e.ID, err)
	}
	return nil
}

// parkedOnce leaves one entry of e's id, once e is written (data, in base):
// an entry of it in another base (parked before the shards, or for another
// recipient, as a webhook failure may name it) goes, unless it is the
// later one, and then e goes. Later is a higher generation, then a later
// parked time, then the base first in byte order: the same order for every
// process, so two parks of one job at once for two recipients leave the
// same one, whichever runs first. The other bases are read after e's write
// has returned, never in its round trip: of two such parks at least one
// then sees the other's entry (on a Redis Cluster the two round trips
// reach the nodes in any order, and both could see nothing, or both
// remove the other's entry). Every removal is of the entry that was read
// (its stored form), never of one written since. Between the write and
// the removal a reader may see the entry twice, never not at all.
func (s *Store) parkedOnce(ctx context.Context, e *Entry, base string, data []byte) error {
	refs := make([]ref, 0, len(s.all)-1)
	for _, b := range s.all {
		if b != base {
			refs = append(refs, ref{b, e.ID})
		}
	}
	found, err := s.storedAt(ctx, refs)
	if err != nil {
		return err
	}
	type copyOf struct {
		base string
		data []byte
		gen  int
		at   time.Time
	}
	copies := []copyOf{{base, data, e.Replayed, e.ParkedAt}}
	for i, d := range found {
		if d == nil {
			continue
		}
		c := copyOf{base: refs[i].base, data: d, gen: -1}
		if o, err := decodeEntry(d); err == nil {
			c.gen, c.at = o.Replayed, o.ParkedAt
		}
		copies = append(copies, c)
	}
	if len(copies) == 1 {
		return nil
	}
	later := func(a, b copyOf) bool {
		switch {
		case a.gen != b.gen:
			return a.gen > b.gen
		case !a.at.Equal(b.at):
			return a.at.After(b.at)
		}
		return a.base < b.base
	}
	keep := 0
	for i := range copies {
		if later(copies[i], copies[keep]) {
			keep = i
		}
	}
	var removes []scriptCall
	for i, c := range copies {
		if i != keep {
			removes = append(removes, scriptCall{removeScript, entryKeys(c.base, e.ID), []any{c.base, e.ID, "", c.data}})
		}
	}
	_, err = s.evalAll(ctx, removes, s.wait, nil)
	return err
}

// Get returns the entry with that id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Entry, error) {
	data, err := s.stored(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if data == nil {
		return nil, ErrNotFound
	}
	e, err := decodeEntry(data)
	if err != nil {
		return nil, fmt.Errorf("get %s: stored entry does not decode: %w", id, err)
	}
	return e, nil
}

// Parked reports whether generation gen (or a later one) of job id is
// parked.
func (s *Store) Parked(ctx context.Context, id string, gen int) (bool, error) {
	// The stored form, looked up in every base in one round trip: plain
	// GETs cost Redis less than a script in each base would.
	data, err := s.stored(ctx, id)
	if err != nil {
		return false, fmt.Errorf("parked %s: %w", id, err)
	}
	if data == nil {
		return false, nil
	}
	n, err := generation(data)
	if err != nil {
		return false, fmt.Errorf("parked %s: stored entry does not decode: %w", id, err)
	}
	return n >= gen, nil
}

// Removed says what Remove did.
type Removed int

// The results of Remove.
const (
	RemovedNone  Removed = 0  // there was no entry
	RemovedOK    Removed = 1  // the entry is gone
	RemovedNewer Removed = -1 // a different generation is parked now; kept
)

// Remove deletes entry id if it is still generation gen (gen < 0: any).
func (s *Store) Remove(ctx context.Context, id string, gen int) (Removed, error) {
	return s.remove(ctx, s.all, id, gen)
}

// remove is Remove in the bases given: all of them for an id alone, the
// one an entry was read from when it is known.
func (s *Store) remove(ctx context.Context, bases []string, id string, gen int) (Removed, error) {
	g := ""
	if gen >= 0 {
		g = strconv.Itoa(gen)
	}
	calls := make([]scriptCall, len(bases))
	for i, b := range bases {
		calls[i] = scriptCall{removeScript, entryKeys(b, id), []any{b, id, g}}
	}
	res, err := s.evalAll(ctx, calls, conn.Replicas{}, nil)
	if err != nil {
		return RemovedNone, fmt.Errorf("remove %s: %w", id, err)
	}
	out := RemovedNone
	for _, c := range res {
		switch n, _ := c.Int(); Removed(n) {
		case RemovedOK:
			return RemovedOK, nil
		case RemovedNewer:
			out = RemovedNewer
		}
	}
	return out, nil
}

// Sweep removes entries older than the retention, in bounded batches, and
// returns how many it removed.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	const batch = 500
	cutoff := s.now().Add(-s.retention).UnixMilli()
	total := 0
	idx, err := s.indexesOf(ctx, "all")
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	var todo []ref // base, index
	for i, b := range s.all {
		// The ":i:all" of entries parked before the reasons' indexes were
		// "all": what its entries' removal left of it goes too.
		todo = append(todo, ref{b, indexKey(b, "all")})
		for _, k := range idx[i] {
			todo = append(todo, ref{b, k})
		}
	}
	for i := 0; i < 1000 && len(todo) > 0; i++ {
		calls := make([]scriptCall, len(todo))
		for j, t := range todo {
			calls[j] = scriptCall{sweepScript, []string{t.id}, []any{t.base, cutoff, batch}}
		}
		res, err := s.evalAll(ctx, calls, conn.Replicas{}, nil)
		var full []ref
		for j, c := range res {
			n, _ := c.Int()
			total += n
			if n == batch {
				full = append(full, todo[j])
			}
		}
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		todo = full
	}
	return total, nil
}

// Filter selects entries. The zero value selects all.
type Filter struct {
	Reason        string
	Code          *int
	PhoneNumberID string
	Template      string
	// Recipient keeps entries for one recipient: a number (to) or a
	// business-scoped user ID (recipient). It narrows a scan; it has no
	// index of its own.
	Recipient string
	// Since keeps entries parked within this long before now.
	Since time.Duration
}

// dims are the index dimensions the filter names.
func (f Filter) dims() []string {
	var d []string
	if f.Reason != "" {
		d = append(d, "reason="+f.Reason)
	}
	if f.Code != nil {
		d = append(d, "code="+strconv.Itoa(*f.Code))
	}
	if f.PhoneNumberID != "" {
		d = append(d, "pn="+f.PhoneNumberID)
	}
	if f.Template != "" {
		d = append(d, "tpl="+f.Template)
	}
	return d
}

// indexed reports whether the indexes a scan walks select what the filter
// does (with the scores for Since), without reading the entries: one
// dimension that has indexes, or none (the reasons' indexes).
func (f Filter) indexed() bool { return len(f.dims()) <= 1 && f.Recipient == "" && f.Code == nil }

// indexedScopes says whether a scope has an index of its own: reasons,
// phone numbers and templates; not "all", not codes (accountLua).
func indexedScope(scope string) bool { return scope != "all" && !strings.HasPrefix(scope, "code=") }

// indexesOf returns, for every base, the index keys that hold the entries
// of scope: its own index, or for "all" and a code, the indexes of the
// reasons its counter hash names (a superset for a code: the caller
// filters), in one round trip.
func (s *Store) indexesOf(ctx context.Context, scope string) ([][]string, error) {
	out := make([][]string, len(s.all))
	if indexedScope(scope) {
		for i, b := range s.all {
			out[i] = []string{indexKey(b, scope)}
		}
		return out, nil
	}
	counts, err := s.counts(ctx, scope)
	if err != nil {
		return nil, err
	}
	for i, b := range s.all {
		out[i] = reasonIndexes(b, counts[i])
	}
	return out, nil
}

// reasonIndexes are the index keys of the reasons a counter hash of base
// counts, in a stable order.
func reasonIndexes(base string, counts map[string]string) []string {
	var out []string
	for k := range counts {
		if strings.HasPrefix(k, "reason=") {
			out = append(out, indexKey(base, k))
		}
	}
	sort.Strings(out)
	return out
}

// IsZero reports whether the filter selects everything.
func (f Filter) IsZero() bool { return len(f.dims()) == 0 && f.Since == 0 && f.Recipient == "" }

// match checks the stored index fields of one entry against the filter.
func (f Filter) match(reason, code, pn, tpl, recipient string) bool {
	return (f.Recipient == "" || f.Recipient == recipient) &&
		(f.Reason == "" || f.Reason == reason) &&
		(f.Code == nil || strconv.Itoa(*f.Code) == code) &&
		(f.PhoneNumberID == "" || f.PhoneNumberID == pn) &&
		(f.Template == "" || f.Template == tpl)
}

// minScore is the oldest parked time (ms) the filter and retention admit.
func (s *Store) minScore(f Filter) int64 {
	now := s.now()
	min := now.Add(-s.retention)
	if f.Since > 0 && now.Add(-f.Since).After(min) {
		min = now.Add(-f.Since)
	}
	return min.UnixMilli()
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// CountByReason returns how many entries each reason has, from the counters
// (no scan).
func (s *Store) CountByReason(ctx context.Context) (map[string]int64, error) {
	all, err := s.counts(ctx, "all")
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	out := map[string]int64{}
	for _, m := range all {
		for k, v := range m {
			if r, ok := strings.CutPrefix(k, "reason="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[r] += n
			}
		}
	}
	return out, nil
}

// counts reads the counter hash of scope in every base, in one round trip.
func (s *Store) counts(ctx context.Context, scope string) ([]map[string]string, error) {
	cmds := make([]*redis.MapStringStringCmd, len(s.all))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range s.all {
			cmds[i] = p.HGetAll(ctx, countKey(b, scope))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}
