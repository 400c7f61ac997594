// Package testredis starts real redis-server processes for tests.
//
// Each server listens on a free loopback port, keeps no data on disk
// (--save "" --appendonly no) and works in a temporary directory where its
// output is captured to redis.log. Servers are killed when the test ends
// and, on Linux, also when the test binary dies (Pdeathsig), so that no
// redis-server outlives the tests that started it.
//
// redis-server must be on PATH; a missing binary fails the test instead of
// skipping it, because a silently skipped integration suite is worse than
// a failing one.
package testredis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/freeport"
)

const (
	// startTimeout bounds how long a started redis-server may take to
	// answer PING.
	startTimeout = 10 * time.Second

	// startAttempts is how many free ports are tried when the chosen one
	// is taken before redis-server binds it.
	startAttempts = 5

	// rebindTimeout bounds how long Restart keeps retrying to bind the
	// previous port.
	rebindTimeout = 5 * time.Second

	// stopTimeout bounds how long to wait for a killed process to be
	// reaped.
	stopTimeout = 10 * time.Second

	// cmdTimeout bounds commands run by CLI.
	cmdTimeout = 10 * time.Second

	// logTailLines is how many lines of redis-server output are quoted in
	// failure messages.
	logTailLines = 30

	// logName is the file, in the server's directory, receiving
	// redis-server's stdout and stderr.
	logName = "redis.log"

	installHint = "install it, e.g. apt-get install -y redis-server"
)

// Server is one redis-server process started for a test.
type Server struct {
	bin      string    // path of redis-server
	dir      string    // working directory (--dir), holds the log
	extra    []string  // extra command-line arguments
	password string    // value of --requirepass in extra, if any
	tls      *TLSCerts // non-nil: TLS only (--port 0 --tls-port PORT)

	mu   sync.Mutex
	port int   // fixed once the first start succeeds
	bus  int   // cluster bus port of a cluster node (else 0), fixed with port
	proc *proc // running process, nil when stopped
}

// proc is one run of redis-server.
type proc struct {
	cmd    *exec.Cmd
	port   int
	logOff int64         // offset in the log where this run's output starts
	done   chan struct{} // closed when the process has been reaped
	err    error         // result of Wait, valid once done is closed
}

// Start starts redis-server on a free loopback port with no persistence
// (--save "" --appendonly no), in a t.TempDir() directory, waits until it
// answers PING (timeout 10s), and registers a cleanup that stops it.
// extraArgs are appended to the command line (e.g. "--requirepass", "x");
// --port, --bind and --dir are managed by Start and must not be passed.
//
// Start fails the test, never skips it, when redis-server is not on PATH.
func Start(tb testing.TB, extraArgs ...string) *Server {
	tb.Helper()
	return startServer(tb, nil, extraArgs)
}

func startServer(tb testing.TB, certs *TLSCerts, extraArgs []string) *Server {
	tb.Helper()
	bin, err := lookPath()
	if err != nil {
		tb.Fatalf("testredis: %v", err)
	}
	s := newServer(bin, tb.TempDir(), extraArgs)
	s.tls = certs
	// Registered after TempDir's cleanup, so it runs before it.
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("testredis: %v", err)
		}
	})
	if err := s.start(); err != nil {
		if certs != nil {
			err = tlsHint(err)
		}
		tb.Fatalf("testredis: %v", err)
	}
	return s
}

// StartMain is Start for a TestMain that shares one server across the
// tests of a package, where no testing.TB is available. It returns the
// server and a function that stops it and removes its directory; the stop
// function is safe to call more than once. It returns an error, rather
// than failing, when redis-server is not on PATH or does not start.
func StartMain(extraArgs ...string) (*Server, func(), error) {
	bin, err := lookPath()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "testredis-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating temporary directory: %v", err)
	}
	s := newServer(bin, dir, extraArgs)
	if err := s.start(); err != nil {
		_ = s.stop()
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := s.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "testredis: %v\n", err)
			}
			_ = os.RemoveAll(dir)
		})
	}
	return s, stop, nil
}

// Addr returns the server's address, "127.0.0.1:PORT". It does not change
// across Stop and Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return addr(s.port)
}

// Stop kills the process with SIGKILL and waits for it to exit. Calling it
// on a stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("testredis: %v", err)
	}
}

