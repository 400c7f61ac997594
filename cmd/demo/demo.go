package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// Caddy's standard modules (http app, reverse_proxy, the Caddyfile
	// adapter, ...) and every sessionguard module.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/sessionguard/sessionguard"

	"github.com/sessionguard/sessionguard/internal/freeport"
)

// secretEnv is the environment variable the gateway reads the HS256
// secret from ({env.SESSION_JWT_SECRET} in the Caddyfile).
const secretEnv = "SESSION_JWT_SECRET"

// Built-in defaults the demo's flags are checked against; see
// CONTRACT.md (strict preset, default bounds, warn_before).
const (
	defaultIdle        = 15 * time.Minute
	defaultAbsolute    = 12 * time.Hour
	defaultIdleMin     = 5 * time.Minute
	defaultIdleMax     = 720 * time.Hour
	defaultAbsoluteMin = 15 * time.Minute
	defaultAbsoluteMax = 2160 * time.Hour
	defaultWarnBefore  = 5 * time.Minute
	minDemoDuration    = time.Minute
	tokenTTL           = 12 * time.Hour
)

//go:embed Caddyfile.tmpl
var caddyfileTemplate string

var tmpl = template.Must(template.New("Caddyfile.tmpl").Option("missingkey=error").Parse(caddyfileTemplate))

// options configure one run of the demo.
type options struct {
	// Listen is the gateway's host:port. Port 0 picks a free port.
	Listen string
	// ListenFallback picks a free port when Listen is busy.
	ListenFallback bool
	// CookieListen is the host:port of the gateway's second site, in
	// front of the cookie app (opaque session cookies). Port 0 picks a
	// free port; empty is 127.0.0.1:0.
	CookieListen string
	// CookieListenFallback picks a free port when CookieListen is busy.
	CookieListenFallback bool
	// Admin is Caddy's admin endpoint (host:port) or "off". Port 0 picks
	// a free port.
	Admin string
	// AdminFallback picks a free port when Admin is busy.
	AdminFallback bool
	// Idle and Absolute, when either is set, define the preset "demo"
	// and make it the default; the other one comes from strict.
	Idle, Absolute time.Duration
	// WarnBefore overrides warn_before; zero picks a value that fits the
	// preset.
	WarnBefore time.Duration
	// Verbose logs at DEBUG level and writes access logs.
	Verbose bool
	// ClientTick and ClientPoll steer session-expiry.js on the demo's
	// pages: how often it re-evaluates the deadlines (default 30s) and
	// how long a quiet page waits before polling the status (default
	// 60s). Tests shorten them.
	ClientTick, ClientPoll time.Duration
	// Secret is the HS256 secret. Empty: $SESSION_JWT_SECRET, else a
	// random one (which is then put into the environment, where the
	// Caddyfile's {env.SESSION_JWT_SECRET} finds it).
	Secret string
	// configure, when set, edits the adapted JSON config before it is
	// loaded (tests give the gateway a clock with it).
	configure func([]byte) []byte
}

// demo is a running demo: the two upstream apps and the embedded Caddy
// in front of them.
type demo struct {
	// GatewayURL is the gateway's base URL, e.g. http://127.0.0.1:8080.
	GatewayURL string
	// AdminURL is the admin endpoint's base URL; empty when it is off.
	AdminURL string
	// UpstreamURL is the app behind the gateway.
	UpstreamURL string
	// CookieGatewayURL is the base URL of the gateway's site in front of
	// the cookie app, e.g. http://127.0.0.1:8081.
	CookieGatewayURL string
	// CookieUpstreamURL is the cookie app behind that site.
	CookieUpstreamURL string
	// Caddyfile is the rendered Caddyfile that is running.
	Caddyfile []byte
	// SecretGenerated reports that the secret was made up for this run.
	SecretGenerated bool
	// Policy describes the default policy, for the banner.
	Policy string

	secret    []byte
	cookieApp *cookieApp
	upstreams []*upstream
	stopOnce  sync.Once
	stopErr   error
}

// upstream is one of the demo apps, serving on a loopback port.
type upstream struct {
	name string
	srv  *http.Server
	ln   net.Listener
	err  chan error
}

