package testenv

import (
	"encoding/json"
	"strings"
	"testing"
)

// JSONLines parses a command's output as JSON lines (NDJSON), one object a
// line, and fails the test on anything else, a blank line included. No
// output is no lines.
func JSONLines(t testing.TB, out string) []map[string]any {
	t.Helper()
	var ls []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" && out == "" {
			break
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line %q is not a JSON object", l)
		}
		ls = append(ls, m)
	}
	return ls
}
