//go:build !linux

package main

import "os/exec"

// setProcAttr does nothing outside Linux; children are killed on a
// normal exit.
func setProcAttr(*exec.Cmd) {}
