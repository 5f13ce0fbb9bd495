package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/waqhq/waq/internal/testenv"
)

// helpFlag is a flag line of a command's -h (Go's flag.PrintDefaults).
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`)

// TestCommandsDocumented: docs/commands.md has a section for every
// command, and that section names every flag its -h lists (the worker's
// are settings: docs/settings.md names each, see go test ./docs/). A new
// command or flag fails here until the reference says what it does.
func TestCommandsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "docs", "commands.md"))
	if err != nil {
		t.Fatal(err)
	}
	settings, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "docs", "settings.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(string(doc), "\n## waq ")[1:] {
		name, _, _ := strings.Cut(s, " ")
		name, _, _ = strings.Cut(name, "\n")
		sections[name] = s
	}
	// Each command with its subcommands' -h.
	subcommands := map[string][]string{"job": {"show"}, "dlq": {"list", "show", "stats", "replay", "purge", "export"}, "policy": {"check", "explain", "show"}}
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		section, ok := sections[name]
		if !ok {
			t.Errorf("docs/commands.md has no section ## waq %s", name)
			continue
		}
		where, text := "docs/commands.md ## waq "+name, section
		if name == "worker" {
			where, text = "docs/settings.md", string(settings)
		}
		invocations := [][]string{{name, "-h"}}
		for _, sub := range subcommands[name] {
			invocations = append(invocations, []string{name, sub, "-h"})
		}
		for _, args := range invocations {
			code, out, _ := runCmd(t, nil, "", args...)
			flags := helpFlag.FindAllStringSubmatch(out, -1)
			if code != 0 || len(flags) == 0 && name != "job" && name != "dlq" && name != "policy" {
				t.Errorf("%v: exit %d, %d flags:\n%s", args, code, len(flags), out)
			}
			for _, f := range flags {
				if !regexp.MustCompile(`(^|[^a-z0-9-])--` + f[1] + `([^a-z0-9-]|$)`).MatchString(text) {
					t.Errorf("%s does not name --%s (%s)", where, f[1], strings.Join(args, " "))
				}
			}
			// Help is read in a clone, which has no SPEC.
			if strings.Contains(out, "SPEC") {
				t.Errorf("%v: the help names the SPEC, which a clone has not:\n%s", args, out)
			}
		}
	}
}
