package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// NodeModule reads a file of web/'s npm dependencies (node_modules, from
// its lockfile). A missing file fails the test: run npm ci in web/.
func NodeModule(t testing.TB, path string) []byte {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "web", "node_modules", filepath.FromSlash(path)))
	if err != nil {
		t.Fatalf("%s is required (run npm ci in web/): %v", path, err)
	}
	return b
}

// Violation is one axe-core rule a page breaks.
type Violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// Axe runs axe-core (web/'s pinned copy) over the current page and fails
// the test on every serious or critical violation.
func Axe(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	src := string(NodeModule(t, "axe-core/axe.min.js"))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](src+";true")); err != nil {
		t.Fatalf("axe on %s: loading axe-core: %v", page, err)
	}
	vs := Eval[[]Violation](t, ctx, `axe.run(document, {resultTypes: ["violations"]}).then((r) =>
  r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) =>
    ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" "))})))`)
	for _, v := range vs {
		t.Errorf("axe on %s: %s (%s): %s at %s", page, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "; "))
	}
}
