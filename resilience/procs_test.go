package resilience

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

var (
	buildOnce sync.Once
	caddyBin  string
	buildErr  error
	buildDir  string
)

// TestMain removes the binary built for the multi-process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// caddyBinary builds ./cmd/caddy once per test binary.
func caddyBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sg-caddy-")
		if buildErr != nil {
			return
		}
		caddyBin = filepath.Join(buildDir, "caddy")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", caddyBin, "./cmd/caddy")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// proc is one Caddy process.
type proc struct {
	URL, Admin string
	Client     *http.Client
	Pid        int
	Caddyfile  []byte // the config it was started with
}

// hs256Handler is the session_guard block of startCaddy's site.
var hs256Handler = fmt.Sprintf(`session_guard {
		jwt {
			alg HS256
			secret %s
			issuer https://idp.example
			audience app
		}
	}`, secret)

// startCaddy runs the built Caddy with a Caddyfile made of globals and
// a site proxying to upstream, and waits until it answers.
func startCaddy(t testing.TB, globals, upstream string) *proc {
	t.Helper()
	return startCaddyWith(t, globals, hs256Handler, upstream)
}

// startCaddyWith is startCaddy with the site's session_guard block.
func startCaddyWith(t testing.TB, globals, handler, upstream string) *proc {
	t.Helper()
	bin := caddyBinary(t)
	ports := gatewaytest.FreePorts(t, 2)
	httpPort, adminPort := ports[0], ports[1]
	p := &proc{
		URL:    fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		Admin:  fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		Client: &http.Client{Timeout: 10 * time.Second},
	}
	dir := t.TempDir()
	cf := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	auto_https off
	persist_config off
	skip_install_trust
	storage file_system %s
	log {
		level ERROR
	}
	%s
}
http://127.0.0.1:%d {
	%s
	reverse_proxy %s
}
`, adminPort, httpPort, filepath.Join(dir, "data"), globals, httpPort, handler, upstream)
	path := filepath.Join(dir, "Caddyfile")
	p.Caddyfile = []byte(cf)
	if err := os.WriteFile(path, p.Caddyfile, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.Pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", out.String())
		}
	})
	waitUntil(t, 20*time.Second, "caddy to answer on "+p.URL, func() bool {
		select {
		case <-done:
			t.Fatalf("caddy exited:\n%s", out.String())
		default:
		}
		resp, err := p.Client.Get(p.URL + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	return p
}

func (p *proc) do(t testing.TB, method, url, bearer string, body []byte, headers ...string) *gatewaytest.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &gatewaytest.Response{Response: resp, Body: b}
}

func okUpstream(t testing.TB) string {
	u := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(u.Close)
	return u.Listener.Addr().String()
}

func headerInt(t testing.TB, r *gatewaytest.Response, name string) int {
	t.Helper()
	v, err := strconv.Atoi(r.Header.Get(name))
	if err != nil {
		t.Fatalf("%s = %q: %v", name, r.Header.Get(name), err)
	}
	return v
}
