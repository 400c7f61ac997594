//go:build unix

package testredis

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// Pause stops the server's process with SIGSTOP, as a node that hangs:
// it keeps its connections and its data but answers nothing, and
// replicates nothing, until the returned resume (SIGCONT) is called. A
// paused server is resumed at cleanup; Stop and Restart work on it.
func (s *Server) Pause(tb testing.TB) (resume func()) {
	tb.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || isDone(p) {
		tb.Fatalf("testredis: pause %s: not running", s.Addr())
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tb.Fatalf("testredis: pause %s: %v", s.Addr(), err)
	}
	resume = func() {
		err := p.cmd.Process.Signal(syscall.SIGCONT)
		if err != nil && !errors.Is(err, os.ErrProcessDone) {
			tb.Errorf("testredis: resume %s: %v", s.Addr(), err)
		}
	}
	tb.Cleanup(resume)
	return resume
}
