package deadletter

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
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
	id     string
	score  int64
	fields []string // "" where the field is missing
	found  bool     // the entry's hash exists (the index may be a step ahead)
}

// cursorOf is the cursor that continues after r.
func (r row) cursor() string { return strconv.FormatInt(r.score, 10) + ":" + r.id }

// parseCursor reads a cursor made by row.cursor.
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

// page reads up to count rows of index with score in [min, max] after the
// cursor position (max, skip).
func (s *Store) page(ctx context.Context, index, max, skip string, min int64, count int, fields []string) ([]row, error) {
	args := make([]any, 0, 5+len(fields))
	args = append(args, s.base(), max, skip, min, count)
	for _, f := range fields {
		args = append(args, f)
	}
	v, err := pageScript.Run(ctx, s.rdb, []string{index}, args...).Slice()
	if err != nil {
		return nil, err
	}
	width := 2 + len(fields)
	rows := make([]row, 0, len(v)/width)
	for i := 0; i+width <= len(v); i += width {
		id, _ := v[i].(string)
		sc, _ := strconv.ParseInt(str(v[i+1]), 10, 64)
		r := row{id: id, score: sc, fields: make([]string, len(fields))}
		for j := range fields {
			if v[i+2+j] != nil {
				r.fields[j] = str(v[i+2+j])
				r.found = true
			}
		}
		if len(fields) == 0 {
			r.found = true
		}
		rows = append(rows, r)
	}
	return rows, nil
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
// with indexFields. visit returns false to stop. It iterates the smallest
// index f names and never blocks Redis for more than one batch.
func (s *Store) scan(ctx context.Context, f Filter, cursor string, fields []string, visit func(rows []row) (bool, error)) error {
	return s.scanSized(ctx, f, cursor, scanBatch, fields, visit)
}

// scanSized is scan with a first batch of size first (then doubling up to
// scanBatch): a page of 20 should not read 500 entries.
func (s *Store) scanSized(ctx context.Context, f Filter, cursor string, first int, fields []string, visit func(rows []row) (bool, error)) error {
	max, skip, err := parseCursor(cursor)
	if err != nil {
		return err
	}
	return s.scanFrom(ctx, f, max, skip, first, fields, visit)
}

// scanFrom is scan from a position: entries with a score below max, or
// equal to it with an id below skip ("" for all of that score).
func (s *Store) scanFrom(ctx context.Context, f Filter, max, skip string, batch int, fields []string, visit func(rows []row) (bool, error)) error {
	if batch < 1 || batch > scanBatch {
		batch = scanBatch
	}
	index, empty, err := s.smallestIndex(ctx, f)
	if err != nil || empty {
		return err
	}
	min := s.minScore(f)
	for round := 0; round < 1_000_000; round++ {
		rows, err := s.page(ctx, index, max, skip, min, batch, fields)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		last := rows[len(rows)-1]
		max, skip = strconv.FormatInt(last.score, 10), last.id
		keep := rows[:0:0]
		for _, r := range rows {
			if r.found && f.match(r.fields[0], r.fields[1], r.fields[2], r.fields[3], r.fields[4]) {
				keep = append(keep, r)
			}
		}
		if len(keep) > 0 {
			more, err := visit(keep)
			if err != nil || !more {
				return err
			}
		}
		if len(rows) < batch {
			return nil
		}
		if batch *= 2; batch > scanBatch {
			batch = scanBatch
		}
	}
	return fmt.Errorf("scan: more than %d batches", 1_000_000)
}

// smallestIndex picks the index to iterate for f: the smallest of those it
// names, or "all". empty is true when the counters prove nothing matches
// (two dimensions that never meet, like a code of another reason), which
// saves walking a large index to find nothing.
func (s *Store) smallestIndex(ctx context.Context, f Filter) (index string, empty bool, err error) {
	dims := f.dims()
	if len(dims) == 0 {
		return s.indexKey("all"), false, nil
	}
	cards := make([]*redis.IntCmd, len(dims))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range dims {
			cards[i] = p.ZCard(ctx, s.indexKey(d))
		}
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("scan: %w", err)
	}
	idx := make([]int, len(dims))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return cards[idx[a]].Val() < cards[idx[b]].Val() })
	best := dims[idx[0]]
	if cards[idx[0]].Val() == 0 {
		return "", true, nil
	}
	if len(dims) > 1 {
		// The counter hash of the smallest dimension counts the others
		// among its entries: a zero is a proof of no match.
		others := make([]string, 0, len(dims)-1)
		for _, d := range dims {
			if d != best {
				others = append(others, d)
			}
		}
		vals, err := s.rdb.HMGet(ctx, s.countKey(best), others...).Result()
		if err != nil {
			return "", false, fmt.Errorf("scan: %w", err)
		}
		for _, v := range vals {
			if v == nil {
				return "", true, nil
			}
		}
	}
	return s.indexKey(best), false, nil
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
	// a filter of two dimensions may skip many entries to find a page.
	var rows []row
	err := s.scanSized(ctx, f, cursor, limit, indexFields, func(batch []row) (bool, error) {
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
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	entries, err := s.getMany(ctx, ids)
	if err != nil {
		return Page{}, fmt.Errorf("list: %w", err)
	}
	var page Page
	for _, e := range entries {
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
