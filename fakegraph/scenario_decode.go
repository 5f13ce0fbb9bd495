package fakegraph

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/waqhq/waq/internal/yamlfile"
)

// ScenarioError is a scenario that does not decode or does not make sense,
// with the file and line where YAML gives them.
type ScenarioError struct {
	File string // "" when the scenario came over the control API
	Line int    // 0 when unknown
	Msg  string
}

func (e *ScenarioError) Error() string {
	var b strings.Builder
	b.WriteString("scenario")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// lineError is an error of a custom unmarshaler that knows its line.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return "line " + strconv.Itoa(e.line) + ": " + e.msg }

// maxScenario bounds a scenario's size; a bigger one is a mistake.
const maxScenario = 4 << 20

// LoadScenario reads and decodes the scenario file at path.
func LoadScenario(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer f.Close()
	return DecodeScenario(f, path)
}

// DecodeScenario decodes and validates a scenario in YAML or JSON (JSON is
// YAML too). Unknown keys are errors. name is the file name used in errors
// ("" for none). An empty input is the empty scenario.
func DecodeScenario(r io.Reader, name string) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxScenario+1))
	if err != nil {
		return nil, &ScenarioError{File: name, Msg: "read: " + err.Error()}
	}
	if len(data) > maxScenario {
		return nil, &ScenarioError{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxScenario)}
	}
	var s Scenario
	var root yaml.Node
	if len(bytes.TrimSpace(data)) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(name, err)
		}
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			line := extra.Line
			return nil, &ScenarioError{File: name, Line: line, Msg: "more than one YAML document"}
		}
		// The same bytes as a node tree, to find the line of a field that
		// decoded but makes no sense.
		_ = yaml.Unmarshal(data, &root)
	}
	if err := s.validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, &ScenarioError{File: name, Line: lineOf(&root, fe.path), Msg: fe.Error()}
		}
		return nil, &ScenarioError{File: name, Msg: err.Error()}
	}
	return &s, nil
}

// yamlError turns a yaml.v3 error into a ScenarioError with its line.
func yamlError(name string, err error) error {
	var le *lineError
	if errors.As(err, &le) {
		return &ScenarioError{File: name, Line: le.line, Msg: le.msg}
	}
	line, problem := yamlfile.Problem(err, nil)
	return &ScenarioError{File: name, Line: line, Msg: problem}
}

// fieldError is a validation error at a path of the scenario.
type fieldError struct {
	path []any // string keys and int indexes
	msg  string
}

func (e *fieldError) Error() string {
	var b strings.Builder
	for i, p := range e.path {
		switch p := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			b.WriteString("[" + strconv.Itoa(p) + "]")
		}
	}
	return b.String() + ": " + e.msg
}

func errAt(msg string, path ...any) error { return &fieldError{path: path, msg: msg} }

// lineOf finds the line of path in a YAML document, or the line of the
// deepest part of it that exists.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
