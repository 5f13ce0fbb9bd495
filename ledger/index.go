package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// The compact index: what the ledger keeps of every sent job for the whole
// retention, in a few bytes per job. Redis stores a small hash (up to
// hash-max-listpack-entries fields of at most hash-max-listpack-value bytes,
// 128 and 64 by default) as one flat listpack, at about two bytes of overhead
// per field and value, where a key of its own costs some 70 bytes before its
// value. So the records are fields of bucket hashes, keyed by a digest:
//
//	P:lj:<w>:<b>  job records: field = 7-byte digest of the job id,
//	              value = the 40-byte record (encodeRecord)
//	P:lw:<w>:<b>  wamid index: field = 6-byte digest of the wamid,
//	              value = the job id (16 bytes when it is a UUID)
//	P:lx:<hex>    the id of a job whose id is too long for a field value
//	P:ln:<w>      how many records window w got (sizes window w+1)
//	P:lb:<w>      window w's bucket count, fixed when the window starts
//	P:lb:<w>:<k>  step k of a window that outgrew it: "<count>:<from ms>"
//
// Redis 7.0 cannot expire a hash's fields, so time is cut into windows of a
// quarter of the retention: window w's keys expire all at once, one
// retention after the window ends (a record lives between one retention and
// 1.25 of it). A lookup by id reads the same field in each window still
// alive, five at most, newest first. Each window's bucket count comes from
// the previous window's count, at about 64 records a bucket, so that buckets
// stay listpacks (Poisson spread: the fullest of a million buckets holds
// about 110); the first window has Options.Buckets. A window that grows
// much faster than its predecessor (the first one of a deployment, as a
// rule) gets more buckets as it goes, in steps (below).

// windowsAlive is how many windows a lookup reads.
const windowsAlive = 5

// perBucket is the fill a window's bucket count aims at.
const perBucket = 64

// recordLen is the length of an encoded record; records written before
// message_status and pricing were kept have 38 bytes, read as having
// neither.
const (
	recordLen    = 40
	oldRecordLen = 38
)

// A job's field is a 56-bit digest of its id, besides the bits that chose
// the bucket: two ids collide only if they share both, and a new id is then
// taken for a sent one, with a chance of about 5 × 64 / 2^56 (five windows
// of 64 records a bucket), one in 2 × 10^14: once in 6,000 years at 100
// million jobs a day. A wamid's field is 48 bits: a collision there would
// match a status to another job, whose wamid sum still refuses a failure.
const (
	jobDigestLen   = 7
	wamidDigestLen = 6
)

// Record flags (byte 0, below the status rank × 4).
const (
	flagSent     = 1 // the job's outcome is "sent" as this wamid
	flagFailDone = 2 // a webhook failure of this wamid was acted on
)

// statusRanks orders delivery statuses; the rank is what a record keeps.
var statusRanks = map[string]byte{"sent": 1, "delivered": 2, "read": 3, "failed": 4}

var statusNames = [...]string{"", "sent", "delivered", "read", "failed"}

// record is one job's entry in the compact index.
type record struct {
	flags    byte
	status   byte
	sentGen  int
	sentAt   time.Time
	statusAt time.Time
	wsum     uint32
	traceID  [16]byte
	spanID   [8]byte
	bodySeq  uint64
	// meta is bytes 38 and 39: pricing and message_status (pricing.go).
	meta [2]byte
}

