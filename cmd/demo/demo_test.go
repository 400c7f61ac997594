package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
)

// The tests of this package run Caddy, a process-wide singleton: none of
// them may call t.Parallel.

// startDemo runs the demo on free ports and stops it when the test ends.
func startDemo(t *testing.T, opts options) *demo {
	t.Helper()
	t.Setenv(secretEnv, testSecret)
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Admin == "" {
		opts.Admin = "127.0.0.1:0"
	}
	d, err := run(context.Background(), opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return d
}

// noRedirect is a client that returns redirects instead of following
// them.
func noRedirect(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, c *http.Client, rawURL string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestDemoSmoke(t *testing.T) {
	d := startDemo(t, options{})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}

	// The login form is public.
	resp, body := get(t, browser, d.GatewayURL+"/login?reason=session_expired", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your session expired") {
		t.Fatalf("GET /login: %d, want 200 with the expiry banner:\n%s", resp.StatusCode, body)
	}

	// Sign in; the 303 to / is followed with the new cookie.
	resp, err = browser.PostForm(d.GatewayURL+"/login", url.Values{"user": {"alice"}, "account": {"acme"}, "role": {"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" || !strings.Contains(string(b), "Hello, alice") {
		t.Fatalf("POST /login → %s: %d, want 200 on / with the user name:\n%s", resp.Request.URL, resp.StatusCode, b)
	}
	if resp.Header.Get("Session-Expires-In") == "" {
		t.Errorf("home page lacks Session-Expires-In; headers: %v", resp.Header)
	}
	gw, _ := url.Parse(d.GatewayURL)
	var cookie *http.Cookie
	for _, c := range jar.Cookies(gw) {
		if c.Name == cookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatalf("no %s cookie after login", cookieName)
	}

	// The identity reaches the app; a forged header does not.
	resp, body = get(t, browser, d.GatewayURL+"/", map[string]string{"Session-User": "mallory"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, alice") || strings.Contains(body, "mallory") {
		t.Fatalf("GET /: %d:\n%s", resp.StatusCode, body)
	}

	// Status is JSON with the session.
	resp, body = get(t, browser, d.GatewayURL+"/.session/status", nil)
	var st struct {
		Status, UserID, AccountID, Role string
	}
	if err := json.Unmarshal([]byte(body), &struct {
		Status    *string `json:"status"`
		UserID    *string `json:"user_id"`
		AccountID *string `json:"account_id"`
		Role      *string `json:"role"`
	}{&st.Status, &st.UserID, &st.AccountID, &st.Role}); err != nil {
		t.Fatalf("status: %d %v:\n%s", resp.StatusCode, err, body)
	}
	if resp.StatusCode != http.StatusOK || st.Status != "active" || st.UserID != "alice" || st.AccountID != "acme" || st.Role != "owner" {
		t.Fatalf("status: %d %+v", resp.StatusCode, st)
	}

	// No cookie: a browser navigation is sent to the login page.
	resp, _ = get(t, noRedirect(nil), d.GatewayURL+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("GET / without a cookie: %d Location %q, want 302 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}

	// An API client with a bearer token minted with the same secret.
	tok, err := devtoken.Mint([]byte(testSecret), devtoken.Claims{User: "bob", Account: "acme", Role: "member"})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = get(t, noRedirect(nil), d.GatewayURL+"/api/data", map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user":"bob"`) {
		t.Fatalf("GET /api/data with a bearer token: %d:\n%s", resp.StatusCode, body)
	}

	// The admin API lists both sessions.
	resp, body = get(t, noRedirect(nil), d.AdminURL+"/session_guard/accounts/acme/sessions", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user_id":"alice"`) || !strings.Contains(body, `"user_id":"bob"`) {
		t.Fatalf("admin sessions: %d:\n%s", resp.StatusCode, body)
	}

	// Sign out: the gateway revokes the session, the app clears the
	// cookie; the old cookie no longer works.
	req, _ := http.NewRequest(http.MethodPost, d.GatewayURL+"/.session/logout", nil)
	req.Header.Set("Origin", d.GatewayURL)
	resp, err = noRedirect(jar).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	old := noRedirect(nil)
	req, _ = http.NewRequest(http.MethodGet, d.GatewayURL+"/", nil)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie.Value})
	resp, err = old.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/login?reason=session_revoked&reauth=1" {
		t.Fatalf("revoked cookie: %d Location %q", resp.StatusCode, loc)
	}
	resp, err = noRedirect(jar).Post(d.GatewayURL+"/signout", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(jar.Cookies(gw)) != 0 {
		t.Fatalf("signout: %d, cookies left %v", resp.StatusCode, jar.Cookies(gw))
	}

	// Stopping closes the gateway, the admin endpoint and the app.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{d.GatewayURL, d.UpstreamURL, d.CookieGatewayURL, d.CookieUpstreamURL} {
		pu, _ := url.Parse(u)
		if c, err := net.DialTimeout("tcp", pu.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after stop (gateway %s, cookie site %s)", u, d.GatewayURL, d.CookieGatewayURL)
		}
	}
	// stop again in Cleanup must be harmless
}

// TestDemoBusyListenFallsBack checks that a busy default port does not
// stop the demo.
func TestDemoBusyListenFallsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := startDemo(t, options{Listen: ln.Addr().String(), ListenFallback: true, Admin: "off", Idle: 5 * time.Minute, Absolute: 15 * time.Minute})
	if d.GatewayURL == "http://"+ln.Addr().String() {
		t.Fatalf("gateway took the busy address %s", ln.Addr())
	}
	if d.AdminURL != "" {
		t.Errorf("admin off, but AdminURL = %q", d.AdminURL)
	}
	resp, _ := get(t, noRedirect(nil), d.GatewayURL+"/login", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login: %d", resp.StatusCode)
	}
	if !strings.Contains(d.Policy, "demo (idle 5m, absolute 15m)") {
		t.Errorf("policy %q", d.Policy)
	}

	// Without fallback a busy address is an error.
	if _, err := resolveAddr(ln.Addr().String(), false); err == nil {
		t.Error("resolveAddr of a busy address without fallback: no error")
	}
}

// TestBannerShowsBothApps checks that the quick start prints where both
// demo apps are.
func TestBannerShowsBothApps(t *testing.T) {
	d := startDemo(t, options{})
	var buf strings.Builder
	if err := d.printBanner(&buf, options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{d.GatewayURL + "/login", d.CookieGatewayURL + "/login", d.CookieUpstreamURL, d.AdminURL, "demo_sid"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, buf.String())
		}
	}
	if d.GatewayURL == d.CookieGatewayURL {
		t.Errorf("both sites on %s", d.GatewayURL)
	}
}

// TestResolveSecondAddr checks that the cookie app's site never takes the
// first site's port.
func TestResolveSecondAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := ln.Addr().String()
	ln.Close() // free, but the first site's
	if _, err := resolveSecondAddr(first, first, false); err == nil {
		t.Error("the first site's port without fallback: no error")
	}
	got, err := resolveSecondAddr(first, first, true)
	if err != nil || got == first {
		t.Errorf("the first site's port with fallback: %q, %v; want another port", got, err)
	}
	_, p1, _ := net.SplitHostPort(first)
	if got, err := resolveSecondAddr("0.0.0.0:"+p1, first, true); err != nil || strings.HasSuffix(got, ":"+p1) {
		t.Errorf("the first site's port on another host: %q, %v; want another port", got, err)
	}
}

// TestReturnToStaysOnSite: the login's return_to is a path on this site,
// never another site.
func TestReturnToStaysOnSite(t *testing.T) {
	for in, want := range map[string]string{
		"/security?x=1#y": "/security?x=1#y", "": "/", "https://evil.example/": "/",
		"//evil.example/": "/", "/\\evil.example": "/", "security": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := returnTo(in); got != want {
			t.Errorf("returnTo(%q) = %q, want %q", in, got, want)
		}
	}
}
