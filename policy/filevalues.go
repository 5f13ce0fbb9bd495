package policy

// The values of a policy file: how a problem names a node, and the readers of
// mappings, numbers, durations, backoffs and code lists, each refusing a bad
// value with the line and the field.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// describe names a node for a problem: a quoted value, "a list", "a mapping".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return "empty"
		case "!!str":
			return quote(n.Value)
		case "!!int", "!!float", "!!bool":
			return bare(n.Value)
		default: // !!binary, !!timestamp, !custom: the tag is the surprise
			return quote(n.Value) + " (tagged " + quote(tag) + ")"
		}
	}
	return "not a value"
}

// quote quotes a value from the file, escaped and cut to keep the error one
// short line.
func quote(s string) string { return strconv.Quote(truncate(s)) }

// bare prints a number from the file as written, unless (tagged !!int or
// !!float by hand) it holds something that would break the line.
func bare(s string) string {
	t := truncate(s)
	if strings.ContainsFunc(t, func(r rune) bool { return r == ' ' || !unicode.IsPrint(r) }) {
		return strconv.Quote(t)
	}
	return t
}

func truncate(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "..."
}

// fields walks a mapping: it refuses anything else, keys that are not in
// keys, duplicate keys and merge keys, then calls fn for each entry in
// order.
func (ps *parser) fields(n *yaml.Node, field string, keys []string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return ps.errf(n, field, "is %s, expected a mapping of %s", describe(n), strings.Join(keys, ", "))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			return ps.errf(k, field, "a key is %s; keys are plain names", describe(k))
		}
		if k.ShortTag() == "!!merge" {
			return ps.errf(k, field, "merge keys (<<) are not supported; write the keys out")
		}
		// Unknown first: a duplicate is then a known name, safe to print
		// as a field.
		if !slices.Contains(keys, k.Value) {
			return ps.errf(k, field, "unknown key %s (expected %s)", quote(k.Value), strings.Join(keys, ", "))
		}
		if first, dup := seen[k.Value]; dup {
			return ps.errf(k, join(field, k.Value), "duplicate key (first at line %d)", first)
		}
		seen[k.Value] = k.Line
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		v, err := ps.resolve(n.Content[i+1], join(field, k.Value))
		if err != nil {
			return err
		}
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// intValue reads a whole number in [lo, hi].
func (ps *parser) intValue(n *yaml.Node, field string, lo, hi int) (int, error) {
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		return 0, ps.errf(n, field, "%s is not a whole number", describe(n))
	}
	if v < int64(lo) || v > int64(hi) {
		return 0, ps.errf(n, field, "%d is not between %d and %d", v, lo, hi)
	}
	return int(v), nil
}

// floatValue reads a finite number in [lo, hi].
func (ps *parser) floatValue(n *yaml.Node, field string, lo, hi float64) (float64, error) {
	var v float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&v) != nil ||
		math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, ps.errf(n, field, "%s is not a number", describe(n))
	}
	if v < lo || v > hi {
		return 0, ps.errf(n, field, "%s is not between %g and %g", bare(n.Value), lo, hi)
	}
	return v, nil
}

// durationValue reads a positive Go duration such as "30s".
func (ps *parser) durationValue(n *yaml.Node, field string) (time.Duration, error) {
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
		return 0, ps.errf(n, field, "%s has no unit; write a duration such as %ss", bare(n.Value), bare(n.Value))
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, ps.errf(n, field, "%s is not a duration such as 30s or 15m", describe(n))
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, ps.errf(n, field, "%s is not a duration such as 30s or 15m", quote(n.Value))
	}
	if d <= 0 {
		return 0, ps.errf(n, field, "%s is not more than zero", quote(n.Value))
	}
	if d > maxDuration {
		return 0, ps.errf(n, field, "%s is more than %s", quote(n.Value), formatDuration(maxDuration))
	}
	return d, nil
}

