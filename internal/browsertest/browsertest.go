// Package browsertest drives a real headless Chromium from tests, with
// chromedp: the Debian package's /usr/bin/chromium on a fresh profile,
// and screenshots saved as test artifacts.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/waqhq/waq/internal/testenv"
)

// Chromium is where Debian's chromium package puts the browser; .ci/run
// installs it when it is missing.
const Chromium = "/usr/bin/chromium"

// Browser is one browser tab for a test.
type Browser struct {
	Ctx context.Context
	t   testing.TB
	dir string
	n   int
}

// Start launches headless Chromium for the test and closes it when the
// test ends. It skips the test when the browser is not installed, or when
// the tests run with -short; a missing browser fails the test in CI
// (testenv.MissingTool).
func Start(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	if _, err := os.Stat(Chromium); err != nil {
		testenv.MissingTool(t, Chromium, "apt-get install chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("window-size", "1360,900"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// The first action starts the browser and ties it to ctx; a timeout on
	// the test's whole use of it keeps a hung browser from hanging CI.
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("start %s: %v", Chromium, err)
	}
	return &Browser{Ctx: tctx, t: t, dir: ArtifactDir(t)}
}

// ArtifactDir is where a test saves what a person should look at:
// $WAQ_ARTIFACTS/<test name> when set, else a temporary directory.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("WAQ_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

// Do runs actions, failing the test with what was being done.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// Text returns the visible text of the first element sel selects.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// Location is the page's URL.
func (b *Browser) Location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("browser: location: %v", err)
	}
	return s
}

// Screenshot saves the whole page as NN-name.png in the artifact
// directory and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	b.n++
	p := filepath.Join(b.dir, twoDigits(b.n)+"-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	b.t.Logf("screenshot %s", p)
	return p
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10%10), byte('0' + n%10)})
}
