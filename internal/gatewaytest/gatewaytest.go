// Package gatewaytest runs a real Caddy with sessionguard in the test
// process, on free loopback ports, in front of a recording upstream, with
// an injected clock. Caddy is a process-wide singleton: tests that use
// this package must not run in parallel with each other.
package gatewaytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessionguard/sessionguard/admin"
	_ "github.com/sessionguard/sessionguard/caddymodule"
	"github.com/sessionguard/sessionguard/internal/freeport"
	"github.com/sessionguard/sessionguard/internal/testclock"
)

// Gateway is a running Caddy.
type Gateway struct {
	// URL is the site's base URL, e.g. http://127.0.0.1:PORT.
	URL string
	// Admin is the admin endpoint's base URL.
	Admin string
	// Clock is the gateway's clock.
	Clock *testclock.Clock
	// Upstream records what reached the app.
	Upstream *Upstream
	// Client does not follow redirects.
	Client *http.Client

	httpPort, adminPort int
}

// Upstream is a recording app behind the gateway. It answers 200 with a
// JSON object of the Session-* request headers it received.
type Upstream struct {
	*httptest.Server
	mu      sync.Mutex
	last    http.Header
	trailer http.Header
	hits    int
	// Extra response headers the upstream sends.
	Extra http.Header
}

// Last returns the request headers of the last request that reached the
// upstream, and how many did.
func (u *Upstream) Last() (http.Header, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last.Clone(), u.hits
}

// SetExtra replaces the extra response headers the upstream sends.
func (u *Upstream) SetExtra(h http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Extra = h
}

// LastTrailer returns the request trailers of the last request that
// reached the upstream.
func (u *Upstream) LastTrailer() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.trailer.Clone()
}

func newUpstream(t testing.TB) *Upstream {
	u := &Upstream{Extra: http.Header{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // trailers come after the body
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.trailer = r.Trailer.Clone()
		u.hits++
		extra := u.Extra.Clone()
		u.mu.Unlock()
		for k, v := range extra {
			w.Header()[k] = v
		}
		if r.URL.Path == LoginPath {
			login(w, r)
		}
		seen := map[string]string{}
		for k := range r.Header {
			if strings.HasPrefix(k, "Session-") {
				seen[k] = r.Header.Get(k)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen)
	}))
	t.Cleanup(u.Close)
	return u
}

// LoginPath is where the recording upstream acts as an app's login in
// opaque-cookie mode: its answer sets the cookie named by the query
// parameter "cookie" (default "sid") to "value", and binds it with the
// Session-Guard-Bind-* headers from the parameters user, account, role,
// name and email (empty ones are left out).
const LoginPath = "/.gatewaytest/login"

// login adds the Set-Cookie and bind headers of a LoginPath request.
func login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("cookie")
	if name == "" {
		name = "sid"
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: q.Get("value"), Path: "/", HttpOnly: true})
	for _, f := range []string{"User", "Account", "Role", "Name", "Email"} {
		if v := q.Get(strings.ToLower(f)); v != "" {
			w.Header().Set("Session-Guard-Bind-"+f, v)
		}
	}
}

// Binding is what an app's login binds to an opaque session cookie.
type Binding struct {
	Cookie                           string // the cookie's name; default "sid"
	Value                            string // the cookie's value
	User, Account, Role, Name, Email string
}

// Bind logs in through the gateway in opaque-cookie mode: the recording
// upstream answers POST LoginPath by setting the cookie and binding it
// (see LoginPath). It fails the test unless the gateway answers 200,
// passes the cookie on and removes the bind headers.
func (g *Gateway) Bind(t testing.TB, b Binding) {
	t.Helper()
	q := url.Values{"cookie": {b.Cookie}, "value": {b.Value}, "user": {b.User}, "account": {b.Account},
		"role": {b.Role}, "name": {b.Name}, "email": {b.Email}}
	r := g.Do(t, http.MethodPost, LoginPath+"?"+q.Encode(), "", nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login binding %q: status %d: %s", b.Value, r.StatusCode, r.Body)
	}
	for name := range r.Header {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "session-guard-bind") {
			t.Fatalf("login binding %q: bind header %q reached the client", b.Value, name)
		}
	}
	if len(r.Cookies()) == 0 {
		t.Fatalf("login binding %q: no Set-Cookie reached the client", b.Value)
	}
}

// FreePorts returns n distinct free loopback ports: all n are held open
// while they are chosen, so two calls in a row cannot get the same port
// back (which would put the admin endpoint and the site on one port).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freeport.Pick("127.0.0.1", n)
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return ports
}

