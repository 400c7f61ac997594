//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// setProcAttr does nothing outside Linux; children are killed on a
// normal exit.
func setProcAttr(*exec.Cmd) {}

// pause is not supported outside Linux.
func (p *process) pause(bool) error { return errors.New("pausing a process needs Linux") }
