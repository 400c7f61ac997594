package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/freeport"
)

// freePorts returns n distinct loopback TCP ports that were free a
// moment ago (all held open while chosen, so none comes back twice).
func freePorts(n int) ([]int, error) { return freeport.Pick("127.0.0.1", n) }

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// moduleRoot returns the directory of the sessionguard go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run loadbench inside the sessionguard module")
	}
	return filepath.Dir(mod), nil
}

// build compiles the packages (import paths relative to the module root)
// into dir and returns the binaries' paths, in order.
func build(root, dir string, pkgs ...string) ([]string, error) {
	var bins []string
	for _, p := range pkgs {
		bin := filepath.Join(dir, filepath.Base(p))
		cmd := exec.Command("go", "build", "-o", bin, p)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", p, err, out)
		}
		bins = append(bins, bin)
	}
	return bins, nil
}

// process is a child process the benchmark started.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// start runs bin with args, its output in dir/<name>.log, and waits until
// url answers an HTTP request (any status) within 15s.
func start(dir, name, url, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited during startup:\n%s", name, b)
		case <-ctx.Done():
			p.stop()
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s did not answer on %s within 15s:\n%s", name, url, b)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
	}
}

// stop kills the process (SIGKILL; nothing of it needs to survive).
func (p *process) stop() {
	if p != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}
