//go:build linux

package resilience

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill a started Caddy when the test
// binary dies, so that no gateway outlives a crashed test run.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
