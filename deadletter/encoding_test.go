package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waqhq/waq/internal/testenv"
)

// TestParkedJobBytes: what a parked job keeps in Redis (the entry, its
// place in every index, its counts), measured from used_memory over
// 20,000 entries shaped as an incident leaves them (benchEntry: a template
// or text message with metadata, Meta's error, one attempt, a recipient
// of its own for most), stays within 1,500 bytes.
func TestParkedJobBytes(t *testing.T) {
	const jobs = 20000
	r := testenv.StartRedis(t, "--appendonly", "no")
	rdb := r.Client(t)
	now := time.Now().UTC()
	s := New(rdb, Options{Prefix: "waq", Now: func() time.Time { return now }})
	before := testenv.UsedMemory(t, rdb)
	parkMany(t, s, jobs, now, func(int) bool { return true }, 0)
	per := float64(testenv.UsedMemory(t, rdb)-before) / jobs
	t.Logf("%.0f bytes of Redis per parked job (%d jobs)", per, jobs)
	if per > 1500 {
		t.Errorf("%.0f bytes per parked job, want at most 1,500", per)
	}
	// What was parked reads back whole.
	e := benchEntry(jobs-1, now, 0)
	got, err := s.Get(context.Background(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(roundTrip(t, e), got) {
		t.Fatalf("read back %+v, want %+v", got, e)
	}
}

// roundTrip is e as JSON gives it back (times and empty slices as decoded).
func roundTrip(t *testing.T, e *Entry) *Entry {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var out Entry
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestEncodingRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, e := range []*Entry{
		benchEntry(1, now, 0),
		benchEntry(6, now, 3),
		{ID: "raw", Reason: "invalid", Raw: []byte{0, 1, 2, 0xff, '\n', '\t'}, ParkedAt: now},
		// Index values with the bytes a header could trip on.
		{ID: "odd", Reason: "template", Template: "a\x00b\nc\td" + string(bytes.Repeat([]byte("é"), 300)), To: "", Recipient: "US.13491208655302741918", ParkedAt: now},
	} {
		data, err := e.encode()
		if err != nil {
			t.Fatal(err)
		}
		head, _, err := splitHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		if head != e.header() {
			t.Errorf("%s: header %q, want %q", e.ID, head, e.header())
		}
		got, err := decodeEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(roundTrip(t, e), got) {
			t.Errorf("%s: decoded %+v, want %+v", e.ID, got, e)
		}
	}
	if _, err := (&Entry{ID: "big", Reason: "template", Template: string(make([]byte, 70000))}).encode(); err == nil {
		t.Error("an index value over 65,535 bytes encoded")
	}
}

// TestDecodeBad: a stored value that is not an entry is an error, never a
// panic or an empty entry.
func TestDecodeBad(t *testing.T) {
	good, err := benchEntry(2, time.Now(), 0).encode()
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := splitHeader(good)
	cases := map[string][]byte{
		"empty":           {},
		"unknown format":  {7, 0, 0},
		"header cut":      good[:5],
		"length past end": {formatZstd1, 0xff, 0xff, 'x'},
		"no frame":        good[:len(good)-len(body)],
		"frame cut":       good[:len(good)-len(body)/2],
		"frame garbage":   append(append([]byte{}, good[:len(good)-len(body)]...), "not zstd at all"...),
		"json garbage":    []byte("{not json"),
	}
	for name, data := range cases {
		if e, err := decodeEntry(data); err == nil {
			t.Errorf("%s: decoded %+v", name, e)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	good, _ := benchEntry(3, time.Now(), 0).encode()
	f.Add(good)
	f.Add([]byte(`{"id":"x","reason":"window"}`))
	f.Add([]byte{formatZstd1, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeEntry(data)
		_, _, _ = splitHeader(data)
	})
}

// legacyParkScript writes an entry as the store did before format 1 (a
// hash of the JSON and the index values), to check that such entries are
// still read, counted and removed.
var legacyParkScript = redis.NewScript(accountLua + `
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'r', ARGV[5], 'c', ARGV[6], 'p', ARGV[7], 't', ARGV[8], 'x', ARGV[9], 's', ARGV[4], 'g', ARGV[10])
account(ARGV[2], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[4], 1)
return 1
`)

func parkLegacy(t *testing.T, s *Store, e *Entry) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	err = legacyParkScript.Run(context.Background(), s.rdb, []string{legacyKey(s.legacy, e.ID)}, s.legacy, e.ID, data, e.ParkedAt.UnixMilli(),
		e.Reason, e.codeKey(), e.PhoneNumberID, e.Template, e.Addressee(), e.Replayed).Err()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLegacyEntries: entries parked before format 1 are listed, shown,
// counted, exported, replaced, removed and swept with the new ones.
func TestLegacyEntries(t *testing.T) {
	ctx := context.Background()
	r := testenv.StartRedis(t)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	clock := testenv.NewClock(now)
	s := New(r.Client(t), Options{Prefix: "t", Retention: 24 * time.Hour, Now: clock.Now})
	old1, old2, cur := benchEntry(0, now, 0), benchEntry(6, now, 0), benchEntry(10, now, 0) // window, template, window
	old1.ParkedAt, old2.ParkedAt, cur.ParkedAt = now.Add(-3*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
	parkLegacy(t, s, old1)
	parkLegacy(t, s, old2)
	if err := s.Park(ctx, cur); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, old1.ID)
	if err != nil || !reflect.DeepEqual(got, roundTrip(t, old1)) {
		t.Fatalf("legacy get: %+v, %v", got, err)
	}
	page, err := s.List(ctx, Filter{}, "", 10)
	if err != nil || len(page.Entries) != 3 || page.Entries[0].ID != cur.ID || page.Entries[2].ID != old1.ID {
		t.Fatalf("list: %+v, %v", page, err)
	}
	page, err = s.List(ctx, Filter{Reason: "window"}, "", 10)
	if err != nil || len(page.Entries) != 2 {
		t.Fatalf("list window: %+v, %v", page, err)
	}
	st, err := s.Stats(ctx, Filter{})
	if err != nil || st.Total != 3 || st.ByReason["window"] != 2 || st.ByReason["template"] != 1 {
		t.Fatalf("stats: %+v, %v", st, err)
	}
	x, err := s.Export(ctx, Filter{})
	if err != nil || x.Total != 3 {
		t.Fatalf("export: %+v, %v", x, err)
	}
	if ok, err := s.Parked(ctx, old1.ID, 0); err != nil || !ok {
		t.Fatalf("parked legacy: %v, %v", ok, err)
	}
	if ok, err := s.Parked(ctx, old1.ID, 1); err != nil || ok {
		t.Fatalf("parked legacy gen 1: %v, %v", ok, err)
	}
	if id, err := s.ResolveID(ctx, old2.ID[:30]); err != nil || id != old2.ID {
		t.Fatalf("resolve legacy: %q, %v", id, err)
	}
	// Parked again (a replay failed the same way): the new form replaces it.
	again := benchEntry(0, now, 1)
	if err := s.Park(ctx, again); err != nil {
		t.Fatal(err)
	}
	if n := s.rdb.Exists(ctx, legacyKey(s.legacy, old1.ID)).Val(); n != 0 {
		t.Fatal("the legacy entry stayed beside its replacement")
	}
	if st, _ := s.Stats(ctx, Filter{}); st.Total != 3 || st.ByReason["window"] != 2 {
		t.Fatalf("stats after replacing: %+v", st)
	}
	if rm, err := s.Remove(ctx, old2.ID, 1); err != nil || rm != RemovedNewer {
		t.Fatalf("remove another generation: %v, %v", rm, err)
	}
	if rm, err := s.Remove(ctx, old2.ID, 0); err != nil || rm != RemovedOK {
		t.Fatalf("remove legacy: %v, %v", rm, err)
	}
	if st, _ := s.Stats(ctx, Filter{}); st.Total != 2 || st.ByReason["template"] != 0 {
		t.Fatalf("stats after remove: %+v", st)
	}
	parkLegacy(t, s, old2)
	clock.Add(22*time.Hour + 30*time.Minute)
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if st, _ := s.Stats(ctx, Filter{}); st.Total != 2 {
		t.Fatalf("stats after sweep: %+v", st)
	}
}
