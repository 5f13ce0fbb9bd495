package testenv

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// stopTB records how a test was stopped: Fatalf or Skip end it, as they
// would a real test, by a panic the caller recovers.
type stopTB struct {
	testing.TB
	how, msg string
}

type stopped struct{}

func (r *stopTB) Helper()      {}
func (r *stopTB) Name() string { return "TestNeedsTool" }
func (r *stopTB) Fatalf(format string, args ...any) {
	r.how, r.msg = "fail", fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (r *stopTB) Skip(args ...any) {
	r.how, r.msg = "skip", fmt.Sprint(args...)
	panic(stopped{})
}

// missing runs MissingTool with $CI set to ci and returns how it stopped
// the test and what it wrote to stderr.
func missing(t *testing.T, ci string) (r *stopTB, stderr string) {
	t.Setenv("CI", ci)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = pw
	r = &stopTB{}
	func() {
		defer func() {
			os.Stderr = saved
			pw.Close()
			if p := recover(); p != nil {
				if _, ok := p.(stopped); !ok {
					panic(p)
				}
			}
		}()
		MissingTool(r, "promtool", "apt-get install prometheus")
	}()
	b, _ := io.ReadAll(pr)
	pr.Close()
	return r, string(b)
}

// TestMissingTool: in CI a missing tool fails the test; elsewhere the
// test skips, saying so on stderr (go test hides skips without -v), with
// the tool and how to install it.
func TestMissingTool(t *testing.T) {
	for _, ci := range []string{"true", "1", "yes", "TRUE"} {
		r, stderr := missing(t, ci)
		if r.how != "fail" || !strings.Contains(r.msg, "promtool not found") || !strings.Contains(r.msg, "apt-get install prometheus") || !strings.Contains(r.msg, "CI="+ci) {
			t.Errorf("CI=%s: %s %q, want a failure naming the tool, its package and CI", ci, r.how, r.msg)
		}
		if stderr != "" {
			t.Errorf("CI=%s: stderr %q", ci, stderr)
		}
	}
	for _, ci := range []string{"", "0", "false", "no", " False "} {
		r, stderr := missing(t, ci)
		if r.how != "skip" || !strings.Contains(r.msg, "promtool not found") || !strings.Contains(r.msg, "apt-get install prometheus") {
			t.Errorf("CI=%q: %s %q, want a skip naming the tool and its package", ci, r.how, r.msg)
		}
		if !strings.HasPrefix(stderr, "SKIP TestNeedsTool: promtool not found") {
			t.Errorf("CI=%q: stderr %q, want a SKIP line", ci, stderr)
		}
	}
}
