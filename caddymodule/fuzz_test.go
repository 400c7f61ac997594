package caddymodule_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/sessionguard/sessionguard/caddymodule"
)

// FuzzCaddyfile adapts arbitrary Caddyfiles seeded with the golden
// files: the session_guard global option and directive parsers must
// never panic, and whatever they accept must be JSON that the app
// decodes again.
func FuzzCaddyfile(f *testing.F) {
	files, err := filepath.Glob("testdata/caddyfile/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		in, _, _ := strings.Cut(string(raw), "\n----------\n")
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(in, "import") || len(in) > 8<<10 {
			return // imports read files; not the parser under test
		}
		out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), map[string]any{"filename": "Caddyfile"})
		if err != nil {
			return
		}
		var cfg struct {
			Apps map[string]json.RawMessage `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatalf("adapter output is not JSON: %v\n%s", err, out)
		}
		if raw, ok := cfg.Apps["session_guard"]; ok {
			var app caddymodule.App
			if err := json.Unmarshal(raw, &app); err != nil {
				t.Fatalf("session_guard app does not decode: %v\n%s", err, raw)
			}
		}
	})
}