// putUint is v in len(b) big-endian bytes, saturated.
func putUint(b []byte, v int64) {
	if v < 0 {
		v = 0
	}
	if max := int64(1)<<(8*len(b)) - 1; v > max {
		v = max
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// encodeRecord lays a record out in recordLen bytes:
//
//	0      flags + 4 × status rank
//	1      sent generation (saturated at 255)
//	2-4    sent at, seconds since the window's start
//	5-6    status at, minutes after the send, plus one (0: none)
//	7-9    wamid sum (24 bits: an older wamid of the same job passes for
//	       the current one once in 16 million)
//	10-25  trace id of the send attempt
//	26-33  its span id
//	34-37  the low 32 bits of the body's stream sequence (0: none kept);
//	       bodies live a day, so the stream's last sequence gives the rest
//	38-39  pricing (from status webhooks) and the send answer's
//	       message_status (pricing.go)
func encodeRecord(r record, start time.Time) []byte {
	b := make([]byte, recordLen)
	b[0] = r.flags&3 | r.status<<2
	putUint(b[1:2], int64(r.sentGen))
	putUint(b[2:5], int64(r.sentAt.Sub(start)/time.Second))
	if !r.statusAt.IsZero() {
		copy(b[5:7], statusAtBytes(r.statusAt, r.sentAt))
	}
	putUint(b[7:10], int64(r.wsum))
	copy(b[10:26], r.traceID[:])
	copy(b[26:34], r.spanID[:])
	putUint(b[34:38], int64(r.bodySeq&(1<<32-1)))
	copy(b[38:40], r.meta[:])
	return b
}

// statusAtBytes is a status time as the record keeps it: whole minutes
// after the send, plus one.
func statusAtBytes(at, sentAt time.Time) string {
	var b [2]byte
	putUint(b[:], int64(at.Sub(sentAt)/time.Minute)+1)
	return string(b[:])
}

func decodeRecord(b []byte, start time.Time) (record, bool) {
	if len(b) < oldRecordLen {
		return record{}, false
	}
	r := record{flags: b[0] & 3, status: b[0] >> 2, sentGen: int(b[1])}
	r.sentAt = start.Add(time.Duration(getUint(b[2:5])) * time.Second).UTC()
	if v := getUint(b[5:7]); v != 0 {
		r.statusAt = r.sentAt.Add(time.Duration(v-1) * time.Minute)
	}
	r.wsum = uint32(getUint(b[7:10]))
	copy(r.traceID[:], b[10:26])
	copy(r.spanID[:], b[26:34])
	r.bodySeq = getUint(b[34:38])
	if len(b) >= recordLen {
		copy(r.meta[:], b[38:40])
	}
	return r, true
}

// digest is a field digest and the number that picks its bucket.
type digest struct {
	field string
	pick  uint64
}

func digestOf(kind byte, s string, n int) digest {
	// One buffer on the stack for ids of up to 127 bytes: a hash.Hash
	// escapes to the heap, and every record costs a digest or two.
	var buf [128]byte
	sum := sha256.Sum256(append(append(buf[:0], kind), s...))
	return digest{field: string(sum[:n]), pick: binary.BigEndian.Uint64(sum[24:])}
}

func jobDigest(id string) digest      { return digestOf('j', id, jobDigestLen) }
func wamidDigest(wamid string) digest { return digestOf('w', wamid, wamidDigestLen) }

// wamidSum is the 24 bits of a wamid a record keeps, to tell the job's
// current wamid from an older one.
func wamidSum(wamid string) uint32 {
	sum := sha256.Sum256([]byte("s" + wamid))
	return binary.BigEndian.Uint32(sum[:4]) >> 8
}

// maxInlineID is the longest id kept in a wamid index value (the listpack
// value limit, less the kind byte).
const maxInlineID = 63

// encodeID is a wamid index value: the 16 bytes of an RFC 4122 UUID in its
// canonical form, 'r' and the id for another short one ('y', the id and a pad
// byte for one of 15 bytes, which 'r' would make 16 like a UUID), 'x' for an
// id kept under its own key. A UUID of another variant is kept as text, so
// that every 16-byte value written now is an RFC 4122 UUID.
func encodeID(id string) string {
	if u, err := uuid.Parse(id); err == nil && u.String() == id && u.Variant() == uuid.RFC4122 {
		return string(u[:])
	}
	if len(id) == 15 {
		return "y" + id + "."
	}
	if len(id) <= maxInlineID {
		return "r" + id
	}
	return "x"
}

// index is the compact index over one Redis.
type index struct {
	rdb          redis.Cmdable
	prefix       string
	retention    time.Duration
	window       time.Duration
	firstBuckets int
	now          func() time.Time

	mu      sync.Mutex
	buckets map[int64]*steps // window → its buckets; nil: the window has none
	unsent  int64            // records of window unsentW not yet added to its count
	unsentW int64
}

// countEvery is how many records a process gathers before it adds them to
// the window's count (which only sizes the next window: a process that dies
// loses at most this many from it).
const countEvery = 64

// counted adds n records of window w and returns how many to add to the
// window's count now (0: not yet).
func (x *index) counted(w int64, n int) int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.unsentW != w {
		x.unsentW, x.unsent = w, 0
	}
	x.unsent += int64(n)
	if x.unsent < countEvery {
		return 0
	}
	c := x.unsent
	x.unsent = 0
	return c
}

func newIndex(rdb redis.Cmdable, prefix string, retention time.Duration, buckets int, now func() time.Time) *index {
	if buckets <= 0 {
		buckets = 256
	}
	return &index{rdb: rdb, prefix: prefix, retention: retention, window: retention / 4,
		firstBuckets: buckets, now: now, buckets: map[int64]*steps{}}
}

func (x *index) windowAt(t time.Time) int64 { return t.UnixMilli() / x.window.Milliseconds() }
func (x *index) start(w int64) time.Time {
	return time.UnixMilli(w * x.window.Milliseconds()).UTC()
}

// expireAt is when window w's keys go: a retention after the window ends.
func (x *index) expireAt(w int64) time.Time {
	return x.start(w + 1).Add(x.retention)
}

// buckets are where a window's records go: bucket base + pick % n. A
// window's first count has base 0; a step of n buckets has base n, so that
// steps (n0 × 4^k) never share a bucket.
type buckets struct{ n, base int }

func (x *index) key(kind string, w int64, d digest, bs buckets) string {
	// Built in one buffer and made a string once: one allocation per key.
	var buf [96]byte
	b := append(buf[:0], x.prefix...)
	b = append(b, ":l"...)
	b = append(b, kind...)
	b = append(b, ':')
	b = strconv.AppendInt(b, w, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(bs.base)+d.pick%uint64(bs.n), 10)
	return string(b)
}

func (x *index) metaKey(kind string, w int64) string {
	return x.prefix + ":l" + kind + ":" + strconv.FormatInt(w, 10)
}

func (x *index) longIDKey(d digest) string {
	return fmt.Sprintf("%s:lx:%x", x.prefix, d.field)
}

// countScript adds to a window's record count and returns the count.
// KEYS: count. ARGV: n, expire-at ms.
var countScript = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return n
`)

// recordStatusScript raises a record's delivery status unless it has a
// later one (rank 0: no status to record), and records its pricing unless
// it has some. KEYS: bucket. ARGV: field, rank, status time (2 bytes),
// pricing byte 38 ("" for none), pricing type code. Returns -2 for no
// record, else 1 when the status was recorded plus 2 when the pricing was.
var recordStatusScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or #v < 38 then return -2 end
if #v < 40 then v = v .. string.rep(string.char(0), 40 - #v) end
local out = 0
local rank = tonumber(ARGV[2])
local b = string.byte(v, 1)
if rank > 0 and math.floor(b / 4) < rank then
  v = string.char(b % 4 + 4 * rank) .. string.sub(v, 2, 5) .. ARGV[3] .. string.sub(v, 8)
  out = 1
end
if ARGV[4] ~= '' and string.byte(v, 39) < 128 then
  local t = string.byte(v, 40)
  v = string.sub(v, 1, 38) .. ARGV[4] .. string.char(t - t % 8 + tonumber(ARGV[5]))
  out = out + 2
end
if out > 0 then redis.call('HSET', KEYS[1], ARGV[1], v) end
return out
`)