// startUpstream serves h on a free loopback port.
func startUpstream(ctx context.Context, name string, h http.Handler) (*upstream, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	u := &upstream{name: name, ln: ln, err: make(chan error, 1), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { u.err <- u.srv.Serve(ln) }()
	return u, nil
}

// addr is the upstream's host:port.
func (u *upstream) addr() string { return u.ln.Addr().String() }

// closeUpstreams closes the upstreams at once, after a failed start.
func (d *demo) closeUpstreams() {
	for _, u := range d.upstreams {
		_ = u.srv.Close()
	}
}

// caddyfileData fills Caddyfile.tmpl.
type caddyfileData struct {
	Admin                string
	LogLevel             string
	AccessLog            bool
	Host, Port, Upstream string
	// CookieHost, CookiePort and CookieUpstream are the site of the
	// cookie app.
	CookieHost, CookiePort, CookieUpstream string
	Preset                                 *presetData
	IdleMin, AbsoluteMin                   string
	WarnBefore                             string
}

type presetData struct{ Idle, Absolute string }

// run starts the upstream app and Caddy in front of it. Stop the demo
// with (*demo).stop. Caddy is a process-wide singleton: only one demo
// may run at a time.
func run(ctx context.Context, opts options) (*demo, error) {
	secret, generated, err := resolveSecret(opts.Secret)
	if err != nil {
		return nil, err
	}
	listen, err := resolveAddr(opts.Listen, opts.ListenFallback)
	if err != nil {
		return nil, fmt.Errorf("listen address: %w", err)
	}
	cookieListen := opts.CookieListen
	if cookieListen == "" {
		cookieListen = "127.0.0.1:0"
	}
	if cookieListen, err = resolveSecondAddr(cookieListen, listen, opts.CookieListenFallback); err != nil {
		return nil, fmt.Errorf("cookie app listen address: %w", err)
	}
	admin := opts.Admin
	if admin != "off" {
		if admin, err = resolveAddr(admin, opts.AdminFallback); err != nil {
			return nil, fmt.Errorf("admin address: %w", err)
		}
	}
	data, policyDesc, err := policyData(opts)
	if err != nil {
		return nil, err
	}

	d := &demo{secret: []byte(secret), SecretGenerated: generated, Policy: policyDesc}
	ttl := max(tokenTTL, opts.Absolute)
	client := clientConfig{Tick: opts.ClientTick, Poll: opts.ClientPoll}
	jwtApp, err := startUpstream(ctx, "upstream", newApp(d.secret, ttl, client))
	if err != nil {
		return nil, err
	}
	d.upstreams = append(d.upstreams, jwtApp)
	d.cookieApp = newCookieApp(ttl, client)
	ckApp, err := startUpstream(ctx, "cookie app", d.cookieApp)
	if err != nil {
		d.closeUpstreams()
		return nil, err
	}
	d.upstreams = append(d.upstreams, ckApp)
	d.UpstreamURL = "http://" + jwtApp.addr()
	d.CookieUpstreamURL = "http://" + ckApp.addr()

	host, port, _ := net.SplitHostPort(listen)
	cookieHost, cookiePort, _ := net.SplitHostPort(cookieListen)
	data.Admin = admin
	data.Host, data.Port = host, port
	data.Upstream = jwtApp.addr()
	data.CookieHost, data.CookiePort = cookieHost, cookiePort
	data.CookieUpstream = ckApp.addr()
	data.LogLevel = "WARN"
	if opts.Verbose {
		data.LogLevel, data.AccessLog = "DEBUG", true
	}
	if d.Caddyfile, err = render(data); err != nil {
		d.closeUpstreams()
		return nil, err
	}
	if err := load(d.Caddyfile, opts.configure); err != nil {
		d.closeUpstreams()
		return nil, err
	}
	d.GatewayURL = "http://" + urlHost(host, port)
	d.CookieGatewayURL = "http://" + urlHost(cookieHost, cookiePort)
	if admin != "off" {
		ah, ap, _ := net.SplitHostPort(admin)
		d.AdminURL = "http://" + urlHost(ah, ap)
	}
	return d, nil
}

// stop shuts Caddy down — its apps and its admin endpoint — and then the
// upstream apps. Calls after the first return the first one's result.
func (d *demo) stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.shutdown() })
	return d.stopErr
}

func (d *demo) shutdown() error {
	// caddy.Stop stops the apps but leaves the admin endpoint listening;
	// loading an empty config with the endpoint disabled closes it (and
	// stops the apps) first.
	var errs []error
	if err := caddy.Load([]byte(unloadConfig), true); err != nil {
		errs = append(errs, fmt.Errorf("unloading caddy config: %w", err))
	}
	if err := caddy.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stopping caddy: %w", err))
	}
	// Caddy returns once its servers have begun to shut down; wait until
	// the sites' listeners are closed, so a stopped demo is really gone.
	for _, u := range []string{d.GatewayURL, d.CookieGatewayURL} {
		if err := waitClosed(strings.TrimPrefix(u, "http://"), 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range d.upstreams {
		if err := u.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", u.name, err))
		}
		select {
		case err := <-u.err:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s did not stop in time", u.name))
		}
	}
	return errors.Join(errs...)
}

// waitClosed waits until nothing accepts connections at addr.
func waitClosed(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return nil
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %s still accepts connections %s after stopping", addr, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unloadConfig replaces the demo's config on stop: no apps, no admin
// endpoint, nothing persisted, and quiet about it.
const unloadConfig = `{"admin":{"disabled":true,"config":{"persist":false}},"logging":{"logs":{"default":{"level":"ERROR"}}}}`

// render fills the Caddyfile template.
func render(data caddyfileData) ([]byte, error) {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("rendering Caddyfile: %w", err)
	}
	return buf.Bytes(), nil
}

// adapt turns a Caddyfile into Caddy's JSON config.
func adapt(filename string, body []byte) ([]byte, []caddyconfig.Warning, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, nil, errors.New("caddyfile adapter not registered")
	}
	cfg, warnings, err := adapter.Adapt(body, map[string]any{"filename": filename})
	if err != nil {
		return nil, warnings, fmt.Errorf("adapting %s: %w", filename, err)
	}
	return cfg, warnings, nil
}

