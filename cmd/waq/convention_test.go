package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/waqhq/waq/internal/testenv"
)

// TestConvention holds every command to one convention, in one table:
// help on stdout with exit status 0; bad usage exit status 2 with the
// message on stderr and nothing on stdout; not found exit status 1 with
// the message on stderr, with --json as without; --json on every command
// that prints; --version; flags that name what they hold; errors in words,
// never Go's type names.
func TestConvention(t *testing.T) {
	r := testenv.StartRedis(t)
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	array := file("array.json", `[1, 2]`)
	otherTo := file("body.json", `{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}`)
	otherPN := file("job.json", `{"phone_number_id":"106540352242922","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}}}`)
	badTime := file("time.json", `{"phone_number_id":"1","message":{"messaging_product":"whatsapp","to":"15551234567","type":"text","text":{"body":"hi"}},"not_after":5}`)
	badID := file("id.json", `{"id":5,"phone_number_id":"1","message":{}}`)
	policyFile := file("policy.yaml", "rules:\n  - codes: [131000]\n    action: retry\n")
	vars := map[string]string{"WAQ_REDIS_URL": r.URL}

	type want struct {
		code   int
		stdout string // a part of stdout; "" means stdout must be empty
		stderr string // a part of stderr; "" means stderr must be empty
	}
	usage := func(stderr string) want { return want{code: 2, stderr: stderr} }
	help := func(stdout string) want { return want{code: 0, stdout: stdout} }
	notFound := func(stderr string) want { return want{code: 1, stderr: stderr} }
	tests := []struct {
		args []string
		want want
	}{
		// Help: stdout, exit 0, for the top level, every command and every subcommand.
		{[]string{"help"}, help("Commands:")},
		{[]string{"--help"}, help("Commands:")},
		{[]string{"-h"}, help("Commands:")},
		{[]string{"worker", "-h"}, help("Usage: waq worker")},
		{[]string{"send", "--help"}, help("Usage: waq send")},
		{[]string{"job", "--help"}, help("Usage: waq job show")},
		{[]string{"job", "-h"}, help("Usage: waq job show")},
		{[]string{"job", "show", "-h"}, help("Usage: waq job show")},
		{[]string{"dlq", "--help"}, help("waq dlq list")},
		{[]string{"dlq", "list", "-h"}, help("Usage: waq dlq list")},
		{[]string{"dlq", "show", "--help"}, help("Usage: waq dlq show")},
		{[]string{"dlq", "stats", "-h"}, help("Usage: waq dlq stats")},
		{[]string{"dlq", "replay", "-h"}, help("Usage: waq dlq replay")},
		{[]string{"dlq", "purge", "-h"}, help("Usage: waq dlq purge")},
		{[]string{"dlq", "export", "-h"}, help("Usage: waq dlq export")},
		{[]string{"policy", "--help"}, help("waq policy check")},
		{[]string{"policy", "check", "-h"}, help("Usage: waq policy check")},
		{[]string{"policy", "explain", "-h"}, help("Usage: waq policy explain")},
		{[]string{"policy", "show", "-h"}, help("Usage: waq policy show")},
		{[]string{"fakegraph", "-h"}, help("Usage: waq fakegraph")},
		{[]string{"dev", "-h"}, help("Usage: waq dev")},
		{[]string{"bench", "-h"}, help("Usage: waq bench")},
		{[]string{"doctor", "-h"}, help("Usage: waq doctor")},

		// --version.
		{[]string{"--version"}, want{code: 0, stdout: "waq "}},
		{[]string{"version"}, want{code: 0, stdout: "waq "}},

		// Flags that say what they hold, and the worker's defaults.
		{[]string{"dlq", "list", "-h"}, help("-limit number")},
		{[]string{"dlq", "list", "-h"}, help("-since duration")},
		{[]string{"dlq", "purge", "-h"}, help("-older-than duration")},
		{[]string{"worker", "-h"}, help("-concurrency number")},
		{[]string{"worker", "-h"}, help("default 128")},
		{[]string{"worker", "-h"}, help("-ack-wait duration")},

		// --json on every command that prints.
		{[]string{"send", "-h"}, help("-json")},
		{[]string{"job", "show", "-h"}, help("-json")},
		{[]string{"dlq", "list", "-h"}, help("-json")},
		{[]string{"dlq", "show", "-h"}, help("-json")},
		{[]string{"dlq", "stats", "-h"}, help("-json")},
		{[]string{"dlq", "replay", "-h"}, help("-json")},
		{[]string{"dlq", "purge", "-h"}, help("-json")},
		{[]string{"dlq", "export", "-h"}, help("-json")},
		{[]string{"policy", "check", "-h"}, help("-json")},
		{[]string{"policy", "explain", "-h"}, help("-json")},
		{[]string{"policy", "show", "-h"}, help("-json")},
		{[]string{"doctor", "-h"}, help("-json")},
		{[]string{"bench", "-h"}, help("-json")},
		{[]string{"policy", "check", policyFile, "--json"}, want{code: 0, stdout: `"ok":true`}},
		{[]string{"policy", "explain", "131000", "--json"}, want{code: 0, stdout: `"action":"retry"`}},

		// Bad usage: exit 2, on stderr, for every command alike.
		{nil, usage("Commands:")},
		{[]string{"frobnicate"}, usage(`unknown command "frobnicate"`)},
		{[]string{"worker", "--bogus"}, usage("flag provided but not defined: -bogus")},
		{[]string{"worker", "--concurrency", "many"}, usage("WAQ_CONCURRENCY")},
		{[]string{"send", "--bogus"}, usage("-bogus")},
		{[]string{"send"}, usage("give exactly one of")},
		{[]string{"job"}, usage("waq job show ID")},
		{[]string{"job", "list"}, usage("waq job show ID")},
		{[]string{"job", "show"}, usage("want one job id")},
		{[]string{"dlq"}, usage("a subcommand is needed")},
		{[]string{"dlq", "bogus"}, usage("unknown subcommand")},
		{[]string{"dlq", "show"}, usage("show takes one ID")},
		{[]string{"dlq", "list", "--limit", "many"}, usage("--limit")},
		{[]string{"dlq", "list", "--reason", "nope"}, usage("--reason")},
		{[]string{"policy"}, usage("a subcommand is needed")},
		{[]string{"policy", "explain", "abc"}, usage(`"abc" is not a code`)},
		{[]string{"fakegraph", "--latency", "-1s"}, usage("must not be negative")},
		{[]string{"fakegraph", "extra"}, usage("unexpected argument")},
		{[]string{"fakegraph", "--bogus"}, usage("-bogus")},
		{[]string{"dev", "--rate", "0"}, usage("--rate")},
		{[]string{"dev", "extra"}, usage("unexpected argument")},
		{[]string{"bench", "--jobs", "-5"}, usage("must not be negative")},
		{[]string{"bench"}, usage("give --jobs N")},
		{[]string{"bench", "extra"}, usage("unexpected argument")},
		{[]string{"bench", "--bogus"}, usage("-bogus")},
		{[]string{"doctor", "--bogus"}, usage("-bogus")},
		{[]string{"doctor", "--template", "x"}, usage("--language")},

		// Errors in words, not Go types; a flag against the file refused.
		{[]string{"send", "--phone-number-id", "1", "--file", array}, usage("found a JSON array, want a JSON object")},
		{[]string{"send", "--file", badID}, usage(`field "id" is a JSON number, want a string`)},
		{[]string{"send", "--file", badTime}, usage(`field "not_after": want an RFC 3339 time`)},
		{[]string{"send", "--phone-number-id", "1", "--to", "15559999999", "--file", otherTo}, usage("--to 15559999999, but the file's message has to 15551234567")},
		{[]string{"send", "--phone-number-id", "1", "--file", otherPN}, usage("--phone-number-id 1, but the file has phone_number_id 106540352242922")},

		// Not found: exit 1, on stderr, with --json as without.
		{[]string{"job", "show", "nope"}, notFound("no record")},
		{[]string{"job", "show", "nope", "--json"}, notFound("no record")},
		{[]string{"dlq", "show", "nope"}, notFound("no dead-letter entry")},
		{[]string{"dlq", "show", "nope", "--json"}, notFound("no dead-letter entry")},
		{[]string{"policy", "check", filepath.Join(dir, "missing.yaml")}, notFound("missing.yaml")},
	}
	for _, tt := range tests {
		name := strings.Join(tt.args, " ")
		if name == "" {
			name = "(no arguments)"
		}
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, vars, "", tt.args...)
			bad := code != tt.want.code
			if tt.want.stdout == "" {
				bad = bad || stdout != ""
			} else {
				bad = bad || !strings.Contains(stdout, tt.want.stdout)
			}
			if tt.want.stderr == "" {
				bad = bad || stderr != ""
			} else {
				bad = bad || !strings.Contains(stderr, tt.want.stderr)
			}
			for _, leak := range []string{"Go value", "json.RawMessage", "map[string]", "UnmarshalJSON", "*main.", "reflect."} {
				bad = bad || strings.Contains(stdout+stderr, leak)
			}
			if bad {
				t.Errorf("exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s", code, tt.want.code, tt.want.stdout, stdout, tt.want.stderr, stderr)
			}
		})
	}

	// Every command is in the table, so that a new one is held to it too.
	seen := map[string]bool{}
	for _, tt := range tests {
		if len(tt.args) > 0 {
			seen[tt.args[0]] = true
		}
	}
	var missing []string
	for name := range commands {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("commands not in the convention table: %v", missing)
	}
}
