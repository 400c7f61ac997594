package testredis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name every Sentinel set monitors.
const SentinelMaster = "mymaster"

const (
	// sentinelReadyTimeout bounds how long a fresh Sentinel set may take
	// until every sentinel knows the replica and the other sentinels.
	sentinelReadyTimeout = 20 * time.Second

	// failoverTimeout bounds how long Failover waits for the new master.
	failoverTimeout = 30 * time.Second
)

// Sentinel is a Sentinel set started for a test: one master, one replica
// and three sentinels (quorum 2, down-after-milliseconds 1000), each a
// real process on a free loopback port.
type Sentinel struct {
	// Nodes are the master and the replica as started; after a failover
	// their roles are swapped. Master reports the current master.
	Nodes [2]*Server

	bin  string
	mu   sync.Mutex
	sent []*proc
	port []int
}

// StartSentinel starts a Sentinel set and waits until the replica is in
// sync and every sentinel sees the master, the replica and the two other
// sentinels. Everything is stopped at cleanup. It fails the test, never
// skips it, when redis-server is missing.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	bin, err := lookPath()
	if err != nil {
		tb.Fatalf("testredis: %v", err)
	}
	master := Start(tb)
	replica := Start(tb, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	s := &Sentinel{Nodes: [2]*Server{master, replica}, bin: bin}
	tb.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.sent {
			if err := p.kill(); err != nil {
				tb.Errorf("testredis: sentinel: %v", err)
			}
		}
	})
	waitFor(tb, sentinelReadyTimeout, "replica in sync", func() bool {
		return strings.Contains(replica.CLI(tb, "INFO", "replication"), "master_link_status:up")
	})
	for i := 0; i < 3; i++ {
		if err := s.startOne(tb.TempDir(), master.port); err != nil {
			tb.Fatalf("testredis: sentinel: %v", err)
		}
	}
	waitFor(tb, sentinelReadyTimeout, "sentinels to discover each other and the replica", func() bool {
		for _, a := range s.Addrs() {
			m, err := sentinelDo(a, "SENTINEL", "MASTER", SentinelMaster)
			if err != nil {
				return false
			}
			f := fields(m)
			if f["num-other-sentinels"] != "2" || f["num-slaves"] != "1" {
				return false
			}
		}
		return true
	})
	return s
}

// Addrs returns the sentinels' addresses.
func (s *Sentinel) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.port))
	for i, p := range s.port {
		out[i] = addr(p)
	}
	return out
}

// MasterAddr returns the master's address as the first sentinel reports
// it.
func (s *Sentinel) MasterAddr(tb testing.TB) string {
	tb.Helper()
	a, err := s.masterAddr(s.Addrs()[0])
	if err != nil {
		tb.Fatalf("testredis: sentinel: %v", err)
	}
	return a
}

// Master returns the node that currently is the master.
func (s *Sentinel) Master(tb testing.TB) *Server {
	tb.Helper()
	a := s.MasterAddr(tb)
	for _, n := range s.Nodes {
		if n.Addr() == a {
			return n
		}
	}
	tb.Fatalf("testredis: sentinel: master %s is not one of the nodes", a)
	return nil
}

