package policy

import (
	"errors"
	"github.com/waqhq/waq/internal/yamlfile"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/waqhq/waq/graph"
)

// FuzzParse feeds the policy file parser arbitrary bytes (the seed corpus
// is testdata/fuzz/FuzzParse and testdata/spec.yaml). It must never panic;
// a refused file is one *FileError of one line at a line the file has; an
// accepted file makes only sane decisions.
func FuzzParse(f *testing.F) {
	spec, err := os.ReadFile("testdata/spec.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(spec)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v, want *FileError", err, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "f.yaml") {
				t.Fatalf("error is not one line about f.yaml: %q", msg)
			}
			// The end of the file may be the line after the last break.
			if lines := yamlfile.LineAt(data, len(data)); fe.Line < 0 || fe.Line > lines+1 {
				t.Fatalf("error at line %d of a file of %d lines: %v", fe.Line, lines, err)
			}
			return
		}
		if p.FileRules() < 0 || len(p.Rules()) != len(defaultRules())+p.FileRules()+1 {
			t.Fatalf("%d file rules, %d in all", p.FileRules(), len(p.Rules()))
		}
		failures := []graph.Failure{
			{Transport: true}, {HTTPStatus: 503}, {HTTPStatus: 404}, {Transport: true, HTTPStatus: 502},
			code(0), code(131000), code(131047), code(130429), code(190), code(99999),
		}
		for _, r := range p.Rules() {
			if r.Source == "" || r.Reason == "" || !ValidReason(r.Reason) || !r.Action.valid() {
				t.Fatalf("rule %+v", r)
			}
			for _, c := range r.Codes {
				failures = append(failures, code(c))
			}
			for _, c := range r.CodeRanges {
				failures = append(failures, code(c.Lo), code(c.Hi))
			}
			for _, s := range r.HTTPStatus {
				failures = append(failures, graph.Failure{HTTPStatus: s})
			}
		}
		for _, fl := range failures {
			for _, n := range []int{1, 2, 7, 60, 20000} {
				d := p.Decide(fl, n)
				checkDecision(t, d)
				if d.Delay > 24*time.Hour {
					t.Fatalf("%v at %d: delay %v", fl, n, d.Delay)
				}
			}
		}
	})
}