// backoff reads a backoff mapping; keys it leaves out come from base.
func (ps *parser) backoff(n *yaml.Node, field string, base Backoff) (Backoff, error) {
	b := base
	err := ps.fields(n, field, []string{"initial", "multiplier", "max", "jitter"}, func(key string, _, v *yaml.Node) error {
		var err error
		switch key {
		case "initial":
			b.Initial, err = ps.durationValue(v, join(field, key))
		case "max":
			b.Max, err = ps.durationValue(v, join(field, key))
		case "multiplier":
			b.Multiplier, err = ps.floatValue(v, join(field, key), 1, maxMult)
		case "jitter":
			b.Jitter, err = ps.floatValue(v, join(field, key), 0, 1)
		}
		return err
	})
	if err != nil {
		return Backoff{}, err
	}
	if b.Initial > b.Max {
		return Backoff{}, ps.errf(n, field, "initial %s is more than max %s", formatDuration(b.Initial), formatDuration(b.Max))
	}
	return b, nil
}

// matchList reads codes or http_status: a list of numbers in [lo, hi] and
// ranges written "lo-hi".
func (ps *parser) matchList(n *yaml.Node, field string, lo, hi int) ([]int, []Range, error) {
	example := "[131000, \"200-299\"]"
	if lo > 0 {
		example = "[503, \"520-529\"]"
	}
	if n.Kind != yaml.SequenceNode {
		return nil, nil, ps.errf(n, field, "is %s, expected a list such as %s", describe(n), example)
	}
	if len(n.Content) == 0 {
		return nil, nil, ps.errf(n, field, "is an empty list")
	}
	var singles []int
	var ranges []Range
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		item, err := ps.resolve(item, f)
		if err != nil {
			return nil, nil, err
		}
		if item.Kind == yaml.ScalarNode && item.ShortTag() == "!!int" {
			// YAML's own integers: 131000, but also 0x1F or 1_000.
			var v int64
			if item.Decode(&v) != nil {
				return nil, nil, ps.errf(item, f, "%s is not a number or a range such as \"200-299\"", describe(item))
			}
			if v < 0 {
				return nil, nil, ps.errf(item, f, "%d is negative", v)
			}
			if v < int64(lo) || v > int64(hi) {
				return nil, nil, ps.errf(item, f, "%d is not between %d and %d", v, lo, hi)
			}
			singles = append(singles, int(v))
			continue
		}
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" {
			return nil, nil, ps.errf(item, f, "%s is not a number or a range such as \"200-299\"", describe(item))
		}
		a, b, isRange := strings.Cut(item.Value, "-")
		if !isRange {
			v, err := ps.numberIn(item, f, item.Value, lo, hi)
			if err != nil {
				return nil, nil, err
			}
			singles = append(singles, v)
			continue
		}
		from, err := ps.numberIn(item, f, a, lo, hi)
		if err != nil {
			return nil, nil, err
		}
		to, err := ps.numberIn(item, f, b, lo, hi)
		if err != nil {
			return nil, nil, err
		}
		if from > to {
			return nil, nil, ps.errf(item, f, "range %s runs backwards", quote(item.Value))
		}
		ranges = append(ranges, Range{from, to})
	}
	return singles, ranges, nil
}

// numberIn parses s (one number of a list item) into [lo, hi].
func (ps *parser) numberIn(n *yaml.Node, field, s string, lo, hi int) (int, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if strings.HasPrefix(s, "-") || strings.HasPrefix(n.Value, "-") {
			return 0, ps.errf(n, field, "%s is negative", quote(n.Value))
		}
		return 0, ps.errf(n, field, "%s is not a number or a range such as \"200-299\"", quote(n.Value))
	}
	if v < 0 {
		return 0, ps.errf(n, field, "%d is negative", v)
	}
	if v < int64(lo) || v > int64(hi) {
		return 0, ps.errf(n, field, "%d is not between %d and %d", v, lo, hi)
	}
	return int(v), nil
}
