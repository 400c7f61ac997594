package testredis

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func ping(c *redis.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// alive reports whether a process with the given pid exists.
func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", addr)
	}

	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want \"v\", nil", got, err)
	}

	pid := s.proc.cmd.Process.Pid
	s.Stop(t)
	if alive(pid) {
		t.Fatalf("redis-server pid %d still alive after Stop", pid)
	}
	if err := ping(c); err == nil {
		t.Fatal("PING succeeded after Stop")
	}
	if err := ping(s.Client(t)); err == nil {
		t.Fatal("PING with a fresh client succeeded after Stop")
	}
	s.Stop(t) // idempotent

	s.Restart(t)
	if got := s.Addr(); got != addr {
		t.Fatalf("Addr() after Restart = %q, want %q", got, addr)
	}
	if err := ping(s.Client(t)); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
	if err := ping(c); err != nil {
		t.Fatalf("PING after Restart with the old client: %v", err)
	}
	// No persistence: the key is gone.
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after Restart: err = %v, want redis.Nil", err)
	}

	// Restart of a running server works too.
	pid = s.proc.cmd.Process.Pid
	s.Restart(t)
	if alive(pid) {
		t.Fatalf("old redis-server pid %d still alive after Restart", pid)
	}
	if err := ping(c); err != nil {
		t.Fatalf("PING after second Restart: %v", err)
	}
}

func TestNoPersistence(t *testing.T) {
	s := Start(t)
	cases := map[string]string{
		"save":       "[save ]",
		"appendonly": "[appendonly no]",
		"bind":       "[bind 127.0.0.1]",
	}
	for param, want := range cases {
		got := s.CLI(t, "CONFIG", "GET", param)
		// RESP3 returns a map, RESP2 a flat array.
		if got != want && got != "map["+strings.Trim(strings.Replace(want, " ", ":", 1), "[]")+"]" {
			t.Errorf("CONFIG GET %s = %s, want %s", param, got, want)
		}
	}
}

func TestCLI(t *testing.T) {
	s := Start(t)
	if got := s.CLI(t, "PING"); got != "PONG" {
		t.Errorf("CLI PING = %q, want PONG", got)
	}
	if got := s.CLI(t, "GET", "missing"); got != "<nil>" {
		t.Errorf("CLI GET missing = %q, want <nil>", got)
	}
	if got := s.CLI(t, "SCRIPT", "FLUSH"); got != "OK" {
		t.Errorf("CLI SCRIPT FLUSH = %q, want OK", got)
	}
	if got := s.CLI(t, "INFO", "memory"); !strings.Contains(got, "used_memory:") {
		t.Errorf("CLI INFO memory = %q, want used_memory", got)
	}
	if got := s.CLI(t, "CLIENT", "LIST"); !strings.Contains(got, "cmd=client") {
		t.Errorf("CLI CLIENT LIST = %q, want cmd=client", got)
	}
}

func TestRequirePass(t *testing.T) {
	s := Start(t, "--requirepass", "s3cret")
	if err := ping(s.Client(t)); err != nil {
		t.Fatalf("PING with password: %v", err)
	}
	anon := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer anon.Close()
	if err := ping(anon); err == nil {
		t.Fatal("PING without password succeeded")
	}
	s.Restart(t)
	if got := s.CLI(t, "PING"); got != "PONG" {
		t.Errorf("CLI PING after Restart = %q, want PONG", got)
	}
}

func TestBadArgs(t *testing.T) {
	bin, err := lookPath()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(bin, t.TempDir(), []string{"--no-such-option", "1"})
	err = s.start()
	if err == nil {
		_ = s.stop()
		t.Fatal("start with a bad option succeeded")
	}
	if !strings.Contains(err.Error(), "redis-server output") {
		t.Errorf("error does not quote the output: %v", err)
	}
}

func TestParallel(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := range 4 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			s := Start(t)
			mu.Lock()
			if seen[s.Addr()] {
				t.Errorf("address %s handed out twice", s.Addr())
			}
			seen[s.Addr()] = true
			mu.Unlock()
			if err := s.Client(t).Set(context.Background(), "i", i, 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
		})
	}
}

func TestRestartWaitsForPort(t *testing.T) {
	s := Start(t)
	s.Stop(t)
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("holding the port: %v", err)
	}
	go func() {
		time.Sleep(time.Second)
		ln.Close()
	}()
	s.Restart(t)
	if got := s.CLI(t, "PING"); got != "PONG" {
		t.Errorf("CLI PING after Restart = %q, want PONG", got)
	}
	log, err := s.readLog(0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "Address already in use") {
		t.Errorf("Restart did not go through a busy port; log:\n%s", log)
	}
}

func TestProbeChecksPid(t *testing.T) {
	s := Start(t)
	pid := s.proc.cmd.Process.Pid
	if err := probe(s.Addr(), "", pid, nil); err != nil {
		t.Fatalf("probe with the right pid: %v", err)
	}
	if err := probe(s.Addr(), "", pid+1, nil); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("probe with a wrong pid: err = %v, want another process", err)
	}
}

func TestStartMain(t *testing.T) {
	s, stop, err := StartMain()
	if err != nil {
		t.Fatal(err)
	}
	dir := s.dir
	if err := ping(s.Client(t)); err != nil {
		t.Fatalf("PING: %v", err)
	}
	pid := s.proc.cmd.Process.Pid
	stop()
	stop() // idempotent
	if alive(pid) {
		t.Fatalf("redis-server pid %d still alive after stop", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s not removed: %v", dir, err)
	}
}
