package schema

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/waqhq/waq/queue"
)

// body is one case of testdata/bodies: good/NAME.json must be accepted,
// bad/NAME.json refused.
type body struct {
	name string
	good bool
	data []byte
}

func bodies(t *testing.T) []body {
	t.Helper()
	var out []body
	for _, dir := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("testdata", "bodies", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, body{name: strings.TrimSuffix(filepath.Base(f), ".json"), good: dir == "good", data: data})
		}
	}
	if len(out) < 40 {
		t.Fatalf("only %d bodies in testdata/bodies", len(out))
	}
	return out
}

// goGaps reads testdata/bodies/go-gaps.txt: name -> why the Go validator
// disagrees today.
func goGaps(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "bodies", "go-gaps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gaps := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, why, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("go-gaps.txt: %q is not name: why", line)
		}
		gaps[strings.TrimSpace(name)] = strings.TrimSpace(why)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return gaps
}

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JobSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(JobSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(JobSchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schemaValid is what a producer with only the schema decides: the size
// first, then the JSON, then the schema.
func schemaValid(s *jsonschema.Schema, data []byte) error {
	if len(data) > MaxBodyBytes {
		return errTooLarge
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	// UnmarshalJSON reads one value; trailing data is not JSON either.
	return s.Validate(inst)
}

var errTooLarge = &queue.ValidationError{Problem: "body over 64 KiB"}

// TestSchemaAgreesWithGo: every shared body is judged the same by the
// schema and by queue.Decode, and as its directory says.
func TestSchemaAgreesWithGo(t *testing.T) {
	s := compile(t)
	gaps := goGaps(t)
	seen := map[string]bool{}
	for _, b := range bodies(t) {
		seen[b.name] = true
		t.Run(b.name, func(t *testing.T) {
			serr := schemaValid(s, b.data)
			if (serr == nil) != b.good {
				t.Errorf("schema: good=%v, want %v (%v)", serr == nil, b.good, serr)
			}
			_, _, gerr := queue.Decode(b.data)
			agrees := (gerr == nil) == b.good
			if why, ok := gaps[b.name]; ok {
				if agrees {
					t.Errorf("Go agrees now: remove %q from testdata/bodies/go-gaps.txt", b.name)
					return
				}
				t.Skipf("known gap (go-gaps.txt): %s; Go says %v", why, gerr)
			}
			if !agrees {
				t.Errorf("queue.Decode: good=%v, want %v (%v); the schema says %v", gerr == nil, b.good, gerr, serr)
			}
		})
	}
	for name := range gaps {
		if !seen[name] {
			t.Errorf("go-gaps.txt names %q, which is no body", name)
		}
	}
}

// TestSchemaIsStrict2020: the schema compiles as draft 2020-12 against its
// metaschema, and a few bodies outside testdata show it is not vacuous.
func TestSchemaIsStrict2020(t *testing.T) {
	s := compile(t)
	if s.DraftVersion != 2020 {
		t.Errorf("draft %d", s.DraftVersion)
	}
	for _, bad := range []string{`{}`, `null`, `"job"`, `{"id":"x","phone_number_id":"1","message":{}}`} {
		if schemaValid(s, []byte(bad)) == nil {
			t.Errorf("schema accepts %s", bad)
		}
	}
}
