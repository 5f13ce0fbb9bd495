package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/internal/yamlfile"
)

// MaxFileSize bounds a policy file; a larger file is refused unread.
const MaxFileSize = 1 << 20

// Bounds on values, chosen to catch slips rather than to limit anyone.
const (
	maxCount    = 10000          // max_attempts, max_sends
	maxDuration = 24 * time.Hour // a job that should wait longer belongs in the dead-letter store
	maxMult     = 100
	maxCode     = math.MaxInt32
)

// FileError is one problem in a policy file. Its Error is one line:
// "policy.yaml:12: rules[2].action: "retyr" is not one of retry, throttle, park, pause".
type FileError struct {
	File    string
	Line    int    // 1-based; 0 when the problem has no line
	Field   string // the path of the value, such as "rules[2].action"; "" for the file as a whole
	Problem string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Load reads a policy file and lays its rules over the default table. A
// problem in the file is a *FileError.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a policy file's contents; name is used in errors and in each
// rule's Source. Every problem is a *FileError.
func Parse(name string, data []byte) (p *Policy, err error) {
	ps := &parser{file: name}
	if len(data) > MaxFileSize {
		return nil, ps.fileErr(0, "", fmt.Sprintf("is larger than %d bytes", MaxFileSize))
	}
	if !utf8.Valid(data) {
		return nil, ps.fileErr(yamlfile.LineAt(data, firstInvalidUTF8(data)), "", "is not UTF-8 text")
	}
	// The YAML library refuses control characters too, but without a line.
	if i := bytes.IndexFunc(data, isControl); i >= 0 {
		r, _ := utf8.DecodeRune(data[i:])
		return nil, ps.fileErr(yamlfile.LineAt(data, i), "", fmt.Sprintf("control character %U is not allowed", r))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ps.fileErr(1, "", "the file is empty; a policy file has defaults, rules or both")
	}
	root, err := ps.decode(data)
	if err != nil {
		return nil, err
	}
	return ps.policy(root)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

type parser struct {
	file string
}

func (ps *parser) fileErr(line int, field, problem string) *FileError {
	return &FileError{File: ps.file, Line: line, Field: field, Problem: problem}
}

func (ps *parser) errf(n *yaml.Node, field, format string, args ...any) *FileError {
	return ps.fileErr(n.Line, field, fmt.Sprintf(format, args...))
}

// syntaxErr turns a YAML library error into a FileError with its line.
func (ps *parser) syntaxErr(err error, data []byte) *FileError {
	line, problem := yamlfile.Problem(err, data)
	return ps.fileErr(line, "", "not valid YAML: "+problem)
}

// decode returns the root node of the file's single YAML document.
func (ps *parser) decode(data []byte) (root *yaml.Node, err error) {
	// The YAML library is well fuzzed, but a worker refusing to start with
	// a message beats a worker crashing on a file it was handed.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, ps.fileErr(0, "", fmt.Sprintf("not valid YAML (%v)", r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ps.fileErr(1, "", "the file is empty; a policy file has defaults, rules or both")
		}
		return nil, ps.syntaxErr(err, data)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, ps.fileErr(extra.Line, "", "a second YAML document; a policy file is one document")
	case !errors.Is(err, io.EOF):
		return nil, ps.syntaxErr(err, data)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, ps.fileErr(1, "", "the file is empty; a policy file has defaults, rules or both")
	}
	root, err = ps.resolve(doc.Content[0], "")
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, ps.errf(root, "", "the file is %s, not a mapping with defaults and rules", describe(root))
	}
	return root, nil
}

// resolve follows aliases (*name) to the node they stand for.
func (ps *parser) resolve(n *yaml.Node, field string) (*yaml.Node, error) {
	for i := 0; n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i > 100 {
			return nil, ps.errf(n, field, "alias %s does not resolve", quote("*"+n.Value))
		}
		n = n.Alias
	}
	return n, nil
}

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

func reasonList() string { return strings.Join(reasons, ", ") }
func scopeList(s []Scope) string {
	names := make([]string, len(s))
	for i, x := range s {
		names[i] = string(x)
	}
	return strings.Join(names, ", ")
}

