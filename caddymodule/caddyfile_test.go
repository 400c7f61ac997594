package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/caddyfile")

// TestCaddyfileAdapt adapts every testdata/caddyfile/*.caddyfiletest
// (a Caddyfile, a line of dashes, the expected JSON) and compares. A
// file whose expected part starts with "error:" must fail to adapt
// with that text in the error.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatal("missing ---------- separator")
			}
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), map[string]any{"filename": "Caddyfile"})
			want = strings.TrimSpace(want)
			if msg, isErr := strings.CutPrefix(want, "error:"); isErr {
				if err == nil {
					t.Fatalf("adapted without error; want error containing %q:\n%s", msg, out)
				}
				if !strings.Contains(err.Error(), strings.TrimSpace(msg)) {
					t.Fatalf("error %q does not contain %q", err, strings.TrimSpace(msg))
				}
				return
			}
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSpace(buf.String())
			if *update {
				if err := os.WriteFile(f, []byte(in+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Fatalf("adapted JSON differs.\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}
