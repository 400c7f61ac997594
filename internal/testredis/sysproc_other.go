//go:build !linux

package testredis

import "os/exec"

// setProcAttr is a no-op where Pdeathsig is not available; servers are
// then only stopped by the cleanup functions.
func setProcAttr(cmd *exec.Cmd) {}
