// Package yamlfile turns the errors of the YAML library (go.yaml.in/yaml/v3)
// into a line number and a one-line problem, the same way for every file
// waq reads: the policy file, the phone-number file, simulator scenarios.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

var (
	lineRE   = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	anchorRE = regexp.MustCompile(`^yaml: (?:unknown anchor|anchor) '([^']*)'`)
	fieldRE  = regexp.MustCompile(`field (\S+) not found in type \S+`)
	intoRE   = regexp.MustCompile(` into \S+$`)
)

// parserProblems are the YAML library's parser (not scanner) errors. It
// numbers their lines from 0 and its scanner errors from 1, and leaves the
// line out when it is the first either way (go.yaml.in/yaml/v3 decode.go,
// parser.fail).
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// Problem returns the line (from 1; 0 when the error gives none) and a
// one-line description of a YAML library error on data. A decoding error
// with several problems gives the first, with how many more there are.
func Problem(err error, data []byte) (int, string) {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs = te.Errors
	}
	msg := OneLine(msgs[0])
	more := ""
	if len(msgs) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(msgs)-1)
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if slices.Contains(parserProblems, m[2]) {
			line++
		}
		return line, tidy(m[2]) + more
	}
	if m := anchorRE.FindStringSubmatch(msg); m != nil {
		// An alias without its anchor: point at the first use of it.
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return LineAt(data, i), tidy(strings.TrimPrefix(msg, "yaml: ")) + more
		}
		return 0, tidy(strings.TrimPrefix(msg, "yaml: ")) + more
	}
	if strings.HasPrefix(msg, "yaml: document contains") {
		return 0, tidy(strings.TrimPrefix(msg, "yaml: ")) + more
	}
	if strings.HasPrefix(msg, "yaml: ") {
		// The library leaves the line out when it is the first.
		return 1, tidy(strings.TrimPrefix(msg, "yaml: ")) + more
	}
	return 0, tidy(msg) + more
}

// tidy rewrites the library's Go-flavoured wording for people who wrote a
// YAML file, not a Go struct.
func tidy(s string) string {
	s = fieldRE.ReplaceAllString(s, `unknown field "$1"`)
	return intoRE.ReplaceAllString(s, "")
}

// OneLine folds white space so a message is one line.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// LineAt is the line (from 1) of the byte at off, counting line breaks as
// YAML does: LF, CR, CR LF, and U+0085, U+2028, U+2029.
func LineAt(data []byte, off int) int {
	line := 1
	for i := 0; i < off && i < len(data); {
		switch {
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			line, i = line+1, i+2
		case data[i] == '\r' || data[i] == '\n':
			line, i = line+1, i+1
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == 0x85 || r == 0x2028 || r == 0x2029 {
				line++
			}
			i += size
		}
	}
	return line
}