// load adapts the Caddyfile, edits it with configure when set, and
// runs it in this process.
func load(body []byte, configure func([]byte) []byte) error {
	cfg, warnings, err := adapt("Caddyfile", body)
	if err != nil {
		return err
	}
	if configure != nil {
		cfg = configure(cfg)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "caddyfile warning: %s\n", w.String())
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("starting caddy: %w", err)
	}
	return nil
}

// resolveSecret returns the HS256 secret: s, else $SESSION_JWT_SECRET,
// else a random one. The gateway reads it from the environment, so it is
// put there when it is not there already.
func resolveSecret(s string) (secret string, generated bool, err error) {
	if s == "" {
		s = os.Getenv(secretEnv)
	}
	if s == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", false, fmt.Errorf("generating secret: %w", err)
		}
		s, generated = base64.RawURLEncoding.EncodeToString(b), true
	}
	if len(s) < 32 {
		return "", false, fmt.Errorf("%s must be at least 32 bytes for HS256 (got %d)", secretEnv, len(s))
	}
	if os.Getenv(secretEnv) != s {
		if err := os.Setenv(secretEnv, s); err != nil {
			return "", false, fmt.Errorf("setting %s: %w", secretEnv, err)
		}
	}
	return s, generated, nil
}

// resolveAddr checks that host:port can be listened on. Port 0, or a busy
// port with fallback, becomes a free port on the same host.
func resolveAddr(addr string, fallback bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			_ = ln.Close()
			return addr, nil
		}
		if !fallback {
			return "", fmt.Errorf("%s is not available: %w", addr, err)
		}
	}
	// Caddy binds it a moment later: a port no outgoing connection can
	// take meanwhile
	free, err := freeport.Pick(host, 1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(free[0])), nil
}

// resolveSecondAddr is resolveAddr for a second listener, which must not
// take the first one's port (whatever the hosts: one may be a wildcard):
// a free port is drawn again, and a taken fixed port falls back like a
// busy one.
func resolveSecondAddr(addr, first string, fallback bool) (string, error) {
	_, firstPort, _ := net.SplitHostPort(first)
	for range 5 {
		got, err := resolveAddr(addr, fallback)
		if err != nil {
			return "", err
		}
		if _, port, _ := net.SplitHostPort(got); port != firstPort {
			return got, nil
		}
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			if !fallback {
				return "", fmt.Errorf("%s is taken by the other site", addr)
			}
			host, _, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(host, "0")
		}
	}
	return "", fmt.Errorf("no free port for %s", addr)
}

// urlHost is host:port for a URL; an empty or wildcard host becomes
// 127.0.0.1.
func urlHost(host, port string) string {
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// policyData turns the -idle, -absolute and -warn flags into the
// Caddyfile's preset, bounds and warn_before, and describes the result.
func policyData(opts options) (caddyfileData, string, error) {
	var data caddyfileData
	idle, abs := defaultIdle, defaultAbsolute
	name := "strict"
	if opts.Idle != 0 || opts.Absolute != 0 {
		name = "demo"
		if opts.Idle != 0 {
			idle = opts.Idle
		}
		if opts.Absolute != 0 {
			abs = opts.Absolute
		}
		switch {
		case idle < minDemoDuration || abs < minDemoDuration:
			return data, "", fmt.Errorf("-idle and -absolute must be at least %s", minDemoDuration)
		case idle > defaultIdleMax:
			return data, "", fmt.Errorf("-idle %s is above the maximum %s", fmtDur(idle), fmtDur(defaultIdleMax))
		case abs > defaultAbsoluteMax:
			return data, "", fmt.Errorf("-absolute %s is above the maximum %s", fmtDur(abs), fmtDur(defaultAbsoluteMax))
		case idle > abs:
			return data, "", fmt.Errorf("-idle %s is longer than -absolute %s", fmtDur(idle), fmtDur(abs))
		}
		data.Preset = &presetData{Idle: fmtDur(idle), Absolute: fmtDur(abs)}
		if idle < defaultIdleMin {
			data.IdleMin = fmtDur(idle)
		}
		if abs < defaultAbsoluteMin {
			data.AbsoluteMin = fmtDur(abs)
		}
	}
	warn := opts.WarnBefore
	switch {
	case warn < 0:
		return data, "", errors.New("-warn must not be negative")
	case warn == 0 && idle <= 2*defaultWarnBefore:
		// A 5m warning on a 5m idle limit would always say "soon".
		warn = (idle / 2).Truncate(time.Second)
	case warn == 0:
		warn = defaultWarnBefore
	}
	data.WarnBefore = fmtDur(warn)
	desc := fmt.Sprintf("default preset %s (idle %s, absolute %s), warning %s before expiry, memory store",
		name, fmtDur(idle), fmtDur(abs), fmtDur(warn))
	return data, desc, nil
}

// fmtDur formats d the way one writes it in a Caddyfile: 5m, 1h30m, 90s
// → 1m30s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
