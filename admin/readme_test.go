package admin_test

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sessionguard/sessionguard/admin"
)

// TestCLIFlagsInREADME: every verb and flag of `caddy session-guard`
// (short forms included) is in the README's CLI table.
func TestCLIFlagsInREADME(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "| verb | flags |"):
			in = true
		case !strings.HasPrefix(line, "|"):
			in = false
		case in:
			table.WriteString(line + "\n")
		}
	}
	doc := table.String()
	if doc == "" {
		t.Fatal(`the README has no CLI table ("| verb | flags |")`)
	}
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		if path != "" && !strings.Contains(doc, "`"+path) {
			t.Errorf("verb %q is not in the README's CLI table", path)
		}
		check := func(f *pflag.Flag) {
			if !strings.Contains(doc, "`--"+f.Name) {
				t.Errorf("%s: flag --%s is not in the README's CLI table", c.CommandPath(), f.Name)
			}
			if f.Shorthand != "" && !strings.Contains(doc, "`-"+f.Shorthand+"`") {
				t.Errorf("%s: flag -%s (--%s) is not in the README's CLI table", c.CommandPath(), f.Shorthand, f.Name)
			}
		}
		c.LocalNonPersistentFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			p := strings.TrimSpace(path + " " + sub.Name())
			walk(sub, p)
		}
	}
	walk(admin.NewCommand(), "")
}