// policy builds the Policy from the root mapping.
func (ps *parser) policy(root *yaml.Node) (*Policy, error) {
	var defaultsNode, rulesNode *yaml.Node
	err := ps.fields(root, "", []string{"defaults", "rules"}, func(key string, _, v *yaml.Node) error {
		if key == "defaults" {
			defaultsNode = v
		} else {
			rulesNode = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	maxAttempts, maxSends, backoff := DefaultMaxAttempts, DefaultMaxSends, defaultBackoff
	if defaultsNode != nil {
		var attemptsNode *yaml.Node
		err := ps.fields(defaultsNode, "defaults", []string{"max_attempts", "max_sends", "backoff"}, func(key string, _, v *yaml.Node) error {
			var err error
			switch key {
			case "max_attempts":
				attemptsNode = v
				maxAttempts, err = ps.intValue(v, "defaults.max_attempts", 1, maxCount)
			case "max_sends":
				maxSends, err = ps.intValue(v, "defaults.max_sends", 1, maxCount)
			case "backoff":
				backoff, err = ps.backoff(v, "defaults.backoff", defaultBackoff)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if maxAttempts > maxSends {
			at := defaultsNode
			if attemptsNode != nil {
				at = attemptsNode
			}
			return nil, ps.errf(at, "defaults.max_attempts", "%d is more than max_sends %d, which bounds every send of a job", maxAttempts, maxSends)
		}
	}

	rules := defaultRules()
	var fileRules []*Rule
	if rulesNode != nil {
		if rulesNode.Kind != yaml.SequenceNode {
			return nil, ps.errf(rulesNode, "rules", "is %s, expected a list of rules", describe(rulesNode))
		}
		for i, item := range rulesNode.Content {
			field := fmt.Sprintf("rules[%d]", i)
			item, err := ps.resolve(item, field)
			if err != nil {
				return nil, err
			}
			r, err := ps.rule(item, field, maxSends, backoff)
			if err != nil {
				return nil, err
			}
			fileRules = append(fileRules, r)
		}
	}
	return newPolicy(ps.file, append(rules, fileRules...), len(fileRules), maxAttempts, maxSends, backoff), nil
}

// rule reads one rule and checks that its keys make sense together.
func (ps *parser) rule(n *yaml.Node, field string, maxSends int, base Backoff) (*Rule, error) {
	r := &Rule{Source: ps.file + ":" + strconv.Itoa(n.Line)}
	var actionNode, reasonNode, scopeNode, attemptsNode, backoffNode, transportNode *yaml.Node
	keys := []string{"codes", "http_status", "transport", "action", "reason", "max_attempts", "backoff", "scope"}
	err := ps.fields(n, field, keys, func(key string, _, v *yaml.Node) error {
		f := join(field, key)
		var err error
		switch key {
		case "codes":
			r.Codes, r.CodeRanges, err = ps.matchList(v, f, 0, maxCode)
		case "http_status":
			r.HTTPStatus, r.HTTPRanges, err = ps.matchList(v, f, 100, 599)
		case "transport":
			transportNode = v
			var b bool
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
				return ps.errf(v, f, "%s is not true or false", describe(v))
			}
			r.Transport = b
		case "action":
			actionNode = v
			r.Action = Action(v.Value)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || !r.Action.valid() {
				return ps.errf(v, f, "%s is not one of retry, throttle, park, pause", describe(v))
			}
		case "reason":
			reasonNode = v
			r.Reason = v.Value
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || !ValidReason(r.Reason) {
				return ps.errf(v, f, "%s is not one of %s", describe(v), reasonList())
			}
		case "scope":
			scopeNode = v
			r.Scope = Scope(v.Value)
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
				return ps.errf(v, f, "%s is not a scope", describe(v))
			}
		case "max_attempts":
			attemptsNode = v
			r.MaxAttempts, err = ps.intValue(v, f, 1, maxCount)
		case "backoff":
			backoffNode = v
			var b Backoff
			b, err = ps.backoff(v, f, base)
			r.Backoff = &b
		}
		return err
	})
	if err != nil {
		return nil, err
	}

	if actionNode == nil {
		return nil, ps.errf(n, field, "has no action (one of retry, throttle, park, pause)")
	}
	if len(r.Codes)+len(r.CodeRanges)+len(r.HTTPStatus)+len(r.HTTPRanges) == 0 && !r.Transport {
		if transportNode != nil {
			return nil, ps.errf(transportNode, field+".transport", "false matches nothing; give codes, http_status or transport: true")
		}
		return nil, ps.errf(n, field, "matches nothing; give codes, http_status or transport: true")
	}
	switch r.Action {
	case Park:
		if reasonNode == nil {
			return nil, ps.errf(n, field, "park needs a reason (one of %s)", reasonList())
		}
		if attemptsNode != nil {
			return nil, ps.errf(attemptsNode, field+".max_attempts", "does not apply to park, which never sends again")
		}
		if backoffNode != nil {
			return nil, ps.errf(backoffNode, field+".backoff", "does not apply to park, which never sends again")
		}
		if scopeNode != nil {
			return nil, ps.errf(scopeNode, field+".scope", "only throttle and pause take a scope")
		}
	case Retry:
		if scopeNode != nil {
			return nil, ps.errf(scopeNode, field+".scope", "only throttle and pause take a scope")
		}
		if r.MaxAttempts > maxSends {
			return nil, ps.errf(attemptsNode, field+".max_attempts", "%d is more than max_sends %d, which bounds every send of a job", r.MaxAttempts, maxSends)
		}
		if r.Reason == "" {
			r.Reason = ReasonRetriesExhausted
		}
	case Throttle, Pause:
		allowed, reason := throttleScopes, ReasonRetriesExhausted
		if r.Action == Pause {
			allowed, reason = pauseScopes, ReasonAccount
		}
		if r.Scope == ScopeJob {
			if scopeNode != nil {
				return nil, ps.errf(scopeNode, field+".scope", "%s is not one of %s (for %s)", describe(scopeNode), scopeList(allowed), r.Action)
			}
			r.Scope = allowed[0]
		}
		if !slices.Contains(allowed, r.Scope) {
			return nil, ps.errf(scopeNode, field+".scope", "%s is not one of %s (for %s)", quote(string(r.Scope)), scopeList(allowed), r.Action)
		}
		if r.Reason == "" {
			r.Reason = reason
		}
	}
	return r, nil
}

// isControl reports the characters YAML does not allow in a file: C0 and C1
// controls other than tab, line feed and carriage return, and DEL. (U+0085,
// NEL, is a YAML line break and allowed.)
func isControl(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return false
	default:
		return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f)
	}
}
