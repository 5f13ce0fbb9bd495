package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI: $CI set to anything but
// "", "0" or "false" (GitHub Actions, GitLab and most others set CI=true).
func InCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// MissingTool stops a test that needs a program that is not installed. In
// CI (InCI) the test fails: a check that silently does not run is a check
// CI does not make. Elsewhere it is skipped, loudly: the skip says what is
// missing and how to install it, and a line goes to stderr as well, since
// `go test` shows skip messages only with -v.
func MissingTool(t testing.TB, tool, install string) {
	t.Helper()
	msg := fmt.Sprintf("%s not found: %s needs it (install: %s; .ci/run does)", tool, t.Name(), install)
	if InCI() {
		t.Fatalf("%s; CI=%s, so this is a failure, not a skip", msg, os.Getenv("CI"))
	}
	fmt.Fprintf(os.Stderr, "SKIP %s: %s\n", t.Name(), msg)
	t.Skip(msg + "; skipped outside CI")
}