// Restart stops the server if it is running and starts it again on the
// same port, retrying for up to 5s while the port cannot be bound, then
// waits until it answers PING. Data does not survive a restart.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if err := s.restart(); err != nil {
		tb.Fatalf("testredis: %v", err)
	}
}

// Client returns a new go-redis client connected to the server (with the
// --requirepass password, if one was given). It is closed at cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := s.newClient()
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// CLI runs one command on the server through go-redis Do, with a fresh
// client, and returns fmt.Sprint of its result; a nil reply gives "<nil>".
// Any other error fails the test. It suits commands such as CLIENT LIST,
// SCRIPT FLUSH or INFO memory.
func (s *Server) CLI(tb testing.TB, args ...string) string {
	tb.Helper()
	if len(args) == 0 {
		tb.Fatalf("testredis: CLI needs a command")
	}
	c := s.newClient()
	defer c.Close()

	cmdArgs := make([]any, len(args))
	for i, a := range args {
		cmdArgs[i] = a
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	res, err := c.Do(ctx, cmdArgs...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		tb.Fatalf("testredis: %s: %v", strings.Join(args, " "), err)
	}
	return fmt.Sprint(res)
}

func lookPath() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH (%v): %s", err, installHint)
	}
	return bin, nil
}

func newServer(bin, dir string, extraArgs []string) *Server {
	s := &Server{
		bin:   bin,
		dir:   dir,
		extra: append([]string(nil), extraArgs...),
	}
	for i := 0; i+1 < len(extraArgs); i++ {
		if strings.EqualFold(extraArgs[i], "--requirepass") {
			s.password = extraArgs[i+1]
		}
	}
	return s
}

func (s *Server) newClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:      s.Addr(),
		Password:  s.password,
		TLSConfig: s.tlsConfig(),
	})
}

// start launches the first run of the server, on a free port, trying
// another one when the chosen port gets taken before redis-server binds it.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		// A cluster node's bus port is picked too: by default it is the
		// port + 10000, in the kernel's ephemeral range, where the
		// TIME_WAIT sockets of a busy machine often hold it.
		n := 1
		if s.clusterNode() {
			n = 2
		}
		ports, perr := freeport.Pick("127.0.0.1", n)
		if perr != nil {
			return fmt.Errorf("finding a free port: %v", perr)
		}
		port, bus := ports[0], 0
		if n == 2 {
			bus = ports[1]
		}
		var p *proc
		p, err = s.launch(port, bus)
		if err != nil {
			return err
		}
		if err = s.waitReady(p); err == nil {
			s.port, s.bus, s.proc = port, bus, p
			return nil
		}
		if !s.addrInUse(p) {
			return err
		}
	}
	return fmt.Errorf("no free port after %d attempts: %v", startAttempts, err)
}

func (s *Server) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		return err
	}
	deadline := time.Now().Add(rebindTimeout)
	for {
		p, err := s.launch(s.port, s.bus)
		if err != nil {
			return err
		}
		err = s.waitReady(p)
		if err == nil {
			s.proc = p
			return nil
		}
		if !s.addrInUse(p) || time.Now().After(deadline) {
			return fmt.Errorf("restarting on port %d: %v", s.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running reports whether the process is up (started and not stopped).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !isDone(s.proc)
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	return p.kill()
}

// launch starts redis-server on port without waiting for it to be ready.
func (s *Server) launch(port, bus int) (*proc, error) {
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log: %v", err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "--- testredis: starting redis-server on %s at %s ---\n",
		addr(port), time.Now().Format(time.RFC3339Nano))
	off, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("opening log: %v", err)
	}

	args := []string{"--port", strconv.Itoa(port)}
	if s.tls != nil {
		args = []string{
			"--port", "0",
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", s.tls.CertFile,
			"--tls-key-file", s.tls.KeyFile,
			"--tls-ca-cert-file", s.tls.CAFile,
			"--tls-auth-clients", "no",
		}
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", "",
	)
	if bus != 0 {
		args = append(args, "--cluster-port", strconv.Itoa(bus))
	}
	args = append(args, s.extra...)
	return startProc(exec.Command(s.bin, args...), s.dir, logFile, port, off)
}

