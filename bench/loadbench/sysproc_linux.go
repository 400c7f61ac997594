package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the child die with the benchmark, even when the
// benchmark is killed.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// pause stops (SIGSTOP) or resumes (SIGCONT) the process.
func (p *process) pause(stop bool) error {
	if stop {
		return p.cmd.Process.Signal(syscall.SIGSTOP)
	}
	return p.cmd.Process.Signal(syscall.SIGCONT)
}
