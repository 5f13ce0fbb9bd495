package docs

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeSection returns the README's section under the "## " heading
// title, up to the next "## ".
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	readme := read(t, filepath.Join(root, "README.md"))
	_, after, ok := strings.Cut(readme, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	section, _, _ := strings.Cut(after, "\n## ")
	return section
}

var (
	ciPackage   = regexp.MustCompile(`need_apt\+=\(([a-z0-9.+-]+)\)`)
	ciCommand   = regexp.MustCompile(`\b((?:make|npm) [a-z]+)\b`)
	shComment   = regexp.MustCompile(`(?m)#.*$`)
	tableRow    = regexp.MustCompile(`(?m)^\| (.+?) \| (.+?) \| .+ \|$`)
	firstRunDur = regexp.MustCompile(`first run takes about \d+ minutes`)
)

// TestReadmeTestSection: the README's "Run the tests" names every Debian
// package .ci/run installs for the tests (so a newcomer can install them
// without reading the script), the commands .ci/run runs, and how long the
// first run takes.
func TestReadmeTestSection(t *testing.T) {
	section := readmeSection(t, "Run the tests")
	run := read(t, filepath.Join(root, ".ci/run"))

	named := map[string]bool{}
	for _, row := range tableRow.FindAllStringSubmatch(section, -1) {
		for _, pkg := range strings.Split(row[2], ",") {
			named[strings.Trim(strings.TrimSpace(pkg), "`")] = true
		}
	}
	pkgs := ciPackage.FindAllStringSubmatch(run, -1)
	if len(pkgs) < 8 {
		t.Fatalf(".ci/run: found %d packages; the pattern need_apt+=(PACKAGE) is broken", len(pkgs))
	}
	installs := map[string]bool{}
	for _, m := range pkgs {
		installs[m[1]] = true
	}
	// What the tests cannot do without: -race needs the C headers, which
	// gcc without recommends leaves out; the browser and promtool tests
	// fail in CI without theirs; the TypeScript producer's test needs Node
	// and a real nats-server.
	for _, need := range []string{"redis-server", "redis-tools", "gcc", "libc6-dev", "chromium", "prometheus", "ca-certificates", "nodejs", "npm", "nats-server"} {
		if !installs[need] {
			t.Errorf(".ci/run does not install %s when it is missing", need)
		}
	}
	for _, m := range pkgs {
		if !named[m[1]] {
			t.Errorf(".ci/run installs %s; README's Run the tests table does not name it (packages named: %v)", m[1], named)
		}
	}

	cmds := ciCommand.FindAllStringSubmatch(shComment.ReplaceAllString(run, ""), -1)
	if len(cmds) < 3 {
		t.Fatalf(".ci/run: found %d make/npm commands: the pattern is broken", len(cmds))
	}
	for _, m := range cmds {
		if !strings.Contains(section, m[1]) {
			t.Errorf(".ci/run runs %q; README's Run the tests does not say so", m[1])
		}
	}
	if !firstRunDur.MatchString(section) {
		t.Errorf("README's Run the tests does not say how long the first run takes (%q)", firstRunDur)
	}
}

func TestReadmeTestSectionPatterns(t *testing.T) {
	run := "need_apt+=(redis-server)\n  need_apt+=(libc6-dev) # make this\ncommand -v make >/dev/null\nmake lint\nmake test\n(cd producers/typescript && npm ci --no-audit && npm test)\n"
	var got []string
	for _, m := range ciPackage.FindAllStringSubmatch(run, -1) {
		got = append(got, m[1])
	}
	for _, m := range ciCommand.FindAllStringSubmatch(shComment.ReplaceAllString(run, ""), -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, ",") != "redis-server,libc6-dev,make lint,make test,npm ci,npm test" {
		t.Errorf("got %q", got)
	}
	rows := tableRow.FindAllStringSubmatch("| `a` | `p`, `q` | for |\n|---|---|---|\n", -1)
	if len(rows) != 1 || rows[0][2] != "`p`, `q`" {
		t.Errorf("rows %q", rows)
	}
}