// startProc starts cmd in dir with its output going to logFile, and
// returns it as the proc on port, whose log output starts at logOff.
func startProc(cmd *exec.Cmd, dir string, logFile *os.File, port int, logOff int64) (*proc, error) {
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setProcAttr(cmd)
	p := &proc{cmd: cmd, port: port, logOff: logOff, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits,
		// not the process, and the Go runtime may retire threads. Keep
		// this goroutine on its thread until the child has been reaped.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %v", cmd.Path, err)
	}
	return p, nil
}

// waitReady waits until p answers PING, killing it on failure.
func (s *Server) waitReady(p *proc) error {
	deadline := time.Now().Add(startTimeout)
	var probeErr error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("redis-server on %s exited during startup (%v)%s",
				addr(p.port), p.err, s.logTail(p.logOff))
		default:
		}
		probeErr = probe(addr(p.port), s.password, p.cmd.Process.Pid, s.tlsConfig())
		if probeErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = p.kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %v%s",
				addr(p.port), startTimeout, probeErr, s.logTail(p.logOff))
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// clusterNode reports whether the server runs with --cluster-enabled yes.
func (s *Server) clusterNode() bool {
	for i := 0; i+1 < len(s.extra); i++ {
		if strings.EqualFold(s.extra[i], "--cluster-enabled") && strings.EqualFold(s.extra[i+1], "yes") {
			return true
		}
	}
	return false
}

// addrInUse reports whether p's run failed because its port was taken.
func (s *Server) addrInUse(p *proc) bool {
	out, err := s.readLog(p.logOff)
	return err == nil && strings.Contains(out, "Address already in use")
}

func (s *Server) logPath() string {
	return s.dir + string(os.PathSeparator) + logName
}

func (s *Server) readLog(off int64) (string, error) {
	f, err := os.Open(s.logPath())
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

// logTail returns the last lines of the run whose output starts at off,
// formatted to be appended to an error message.
func (s *Server) logTail(off int64) string {
	out, err := s.readLog(off)
	if err != nil {
		return fmt.Sprintf("\n(reading %s: %v)", s.logPath(), err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("\nredis-server output (%s, tail):\n%s", s.logPath(), strings.Join(lines, "\n"))
}

// kill sends SIGKILL to the process and waits for it to be reaped.
func (p *proc) kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing redis-server (pid %d): %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("redis-server (pid %d) did not exit within %v of SIGKILL", p.cmd.Process.Pid, stopTimeout)
	}
}

// freePort returns a loopback TCP port that was free a moment ago (see
// package freeport).
func freePort() (int, error) {
	ports, err := freeport.Pick("127.0.0.1", 1)
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %v", err)
	}
	return ports[0], nil
}

func addr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// probe checks, over raw RESP2, that the server at address answers PING
// (over TLS when tlsConf is not nil) and, when INFO is allowed, that it is the process pid rather than some
// other process that took the port.
func probe(address, password string, pid int, tlsConf *tls.Config) error {
	var conn net.Conn
	var err error
	if tlsConf != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 500 * time.Millisecond}, "tcp", address, tlsConf)
	} else {
		conn, err = net.DialTimeout("tcp", address, 500*time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	r := bufio.NewReader(conn)

	if password != "" {
		line, err := roundTrip(conn, r, "AUTH", password)
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "-") {
			return fmt.Errorf("AUTH: %s", line[1:])
		}
	}

	line, err := roundTrip(conn, r, "PING")
	if err != nil {
		return err
	}
	noAuth := strings.HasPrefix(line, "-NOAUTH")
	if line != "+PONG" && !noAuth {
		return fmt.Errorf("PING: unexpected reply %q", line)
	}
	if noAuth {
		// It answers, but without credentials we cannot ask its pid.
		return nil
	}

	line, err = roundTrip(conn, r, "INFO", "server")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "$") {
		return nil // INFO renamed or denied: PING is all we can check
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return fmt.Errorf("INFO: bad bulk length %q", line)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			if v != strconv.Itoa(pid) {
				return fmt.Errorf("%s is answered by another process (pid %s, want %d)", address, v, pid)
			}
			return nil
		}
	}
	return nil
}

// roundTrip writes one command as a RESP array and reads the first line
// of its reply, without the trailing CRLF.
func roundTrip(w io.Writer, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