// Client returns a go-redis failover client through the sentinels,
// closed at cleanup.
func (s *Sentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMaster,
		SentinelAddrs: s.Addrs(),
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Failover forces a failover with SENTINEL FAILOVER and waits until
// every sentinel reports the former replica as the master and the new
// master says role:master. It returns the new master's address. The old
// master is turned into a replica by the sentinels some seconds later
// (when they next see it), so a second Failover may wait for that.
func (s *Sentinel) Failover(tb testing.TB) string {
	tb.Helper()
	sents := s.Addrs()
	old, err := s.masterAddr(sents[0])
	if err != nil {
		tb.Fatalf("testredis: sentinel: %v", err)
	}
	deadline := time.Now().Add(failoverTimeout)
	for {
		// A sentinel refuses with -INPROG or -NOGOODSLAVE right after a
		// previous failover; retry until the deadline.
		_, err := sentinelDo(sents[0], "SENTINEL", "FAILOVER", SentinelMaster)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testredis: SENTINEL FAILOVER: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var now string
	waitFor(tb, time.Until(deadline), "failover to complete", func() bool {
		m, err := s.masterAddr(sents[0])
		if err != nil || m == old {
			return false
		}
		now = m
		return s.agree(tb, now)
	})
	return now
}

// WaitMaster waits until every sentinel reports the node at addr as the
// master and the node says role:master: after the master was killed,
// until the sentinels' failover has completed. A sentinel that has not
// learnt of the failover yet would turn the old master, restarted,
// back into the master.
func (s *Sentinel) WaitMaster(tb testing.TB, addr string, timeout time.Duration) {
	tb.Helper()
	waitFor(tb, timeout, "every sentinel to report "+addr+" as the master", func() bool { return s.agree(tb, addr) })
}

// agree reports whether every sentinel names addr as the master and the
// node at addr says role:master.
func (s *Sentinel) agree(tb testing.TB, addr string) bool {
	for _, a := range s.Addrs() {
		if m, err := s.masterAddr(a); err != nil || m != addr {
			return false
		}
	}
	for _, n := range s.Nodes {
		if n.Addr() == addr && !strings.Contains(n.CLI(tb, "INFO", "replication"), "role:master") {
			return false
		}
	}
	return true
}

func (s *Sentinel) masterAddr(sentinel string) (string, error) {
	v, err := sentinelDo(sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
	if err != nil {
		return "", err
	}
	l, ok := v.([]any)
	if !ok || len(l) != 2 {
		return "", fmt.Errorf("get-master-addr-by-name: unexpected reply %v", v)
	}
	return fmt.Sprintf("%v:%v", l[0], l[1]), nil
}

// startOne starts one sentinel monitoring the master on masterPort.
func (s *Sentinel) startOne(dir string, masterPort int) error {
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 5000
sentinel parallel-syncs %[3]s 1
`, port, dir, SentinelMaster, masterPort)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return err
		}
		logPath := filepath.Join(dir, logName)
		p, err := launchSentinel(s.bin, dir, conf, logPath, port)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(startTimeout)
		for {
			select {
			case <-p.done:
				lastErr = fmt.Errorf("sentinel on port %d exited: %v", port, p.err)
			default:
				lastErr = probe(addr(port), "", p.cmd.Process.Pid, nil)
			}
			if lastErr == nil {
				s.mu.Lock()
				s.sent = append(s.sent, p)
				s.port = append(s.port, port)
				s.mu.Unlock()
				return nil
			}
			if time.Now().After(deadline) || isDone(p) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = p.kill()
	}
	return fmt.Errorf("no sentinel started after %d attempts: %v", startAttempts, lastErr)
}

func isDone(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// launchSentinel starts redis-server in sentinel mode with conf.
func launchSentinel(bin, dir, conf, logPath string, port int) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log: %v", err)
	}
	defer logFile.Close()
	return startProc(exec.Command(bin, conf, "--sentinel", "--logfile", ""), dir, logFile, port, 0)
}

// sentinelDo runs one command on a sentinel with a fresh connection.
func sentinelDo(address string, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: address, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Result()
}

// fields turns a flat [k1 v1 k2 v2 ...] or map reply into a map.
func fields(v any) map[string]string {
	out := map[string]string{}
	switch l := v.(type) {
	case []any:
		for i := 0; i+1 < len(l); i += 2 {
			out[fmt.Sprint(l[i])] = fmt.Sprint(l[i+1])
		}
	case map[any]any:
		for k, x := range l {
			out[fmt.Sprint(k)] = fmt.Sprint(x)
		}
	}
	return out
}

// WaitFor polls cond every 50ms until it holds, failing the test after
// timeout: for a test waiting on a server's state (a replica in sync, a
// role changed).
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	waitFor(tb, timeout, what, cond)
}

func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("testredis: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
