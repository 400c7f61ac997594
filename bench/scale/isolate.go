package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Where -isolate puts redis-server and the bench (Linux CPU numbers).
const (
	redisCPU = "1"
	benchCPU = "0"
)

// isolate runs redis-server as on a host of its own: every thread of it
// pinned to one CPU at real-time priority, and this process, GC
// included, on another CPU, so a SLOWLOG figure is Redis's work and not
// the time it waited for a core. It fails rather than measure without.
func isolate(ctx context.Context, c *redis.Client) error {
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("-isolate: needs 2 CPUs, have %d", runtime.NumCPU())
	}
	pid, err := redisPID(ctx, c)
	if err != nil {
		return fmt.Errorf("-isolate: %w", err)
	}
	steps := [][]string{
		{"taskset", "--all-tasks", "--pid", "--cpu-list", redisCPU, pid},
		// the background threads too: the main thread waits on the
		// allocator's locks they hold (lazy free of an UNLINKed index),
		// so other processes must not preempt them
		{"chrt", "--all-tasks", "--fifo", "--pid", "49", pid},
		// the main thread above them, which they would otherwise keep
		// from the CPU until done
		{"chrt", "--fifo", "--pid", "50", pid},
		{"taskset", "--all-tasks", "--pid", "--cpu-list", benchCPU, strconv.Itoa(os.Getpid())},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("-isolate: %s: %v %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	runtime.GOMAXPROCS(1)
	return nil
}

// redisPID returns the process id redis-server reports (INFO server).
func redisPID(ctx context.Context, c *redis.Client) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no process_id in INFO server")
}
