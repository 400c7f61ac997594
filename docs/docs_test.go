// Package docs_test keeps the documentation true: every Caddyfile example
// adapts, every curl example against the admin API answers its documented
// status on a real gateway, and every option the Caddyfile parser accepts
// is in the README's option tables.
package docs_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessionguard/sessionguard/caddymodule"
)

// block is a fenced code block of a Markdown file.
type block struct {
	file string
	line int // of the opening fence
	lang string
	text string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// fencedBlocks returns the fenced code blocks of a Markdown file.
func fencedBlocks(t *testing.T, file string) []block {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	var body []string
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		switch {
		case cur == nil && fence:
			cur = &block{file: file, line: n, lang: strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "```"))}
			body = nil
		case cur != nil && fence:
			cur.text = strings.Join(body, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code fence", file, cur.line)
	}
	return out
}

// markdownFiles are the documents whose examples are checked: the
// repository's top-level *.md (README.md among them) and docs/*.md.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../*.md", "*.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// partialMarker, as the first line of a caddyfile block, marks it as
// deliberately partial and says how to wrap it: "handler" (the content
// of a session_guard block), "global" (the content
// of the global options block) or "site" (the content of a site block).
var partialMarker = regexp.MustCompile(`^#\s*partial:\s*(\S+)`)

// wrap returns a block's Caddyfile, wrapped when it is marked partial.
func wrap(b block) (string, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(b.text), "\n")
	m := partialMarker.FindStringSubmatch(first)
	if m == nil {
		return b.text, nil
	}
	switch m[1] {
	case "global":
		return "{\n" + b.text + "}\n", nil
	case "site":
		return ":8080 {\n" + b.text + "}\n", nil
	case "handler":
		return ":8080 {\nsession_guard {\n" + b.text + "}\n}\n", nil
	}
	return "", fmt.Errorf("unknown partial marker %q (want global, site or handler)", m[1])
}

// TestCaddyfileExamples adapts every fenced caddyfile block of the
// top-level *.md and docs/*.md, and Caddyfile.example, with Caddy's
// adapter.
func TestCaddyfileExamples(t *testing.T) {
	var blocks []block
	for _, f := range markdownFiles(t) {
		for _, b := range fencedBlocks(t, f) {
			if b.lang == "caddyfile" {
				blocks = append(blocks, b)
			}
		}
	}
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	blocks = append(blocks, block{file: "../Caddyfile.example", line: 1, lang: "caddyfile", text: string(example)})
	if len(blocks) < 5 {
		t.Fatalf("found only %d Caddyfile examples", len(blocks))
	}
	for _, b := range blocks {
		cfg, err := wrap(b)
		if err == nil {
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": b.file})
		}
		if err != nil {
			t.Errorf("%s: Caddyfile example does not adapt: %v\n%s", b, err, cfg)
		}
	}
}

// TestPartialMarker: a block marked partial is wrapped and adapted, not
// skipped; an unknown marker is an error.
func TestPartialMarker(t *testing.T) {
	site := block{file: "x.md", text: "# partial: site\nsession_guard {\n\tjwt {\n\t\talg HS256\n\t\tsecret x\n\t}\n}\n"}
	global := block{file: "x.md", text: "# partial: global\nsession_guard {\n\tstore memory\n}\n"}
	handler := block{file: "x.md", text: "# partial: handler\njwt {\n\talg HS256\n\tsecret x\n}\n"}
	for _, b := range []block{site, global, handler} {
		cfg, err := wrap(b)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
		if err != nil || !strings.Contains(string(out), "session_guard") {
			t.Fatalf("wrapped %q: %v\n%s", cfg, err, out)
		}
	}
	broken := block{file: "x.md", text: "# partial: site\nsession_guard {\n\tnope\n}\n"}
	cfg, err := wrap(broken)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil); err == nil {
		t.Fatal("a broken partial block adapted")
	}
	if _, err := wrap(block{text: "# partial: route\n"}); err == nil {
		t.Fatal("unknown partial marker accepted")
	}
}
