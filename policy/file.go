package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
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
