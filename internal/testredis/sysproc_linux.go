//go:build linux

package testredis

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel SIGKILL redis-server when the thread that
// started it dies, so that a crashed or panicking test binary does not
// leave servers behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