// failDoneScript marks that a webhook failure of the record's wamid was
// acted on (and, parking, that the job is no longer sent).
// KEYS: bucket. ARGV: field, wamid sum (3 bytes), "park" or "resend".
// Returns 1 marked, 0 already marked, -1 the record is of another wamid.
var failDoneScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or #v < 38 then return -1 end
local b = string.byte(v, 1)
local f = b % 4
local same = string.sub(v, 8, 10) == ARGV[2]
if same and math.floor(f / 2) == 1 then return 0 end
if not same or f % 2 == 0 then return -1 end
local nf = 3
if ARGV[3] == 'park' then nf = 2 end
redis.call('HSET', KEYS[1], ARGV[1], string.char(b - f + nf) .. string.sub(v, 2))
return 1
`)

// found is a record found by a lookup, with where it is.
type found struct {
	rec    record
	window int64
	key    string
}

// lookupCmds queues the reads of id's record in every live window.
func (x *index) lookupCmds(ctx context.Context, c redis.Cmdable, d digest, ws []int64, ns []buckets) []*redis.StringCmd {
	cmds := make([]*redis.StringCmd, len(ws))
	for i, w := range ws {
		cmds[i] = c.HGet(ctx, x.key("j", w, d, ns[i]), d.field)
	}
	return cmds
}

// pick returns the newest record the reads found.
func (x *index) pick(d digest, ws []int64, ns []buckets, cmds []*redis.StringCmd) (found, bool, error) {
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return found{}, false, err
		}
		if r, ok := decodeRecord([]byte(v), x.start(ws[i])); ok {
			return found{rec: r, window: ws[i], key: x.key("j", ws[i], d, ns[i])}, true, nil
		}
	}
	return found{}, false, nil
}

// applyTo lays a found record over a state read from the job's hash.
func (f found) applyTo(s *State) {
	r := f.rec
	s.compact = true
	s.WAMID, s.FailedWAMID = "", "" // an older record's; the index's is newer
	s.sent = r.flags&flagSent != 0
	if s.sent && s.knownWAMID != "" && wamidSum(s.knownWAMID) == r.wsum {
		s.WAMID = s.knownWAMID
	}
	s.failDone = r.flags&flagFailDone != 0
	s.wsum = r.wsum
	s.bodySeq = r.bodySeq
	s.SentGen = r.sentGen
	s.SentAt = r.sentAt
	if r.sentGen > s.Gen {
		s.Gen = r.sentGen
	}
	if s.sent && s.ParkedGen <= r.sentGen {
		s.Parked, s.ParkedGen = "", 0
	}
	if r.traceID != ([16]byte{}) {
		s.TraceID = fmt.Sprintf("%x", r.traceID)
		s.SpanID = fmt.Sprintf("%x", r.spanID)
	}
	if int(r.status) < len(statusNames) && r.status > 0 {
		s.Status = statusNames[r.status]
		s.StatusAt = r.statusAt
	}
	s.MessageStatus = messageStatusName(r.meta[1])
	s.Pricing = decodePricing(r.meta[0], r.meta[1])
}
