//go:build !linux

package resilience

import "os/exec"

// setPdeathsig does nothing outside Linux; cleanup still stops Caddy.
func setPdeathsig(*exec.Cmd) {}
