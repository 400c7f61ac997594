// Package browsertest drives a real headless Chromium (Debian's
// /usr/bin/chromium) from Go tests with chromedp. A missing browser fails
// the test: the browser suites must run, never skip. Nothing is
// downloaded.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath is the Chromium the tests run.
const ExecPath = "/usr/bin/chromium"

// UpdateEnv names the environment variable that, set to 1, makes
// Screenshot also refresh the committed copies in docs/screenshots.
const UpdateEnv = "SESSIONGUARD_UPDATE_SCREENSHOTS"

// Options tune a browser.
type Options struct {
	// Width and Height are the window size; default 1000×700.
	Width, Height int
	// Timeout bounds everything the browser does in the test; default 30s.
	Timeout time.Duration
}

// Start launches a fresh headless Chromium (its own user data dir) and
// returns a chromedp context for its first tab. The browser is closed
// when the test ends. It fails the test when Chromium is missing.
func Start(t testing.TB, o Options) context.Context {
	t.Helper()
	if _, err := os.Stat(ExecPath); err != nil {
		t.Fatalf("chromium is required for the browser tests (apt-get install -y chromium): %v", err)
	}
	if o.Width == 0 {
		o.Width, o.Height = 1000, 700
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ExecPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, o.Timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// Do runs the steps in order and fails the test with what on error.
func Do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// Eval evaluates a JavaScript expression, awaiting a promise, and
// decodes its JSON value.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// WaitJS polls a JavaScript boolean expression until it is true or the
// timeout passes; on timeout the test fails and shows the JSON value of
// describe.
func WaitJS(t testing.TB, ctx context.Context, timeout time.Duration, expr, describe string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[[]byte]("JSON.stringify("+describe+")"))
			t.Fatalf("timed out after %s waiting for %s; %s = %s (last error: %v)", timeout, expr, describe, got, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Screenshot saves a PNG of the viewport as artifacts/<name>.png at the
// repository root and, with SESSIONGUARD_UPDATE_SCREENSHOTS=1, as
// docs/screenshots/<name>.png too.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{filepath.Join(root, "artifacts")}
	if os.Getenv(UpdateEnv) == "1" {
		dirs = append(dirs, filepath.Join(root, "docs", "screenshots"))
	}
	var out string
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if out == "" {
			out = p
		}
	}
	t.Logf("screenshot %s (%d bytes)", out, len(buf))
	return out
}

// repoRoot is the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/sessionguard/sessionguard") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/sessionguard/sessionguard above the working directory")
		}
		dir = parent
	}
}
