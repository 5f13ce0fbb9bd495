package deadletter

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/conn"
)

// pageScript returns one batch of an index, newest first, after a cursor,
// with some fields of each entry, in one round trip.
//
// KEYS: the index. ARGV: base, max score ("+inf" or ms), cursor id ("" for
// none), min score (ms), count, field names...
// Returns id, score, then one value per field (nil when missing), for each
// entry.
//
// The cursor is a position, not a rank: members of one score come in
// reverse byte order of id, so the batch starts after every member newer
// than the cursor's score and every member of that score whose id is at or
// above the cursor's. That holds when the cursor's own entry was removed
// meanwhile (a replay or purge removes what it has seen), and when
// thousands of entries share one millisecond.
var pageScript = redis.NewScript(loadLua + `
local idx = KEYS[1]
local P, max, skip, min, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local fields = {}
for i = 6, #ARGV do fields[#fields+1] = ARGV[i] end
-- byte order, as Redis sorts members (Lua's own < follows the locale)
local function ge(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a >= #b
end
local start = 0
if max ~= '+inf' then
  local s = tonumber(max)
  local r = false
  if skip ~= '' then
    local sc = redis.call('ZSCORE', idx, skip)
    if sc and tonumber(sc) == s then r = redis.call('ZREVRANK', idx, skip) + 1 end
  end
  if not r then
    r = redis.call('ZCOUNT', idx, '(' .. max, '+inf')
    if skip ~= '' then
      local off = 0
      for round = 1, 100000 do
        local m = redis.call('ZREVRANGEBYSCORE', idx, max, max, 'LIMIT', off, 500)
        local k = 0
        for _, id in ipairs(m) do
          if ge(id, skip) then k = k + 1 else break end
        end
        off = off + k
        if k < #m or #m < 500 then break end
      end
      r = r + off
    end
  end
  start = r
end
local z = redis.call('ZREVRANGE', idx, start, start + count - 1, 'WITHSCORES')
local out = {}
for i = 1, #z, 2 do
  if tonumber(z[i+1]) < min then break end
  out[#out+1] = z[i]
  out[#out+1] = z[i+1]
  if #fields > 0 then
    local f = load(P, z[i])
    for j = 1, #fields do
      if f then out[#out+1] = f[fields[j]] else out[#out+1] = false end
    end
  end
end
return out
`)

// row is one entry as the page script returns it.
type row struct {
	base   string // the base it is in
	id     string
	score  int64
	fields []string // "" where the field is missing
	found  bool     // the entry's hash exists (the index may be a step ahead)
}

// cursorOf is the cursor that continues after r.
func (r row) cursor() string { return strconv.FormatInt(r.score, 10) + ":" + r.id }

// before reports whether r comes before o, newest first: a higher score,
// or the same score and a higher id (the reverse byte order Redis gives
// members of one score, which Go's string order is).
func (r row) before(o row) bool { return r.score > o.score || r.score == o.score && r.id > o.id }

// parseCursor reads a cursor made by row.cursor. The cursor is the same
// whatever base its entry is in: a position in the order all bases share.
func parseCursor(c string) (max, skip string, err error) {
	if c == "" {
		return "+inf", "", nil
	}
	sc, id, ok := strings.Cut(c, ":")
	if _, perr := strconv.ParseInt(sc, 10, 64); !ok || perr != nil || id == "" {
		return "", "", &ParamError{Name: "cursor", Problem: fmt.Sprintf("%q is not a cursor this store made", c)}
	}
	return sc, id, nil
}

// walk is one base's part of a merged scan: the index it reads, its
// position (the last row read), the rows read and not yet merged.
type walk struct {
	base, index string
	max, skip   string
	batch       int
	buf         []row
	done        bool // the index has nothing more after buf
}