// Start runs Caddy with the given Caddyfile. In the Caddyfile, {UPSTREAM}
// is replaced with the recording upstream's host:port and {SITE} with
// the site address; global options for the admin endpoint and ports are
// added in front of globals (the content of the global options block,
// without braces). The clock starts at start.
func Start(t testing.TB, globals, site string, start time.Time) *Gateway {
	t.Helper()
	up := newUpstream(t) // before choosing ports: it takes one of its own
	ports := FreePorts(t, 2)
	g := &Gateway{
		Clock:     testclock.New(start),
		Upstream:  up,
		httpPort:  ports[0],
		adminPort: ports[1],
		Client: &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.httpPort)
	g.Admin = fmt.Sprintf("http://127.0.0.1:%d", g.adminPort)
	t.Cleanup(func() { _ = caddy.Stop() })
	g.Load(t, globals, site)
	return g
}

// Caddyfile renders the full Caddyfile.
func (g *Gateway) Caddyfile(globals, site string) string {
	site = strings.ReplaceAll(site, "{UPSTREAM}", strings.TrimPrefix(g.Upstream.URL, "http://"))
	site = strings.ReplaceAll(site, "{SITE}", fmt.Sprintf("http://127.0.0.1:%d", g.httpPort))
	return fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	auto_https off
	persist_config off
	skip_install_trust
	log {
		level ERROR
	}
%s
}
%s
`, g.adminPort, g.httpPort, globals, site)
}

// Adapt turns a Caddyfile into JSON config.
func Adapt(t testing.TB, caddyfile string) []byte {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warns, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapting Caddyfile: %v\n%s", err, caddyfile)
	}
	for _, w := range warns {
		t.Logf("caddyfile warning: %s", w.String())
	}
	return cfg
}

// Load (re)loads the gateway with a new config.
func (g *Gateway) Load(t testing.TB, globals, site string) {
	t.Helper()
	if err := g.TryLoad(t, globals, site); err != nil {
		t.Fatalf("loading config: %v", err)
	}
}

// Config is the JSON config of the Caddyfile, on the gateway's clock:
// what Load loads, for a test that loads it through the admin API.
func (g *Gateway) Config(t testing.TB, globals, site string) []byte {
	t.Helper()
	// formatted like `caddy fmt`, so adapting does not warn about layout
	cfg := Adapt(t, string(caddyfile.Format([]byte(g.Caddyfile(globals, site)))))
	return WithClock(t, cfg, g.Clock.Now)
}

// TryLoad is Load returning the error.
func (g *Gateway) TryLoad(t testing.TB, globals, site string) error {
	t.Helper()
	cfg := g.Config(t, globals, site)
	loadErr := caddy.Load(cfg, true)
	// Even a config that fails to load replaces the admin endpoint.
	if err := g.settle(); err != nil {
		return errors.Join(loadErr, err)
	}
	// A replaced server closes its idle connections just after its
	// listener, in the background: a kept-alive connection taken from the
	// pool in between fails, and a POST is not retried.
	g.Client.CloseIdleConnections()
	return loadErr
}

// settle waits until the site answers and each of the site and admin
// ports has a single listening socket. Caddy binds each config's
// sockets with SO_REUSEPORT and closes the previous config's only after
// Load returns (the admin endpoint's in the background, even after a
// failed load): until then the kernel spreads new connections over the
// old and new sockets, and those queued on the closing one are reset.
func (g *Gateway) settle() error {
	deadline := time.Now().Add(5 * time.Second)
	var n map[int]int
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", g.httpPort), 100*time.Millisecond)
		if err == nil {
			c.Close()
			var ok bool
			if n, ok = listening(g.httpPort, g.adminPort); !ok || n[g.httpPort] == 1 && n[g.adminPort] == 1 {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("site (port %d) and admin (port %d) did not settle on one listener each: %v", g.httpPort, g.adminPort, n)
}

// Do sends a request to the site. Headers are given as name, value pairs.
func (g *Gateway) Do(t testing.TB, method, path, bearer string, body io.Reader, headers ...string) *Response {
	t.Helper()
	req, err := http.NewRequest(method, g.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return do(t, g.Client, req)
}

// DoAfterReload is Do for the first request after a reload, on a fresh
// connection (TryLoad waited for the old listeners to close and dropped
// the idle connections, which the old server closes).
func (g *Gateway) DoAfterReload(t testing.TB, method, path, bearer string) *Response {
	t.Helper()
	g.Client.CloseIdleConnections()
	return g.Do(t, method, path, bearer, nil)
}

// AdminDo sends a request to the admin endpoint.
func (g *Gateway) AdminDo(t testing.TB, method, path string, body []byte, headers ...string) *Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, g.Admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, g.Client, req)
}

// Response is a response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.Body, err)
	}
}

func do(t testing.TB, c *http.Client, req *http.Request) *Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Response: resp, Body: b}
}
