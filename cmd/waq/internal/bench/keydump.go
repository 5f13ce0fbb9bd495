package bench

// Where Redis's bytes go (waq bench --keydump): every key grouped by its
// pattern (the key name with ids, numbers and digests replaced by
// placeholders), with the count, MEMORY USAGE sampled per pattern, and how
// long the keys still live; and INFO memory's own split of used_memory
// (data, clients, buffers, scripts).

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyGroup is the keys of one pattern.
type KeyGroup struct {
	Pattern string `json:"pattern"`
	Keys    int64  `json:"keys"`
	// Bytes is MEMORY USAGE summed over a sample of the pattern's keys and
	// scaled to all of them; ShortBytes the part of it in keys that expire
	// within shortLived.
	Bytes      int64 `json:"bytes"`
	ShortBytes int64 `json:"short_lived_bytes"`
	// TTL is the shortest and longest time to live in the sample; a zero
	// MaxTTL with NoTTL set means keys that never expire.
	MinTTL time.Duration `json:"min_ttl_ns"`
	MaxTTL time.Duration `json:"max_ttl_ns"`
	NoTTL  bool          `json:"no_ttl,omitempty"`
	// Type is the Redis type and encoding of the first key sampled.
	Type string `json:"type"`
	// Elements is the fields (hash), members (set, sorted set), entries
	// (list, stream) or bytes (string) of the pattern's keys, scaled from
	// the sample like Bytes.
	Elements int64 `json:"elements"`
}

// hashTag is a Redis Cluster hash tag (it may hold colons: {dlq:3}).
var hashTag = regexp.MustCompile(`\{[^}]*\}`)

// keySample is how many keys of a pattern MEMORY USAGE reads.
const keySample = 200

// keyPattern is name with what varies per job, number or window replaced:
// a hash tag by {*}, a segment of digits by N, a segment of 8 or more hex
// digits (or any non-printable byte) by H.
func keyPattern(name string) string {
	parts := strings.Split(hashTag.ReplaceAllString(name, "{*}"), ":")
	for i, p := range parts {
		switch {
		case p == "{*}":
		case p != "" && strings.Trim(p, "0123456789") == "":
			parts[i] = "N"
		case len(p) >= 8 && strings.Trim(p, "0123456789abcdefABCDEF") == "":
			parts[i] = "H"
		case strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
			parts[i] = "H"
		}
	}
	return strings.Join(parts, ":")
}

// keyDump scans every key of rdb (at most maxKeys) and groups them.
func keyDump(ctx context.Context, rdb redis.UniversalClient, maxKeys int64) ([]KeyGroup, error) {
	type acc struct {
		g       KeyGroup
		sampled []string
	}
	groups := map[string]*acc{}
	var cursor uint64
	var seen int64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		for _, k := range keys {
			p := keyPattern(k)
			a := groups[p]
			if a == nil {
				a = &acc{g: KeyGroup{Pattern: p}}
				groups[p] = a
			}
			a.g.Keys++
			if len(a.sampled) < keySample {
				a.sampled = append(a.sampled, k)
			}
		}
		seen += int64(len(keys))
		cursor = next
		if cursor == 0 || seen >= maxKeys {
			break
		}
	}
	out := make([]KeyGroup, 0, len(groups))
	for _, a := range groups {
		pipe := rdb.Pipeline()
		mem := make([]*redis.IntCmd, len(a.sampled))
		ttl := make([]*redis.DurationCmd, len(a.sampled))
		for i, k := range a.sampled {
			mem[i] = pipe.MemoryUsage(ctx, k, 0)
			ttl[i] = pipe.PTTL(ctx, k)
		}
		typ := pipe.Type(ctx, a.sampled[0])
		enc := pipe.ObjectEncoding(ctx, a.sampled[0])
		_, _ = pipe.Exec(ctx)
		a.g.Type = typ.Val() + "/" + enc.Val()
		elems := make([]*redis.IntCmd, len(a.sampled))
		pipe = rdb.Pipeline()
		for i, k := range a.sampled {
			switch typ.Val() {
			case "hash":
				elems[i] = pipe.HLen(ctx, k)
			case "set":
				elems[i] = pipe.SCard(ctx, k)
			case "zset":
				elems[i] = pipe.ZCard(ctx, k)
			case "list":
				elems[i] = pipe.LLen(ctx, k)
			case "stream":
				elems[i] = pipe.XLen(ctx, k)
			default:
				elems[i] = pipe.StrLen(ctx, k)
			}
		}
		_, _ = pipe.Exec(ctx)
		var elemSum int64
		for _, e := range elems {
			elemSum += e.Val()
		}
		var sum, short, n int64
		first := true
		for i := range a.sampled {
			v, err := mem[i].Result()
			if err != nil {
				continue // expired since the scan
			}
			sum += v
			n++
			d := ttl[i].Val()
			if d >= 0 && d < shortLived {
				short += v
			}
			if d < 0 {
				a.g.NoTTL = true
				continue
			}
			if first || d < a.g.MinTTL {
				a.g.MinTTL = d
			}
			if d > a.g.MaxTTL {
				a.g.MaxTTL = d
			}
			first = false
		}
		if n > 0 {
			a.g.Bytes = sum * a.g.Keys / n
			a.g.ShortBytes = short * a.g.Keys / n
			a.g.Elements = elemSum * a.g.Keys / n
		}
		out = append(out, a.g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Pattern < out[j].Pattern
	})
	return out, nil
}

// memoryFields are the lines of INFO memory that split used_memory.
var memoryFields = append([]string{"used_memory", "used_memory_dataset", "used_memory_overhead"}, notState...)

// memoryInfo reads INFO memory's numeric fields.
func memoryInfo(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return nil, err
	}
	return parseMemoryInfo(info)
}

// writeKeyDump prints the keys of after by pattern and the memory split
// between before and after, per job of jobs.
func writeKeyDump(w io.Writer, title string, before, after redisState, jobs int) {
	per := func(v int64) float64 { return float64(v) / float64(max(jobs, 1)) }
	fmt.Fprintf(w, "key dump after the %s phase (%d jobs; keys expiring within %s are short-lived):\n", title, jobs, shortLived)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pattern\tkeys\telements\tbytes\tbytes/job\tshort-lived\tttl\ttype\t")
	var total int64
	for _, g := range after.groups {
		total += g.Bytes
		ttl := "none"
		if !g.NoTTL || g.MaxTTL > 0 {
			ttl = g.MinTTL.Round(time.Second).String() + "–" + g.MaxTTL.Round(time.Second).String()
			if g.NoTTL {
				ttl += "+none"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%d\t%s\t%s\t\n", g.Pattern, g.Keys, g.Elements, g.Bytes, per(g.Bytes), g.ShortBytes, ttl, g.Type)
	}
	fmt.Fprintf(tw, "all keys\t\t\t%d\t%.1f\t%d\t\t\t\n", total, per(total), after.short)
	tw.Flush()
	for _, f := range memoryFields {
		a, ok := after.info[f]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %-26s %12d  %+12d  (%+.1f per job)\n", f, a, a-before.info[f], per(a-before.info[f]))
	}
	fmt.Fprintf(w, "  %-26s %12d  %+12d  (%+.1f per job)\n", "state (less clients…cluster)", after.bytes, after.bytes-before.bytes, per(after.bytes-before.bytes))
}
