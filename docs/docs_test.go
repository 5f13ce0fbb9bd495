package docs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/waqhq/waq/policy"
	"github.com/waqhq/waq/telemetry/telemetrytest"
	"github.com/waqhq/waq/worker"
)

// root is the repository, from this package's directory.
const root = ".."

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// markdownFiles are the READMEs (the repository's and the TypeScript
// producer's) and every file of docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil || len(files) < 5 {
		t.Fatalf("docs/*.md: %v %v", files, err)
	}
	return append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "producers/typescript/README.md")}, files...)
}

// readerFiles are what a reader of a clone opens besides the Markdown: the
// manifests an operator applies and the TypeScript producer's sources
// (shipped in its package).
func readerFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"deploy/*/*.yaml", "deploy/*/*.conf", "producers/typescript/src/*.ts"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: %v %v", pattern, m, err)
		}
		files = append(files, m...)
	}
	return files
}

var (
	fence      = regexp.MustCompile("(?s)```.*?```")
	codeSpan   = regexp.MustCompile("`[^`\n]*`")
	linkTarget = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
)

// links returns the targets of the Markdown links in text, outside code.
func links(text string) []string {
	text = codeSpan.ReplaceAllString(fence.ReplaceAllString(text, ""), "")
	var out []string
	for _, m := range linkTarget.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestLinks: every relative link of README.md and docs/*.md points at a
// file or directory of the repository, so it resolves in a clone (the
// project's shared folder, for one, is not in it).
func TestLinks(t *testing.T) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range markdownFiles(t) {
		for _, target := range links(read(t, f)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			path, _, _ := strings.Cut(target, "#")
			full, err := filepath.Abs(filepath.Join(filepath.Dir(f), path))
			if err != nil {
				t.Fatal(err)
			}
			checked++
			if rel, err := filepath.Rel(absRoot, full); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", f, target)
				continue
			}
			if _, err := os.Stat(full); err != nil {
				t.Errorf("%s: link %q does not resolve: %v", f, target, err)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d relative links found: the link pattern is broken", checked)
	}
	for _, f := range append(markdownFiles(t), readerFiles(t)...) {
		text := read(t, f)
		for _, bad := range []string{"../shared/", "SPEC §", "SPEC.md"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s mentions %q: a clone has no SPEC; link docs/ instead", f, bad)
			}
		}
	}
}

func TestLinksPattern(t *testing.T) {
	got := links("see [a](a.md), [b](../b/c.md#x \"t\") and `[c](c.md)` and\n```\n[d](d.md)\n```\n[e](https://e.example/)")
	if strings.Join(got, " ") != "a.md ../b/c.md#x https://e.example/" {
		t.Errorf("links = %q", got)
	}
}

// settingRead finds a WAQ_* variable read in Go code: os.Getenv,
// os.LookupEnv, an Env's Getenv or a getenv func, and the worker's setting
// table (env: "WAQ_...").
var settingRead = regexp.MustCompile(`(?:[Gg]etenv|LookupEnv)\(\s*"(WAQ_[A-Z0-9_]+)"|env:\s*"(WAQ_[A-Z0-9_]+)"`)

// settingsRead walks the module's Go files (tests included: their knobs
// are documented too) and returns each variable with a file that reads it.
func settingsRead(t *testing.T) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "tools", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "docs_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range settingRead.FindAllStringSubmatch(string(b), -1) {
			name := m[1] + m[2]
			if _, ok := found[name]; !ok {
				found[name] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range worker.SettingNames() {
		if _, ok := found[name]; !ok {
			found[name] = "worker/config.go"
		}
	}
	return found
}

// TestSettingsDocumented: every WAQ_* variable the code reads is in
// docs/settings.md. A setting added without documenting it fails here,
// naming the file that reads it.
func TestSettingsDocumented(t *testing.T) {
	doc := read(t, "settings.md")
	found := settingsRead(t)
	for _, must := range []string{"WAQ_NATS_URL", "WAQ_DEV_STATE", "WAQ_ARTIFACTS", "WAQ_TEST_ACK_WAIT"} {
		if _, ok := found[must]; !ok {
			t.Fatalf("the scan did not find %s (found %v): the pattern is broken", must, found)
		}
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("%s (read in %s) is not in docs/settings.md: add it with its default", n, found[n])
		}
	}
}

// TestSettingsScanCatchesNew: the scan sees a setting the way new code
// would read it.
func TestSettingsScanCatchesNew(t *testing.T) {
	for _, src := range []string{`os.Getenv("WAQ_NEW_ONE")`, `v, ok := os.LookupEnv("WAQ_NEW_ONE")`, `env.Getenv( "WAQ_NEW_ONE")`,
		`{env: "WAQ_NEW_ONE", flag: "new-one"}`, `getenv("WAQ_NEW_ONE")`} {
		m := settingRead.FindStringSubmatch(src)
		if m == nil || m[1]+m[2] != "WAQ_NEW_ONE" {
			t.Errorf("%s: not seen (%q)", src, m)
		}
	}
}

// tableRows returns the rows of the first Markdown table after heading,
// each as its trimmed cells.
func tableRows(t *testing.T, doc, heading string) [][]string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("no %q heading", heading)
	}
	var rows [][]string
	inTable := false
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		t.Fatalf("no table under %q", heading)
	}
	return rows[1:]
}

// TestWorkerSettingsTable: docs/settings.md's worker table has every
// setting of the worker with the default and flag the code has.
func TestWorkerSettingsTable(t *testing.T) {
	rows := map[string][]string{}
	for _, r := range tableRows(t, read(t, "settings.md"), "## waq worker") {
		rows[strings.Trim(r[0], "`")] = r
	}
	for _, s := range worker.Settings() {
		r, ok := rows[s.Env]
		if !ok {
			t.Errorf("%s: no row in the worker table of docs/settings.md", s.Env)
			continue
		}
		want := "`" + s.Default + "`"
		if s.Default == "" {
			want = "none"
		}
		if !strings.HasPrefix(r[1], want) {
			t.Errorf("%s: documented default %q, the code's is %q", s.Env, r[1], want)
		}
		if r[2] != "`--"+s.Flag+"`" {
			t.Errorf("%s: documented flag %q, the code's is --%s", s.Env, r[2], s.Flag)
		}
		delete(rows, s.Env)
	}
	for env := range rows {
		t.Errorf("%s: in the worker table of docs/settings.md, but not a worker setting", env)
	}
}

// TestMetricsDocumented: every metric the worker registers is in
// docs/telemetry.md's metrics table, and the table names no other.
func TestMetricsDocumented(t *testing.T) {
	names, err := telemetrytest.MetricNames()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, "waq_") {
			registered[n] = true
		}
	}
	if !registered["waq_sends_total"] || len(registered) < 10 {
		t.Fatalf("registered = %v", registered)
	}
	documented := map[string]bool{}
	for _, r := range tableRows(t, read(t, "telemetry.md"), "## Metrics") {
		documented[strings.Trim(r[0], "`")] = true
	}
	for n := range registered {
		if !documented[n] {
			t.Errorf("metric %s is registered (telemetry.NewMetrics) but not in docs/telemetry.md", n)
		}
	}
	for n := range documented {
		if !registered[n] {
			t.Errorf("docs/telemetry.md documents %s, which the worker does not register", n)
		}
	}
}

// TestSpanAttributesDocumented: every span attribute key of telemetry is
// in docs/telemetry.md.
func TestSpanAttributesDocumented(t *testing.T) {
	src := read(t, filepath.Join(root, "telemetry", "attrs.go"))
	keys := regexp.MustCompile(`attribute\.Key\("([^"]+)"\)|AttrMetadataPrefix\s*=\s*"([^"]+)"`).FindAllStringSubmatch(src, -1)
	if len(keys) < 10 {
		t.Fatalf("found %d attribute keys in telemetry/attrs.go", len(keys))
	}
	doc := read(t, "telemetry.md")
	for _, k := range keys {
		name := k[1]
		if k[2] != "" {
			name = k[2] + "*"
		}
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("span attribute %s is not in docs/telemetry.md", name)
		}
	}
}

// policyTable renders the default table as docs/policy.md shows it.
func policyTable() string {
	p := policy.Default()
	var b strings.Builder
	b.WriteString("| matches | action | scope | reason | max sends | backoff |\n|---|---|---|---|---|---|\n")
	for _, r := range p.Rules() {
		scope := string(r.Scope)
		if scope == "" {
			scope = "job"
		}
		max, backoff := "-", "-"
		if r.Action != policy.Park {
			max = strconv.Itoa(p.MaxAttemptsOf(r))
			bo := p.BackoffOf(r)
			backoff = fmt.Sprintf("%s ×%g, max %s, jitter %g", policy.FormatDuration(bo.Initial), bo.Multiplier, policy.FormatDuration(bo.Max), bo.Jitter)
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | `%s` | %s | %s |\n", r.Matches(), r.Action, scope, r.Reason, max, backoff)
	}
	return b.String()
}

// TestPolicyTable: the table in docs/policy.md is policy.Default(). When
// the code's table changes, the failure prints the table to paste.
func TestPolicyTable(t *testing.T) {
	doc := read(t, "policy.md")
	const begin, end = "<!-- policy-table: generated from policy.Default() -->\n", "<!-- end policy-table -->"
	_, rest, ok := strings.Cut(doc, begin)
	if !ok {
		t.Fatalf("docs/policy.md has no %q marker", strings.TrimSpace(begin))
	}
	got, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("docs/policy.md has no %q marker", end)
	}
	if want := policyTable(); got != want {
		t.Errorf("docs/policy.md's default table is not policy.Default(); replace it with:\n%s", want)
	}
}
