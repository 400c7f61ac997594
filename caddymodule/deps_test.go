package caddymodule_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestHarnessInDeps: the plugin's production packages import no
// test harness, directly or through a dependency.
func TestNoTestHarnessInDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps",
		"github.com/sessionguard/sessionguard/caddymodule",
		"github.com/sessionguard/sessionguard/admin").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, harness := range []string{"/internal/testclock", "/internal/testredis", "/internal/gatewaytest", "/internal/testhook", "/internal/testop", "/internal/eventtest", "github.com/chromedp/"} {
			if strings.Contains(pkg, harness) {
				t.Errorf("production dependency on test harness: %s", pkg)
			}
		}
	}
}