// fill reads the next batch of every walk given, in one round trip.
func (s *Store) fill(ctx context.Context, walks []*walk, floor int64, fields []string) error {
	calls := make([]scriptCall, len(walks))
	for i, w := range walks {
		args := make([]any, 0, 5+len(fields))
		args = append(args, w.base, w.max, w.skip, floor, w.batch)
		for _, f := range fields {
			args = append(args, f)
		}
		calls[i] = scriptCall{pageScript, []string{w.index}, args}
	}
	res, err := s.evalAll(ctx, calls, conn.Replicas{}, nil)
	if err != nil {
		return err
	}
	width := 2 + len(fields)
	for i, w := range walks {
		v, err := res[i].Slice()
		if err != nil {
			return err
		}
		w.buf = make([]row, 0, len(v)/width)
		for j := 0; j+width <= len(v); j += width {
			id, _ := v[j].(string)
			sc, _ := strconv.ParseInt(str(v[j+1]), 10, 64)
			r := row{base: w.base, id: id, score: sc, fields: make([]string, len(fields))}
			for k := range fields {
				if v[j+2+k] != nil {
					r.fields[k] = str(v[j+2+k])
					r.found = true
				}
			}
			if len(fields) == 0 {
				r.found = true
			}
			w.buf = append(w.buf, r)
		}
		if len(w.buf) < w.batch {
			w.done = true
		} else {
			last := w.buf[len(w.buf)-1]
			w.max, w.skip = strconv.FormatInt(last.score, 10), last.id
		}
	}
	return nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// The fields a scan reads of each entry: its index values first, so that
// f.match can be checked, then what the caller needs.
var (
	indexFields = []string{"r", "c", "p", "t", "x"}
	listFields  = []string{"r", "c", "p", "t", "x", "d"}
	statFields  = []string{"r", "c", "p", "t", "x"}
	replayField = []string{"r", "c", "p", "t", "x", "d", "g"}
)

// scanBatch is the number of entries one page script reads. Big enough to
// keep round trips few, small enough to keep Redis responsive.
const scanBatch = 500

// scan walks the entries f selects (not expired), newest first, from
// cursor, in batches of rows whose index fields match f. fields must start
// with indexFields, or be none when f.indexed(). visit returns false to stop. It iterates the smallest
// index f names in each base and never blocks Redis for more than one
// batch.
func (s *Store) scan(ctx context.Context, f Filter, cursor string, fields []string, visit func(rows []row) (bool, error)) error {
	return s.scanSized(ctx, f, cursor, scanBatch, fields, visit)
}

// scanSized is scan for a caller that wants first rows (then maybe more):
// a page of 20 should not read 500 entries.
func (s *Store) scanSized(ctx context.Context, f Filter, cursor string, first int, fields []string, visit func(rows []row) (bool, error)) error {
	max, skip, err := parseCursor(cursor)
	if err != nil {
		return err
	}
	return s.scanFrom(ctx, f, max, skip, first, fields, visit)
}

// scanFrom is scan from a position: entries with a score below max, or
// equal to it with an id below skip ("" for all of that score).
func (s *Store) scanFrom(ctx context.Context, f Filter, max, skip string, first int, fields []string, visit func(rows []row) (bool, error)) error {
	walks, err := s.plan(ctx, f, max, skip)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	keep := func(r row) bool {
		return r.found && (len(fields) == 0 || f.match(r.fields[0], r.fields[1], r.fields[2], r.fields[3], r.fields[4]))
	}
	return s.merged(ctx, walks, s.minScore(f), first, fields, keep, visit)
}

// merged reads walks as one index, newest first, down to score floor, and
// visits the rows keep accepts in batches (every row a batch of the walks
// brought that precedes the first walk to run out). A caller that wants
// first rows gets first batches of about twice its share of them from each
// walk, and the walks that run out read again, at least twice as much,
// and at least what is still wanted: one round trip for a page, as a rule,
// whether the entries spread over the shards or sit in one.
func (s *Store) merged(ctx context.Context, walks []*walk, floor int64, first int, fields []string, keep func(row) bool, visit func(rows []row) (bool, error)) error {
	if first < 1 || first > scanBatch {
		first = scanBatch
	}
	for _, w := range walks {
		w.batch = 0
	}
	share := (first+len(walks)-1)/max(len(walks), 1)*2 + 4
	kept := 0
	for round := 0; round < 1_000_000; round++ {
		var need []*walk
		for _, w := range walks {
			if len(w.buf) > 0 || w.done {
				continue
			}
			if w.batch == 0 {
				w.batch = min(share, first, scanBatch)
			} else {
				w.batch = min(max(2*w.batch, first-kept), scanBatch)
			}
			need = append(need, w)
		}
		if len(need) > 0 {
			if err := s.fill(ctx, need, floor, fields); err != nil {
				return fmt.Errorf("scan: %w", err)
			}
		}
		rows, end := mergeRows(walks, keep)
		kept += len(rows)
		if len(rows) > 0 {
			more, err := visit(rows)
			if err != nil || !more {
				return err
			}
		}
		if end {
			return nil
		}
	}
	return fmt.Errorf("scan: more than %d batches", 1_000_000)
}

// mergeRows takes the rows of the walks in order, newest first, as long as
// every walk that is not done has a row to compare, and returns those keep
// accepts; end is true when every walk is done and merged.
func mergeRows(walks []*walk, keep func(row) bool) (rows []row, end bool) {
	for {
		var next *walk
		for _, w := range walks {
			if len(w.buf) == 0 {
				if !w.done {
					return rows, false
				}
				continue
			}
			if next == nil || w.buf[0].before(next.buf[0]) {
				next = w
			}
		}
		if next == nil {
			return rows, true
		}
		r := next.buf[0]
		next.buf = next.buf[1:]
		if keep(r) {
			rows = append(rows, r)
		}
	}
}

// plan is the walks of a scan for f from (max, skip): in each base, the
// smallest index f names, or when f names none that has one (no filter, or
// a code alone), the indexes of the reasons its counters name
// (indexesOf). A base is left out when its counters prove nothing in it
// matches (two dimensions that never meet there, like a code of another
// reason), which saves walking a large index to find nothing.
func (s *Store) plan(ctx context.Context, f Filter, max, skip string) ([]*walk, error) {
	dims := f.dims()
	var own []string // the dimensions with an index
	for _, d := range dims {
		if indexedScope(d) {
			own = append(own, d)
		}
	}
	walks := make([]*walk, 0, len(s.all))
	if len(own) == 0 {
		scope := "all"
		if len(dims) > 0 {
			scope = dims[0] // a code
		}
		idx, err := s.indexesOf(ctx, scope)
		if err != nil {
			return nil, err
		}
		for i, b := range s.all {
			for _, k := range idx[i] {
				walks = append(walks, &walk{base: b, index: k, max: max, skip: skip})
			}
		}
		return walks, nil
	}
	cards := make([][]*redis.IntCmd, len(s.all))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range s.all {
			for _, d := range own {
				cards[i] = append(cards[i], p.ZCard(ctx, indexKey(b, d)))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	best := make([]int, len(s.all))
	for i := range s.all {
		for j := range own {
			if cards[i][j].Val() < cards[i][best[i]].Val() {
				best[i] = j
			}
		}
	}
	// The counter hash of the smallest dimension counts the others among
	// its entries: a zero is a proof of no match.
	others := make([]*redis.SliceCmd, len(s.all))
	if len(dims) > 1 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, b := range s.all {
				if cards[i][best[i]].Val() == 0 {
					continue
				}
				var o []string
				for _, d := range dims {
					if d != own[best[i]] {
						o = append(o, d)
					}
				}
				others[i] = p.HMGet(ctx, countKey(b, own[best[i]]), o...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for i, b := range s.all {
		if cards[i][best[i]].Val() == 0 || others[i] != nil && slices.Contains(others[i].Val(), nil) {
			continue
		}
		walks = append(walks, &walk{base: b, index: indexKey(b, own[best[i]]), max: max, skip: skip})
	}
	return walks, nil
}

// Page is a page of entries, newest first, and the cursor of the next one
// ("" when there is none).
type Page struct {
	Entries []*Entry
	Next    string
}

// List returns up to limit entries matching f, newest first, starting after
// cursor (from a previous Page.Next; "" for the first page). Expired
// entries are never listed, swept or not. It iterates the smallest index
// the filter names, in bounded batches.
func (s *Store) List(ctx context.Context, f Filter, cursor string, limit int) (Page, error) {
	if limit <= 0 {
		limit = 100
	}
	// Walk the index fields only, then load the whole entries of the page:
	// a filter of two dimensions may skip many entries to find a page. An
	// index that answers the filter alone needs no fields: its ids are the
	// page (one a script of another process removed meanwhile is left out
	// below).
	fields := indexFields
	if f.indexed() {
		fields = nil
	}
	var rows []row
	err := s.scanSized(ctx, f, cursor, limit, fields, func(batch []row) (bool, error) {
		for _, r := range batch {
			rows = append(rows, r)
			if len(rows) == limit {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return Page{}, err
	}
	refs := make([]ref, len(rows))
	for i, r := range rows {
		refs[i] = ref{r.base, r.id}
	}
	data, err := s.storedAt(ctx, refs)
	if err != nil {
		return Page{}, fmt.Errorf("list: %w", err)
	}
	var page Page
	for _, e := range decodeAll(data) {
		if e != nil {
			// Removed meanwhile (replayed, purged): not listed.
			page.Entries = append(page.Entries, e)
		}
	}
	if len(rows) > 0 {
		page.Next = rows[len(rows)-1].cursor()
	}
	// A full page has a next one, possibly empty: finding out whether a
	// further entry matches could mean walking the rest of a large index.
	if len(rows) < limit {
		page.Next = ""
	}
	return page, nil
}
