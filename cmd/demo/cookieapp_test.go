package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// The cookie app through the demo gateway, without a browser: the
// gateway binds the app's own session cookie from its login response,
// hides the bind headers, passes the identity on, and ends the session
// when the app clears the cookie or the idle limit passes.

// do sends a request through c and returns the response with its body
// read.
func do(t *testing.T, c *http.Client, method, rawURL string, hdr map[string]string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// cookieSignIn posts the cookie app's login form through the gateway
// and returns the 303 answer, unfollowed.
func cookieSignIn(t *testing.T, d *demo, jar http.CookieJar, user, account, role string) *http.Response {
	t.Helper()
	resp, err := noRedirect(jar).PostForm(d.CookieGatewayURL+"/login", url.Values{"user": {user}, "account": {account}, "role": {role}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /login: %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp
}

// jarCookie returns the cookie app's session cookie in jar, or nil.
func jarCookie(t *testing.T, jar http.CookieJar, base string) *http.Cookie {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range jar.Cookies(u) {
		if c.Name == appCookieName {
			return c
		}
	}
	return nil
}

// setCookieFor returns the response's Set-Cookie of name, or nil.
func setCookieFor(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestCookieAppThroughGateway(t *testing.T) {
	d := startDemo(t, options{})
	base := d.CookieGatewayURL
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := noRedirect(jar)

	// The login page passes the gateway (no cookie: unbound, passed on).
	resp, body := do(t, c, http.MethodGet, base+"/login", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "demo_sid") || strings.Contains(body, "mints a JWT") {
		t.Fatalf("GET /login: %d, want 200 with the cookie app's form:\n%s", resp.StatusCode, body)
	}
	// Without a session the app itself sends a navigation to its login
	// page (303); the gateway has nothing to say about a stranger.
	resp, _ = do(t, c, http.MethodGet, base+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without a cookie: %d Location %q, want the app's 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Sign in: the app sets its cookie and the bind headers; the gateway
	// binds the session and removes the headers.
	resp = cookieSignIn(t, d, jar, "alice", "acme", "owner")
	for name := range resp.Header {
		if strings.HasPrefix(strings.ToLower(name), "session-guard-bind") {
			t.Errorf("the client sees the bind header %s: %q", name, resp.Header.Values(name))
		}
	}
	sc := setCookieFor(resp, appCookieName)
	if sc == nil || len(sc.Value) < 40 || !sc.HttpOnly {
		t.Fatalf("login response Set-Cookie %s = %+v, want a random HttpOnly value", appCookieName, sc)
	}
	if n := d.cookieApp.count(); n != 1 {
		t.Fatalf("the app holds %d sessions, want 1", n)
	}

	// The bound session reaches the app with the gateway's identity; a
	// forged identity header does not.
	resp, body = do(t, c, http.MethodGet, base+"/", map[string]string{"Accept": "text/html", "Session-User": "mallory", "session_account": "evil"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, alice") ||
		!strings.Contains(body, "<td>acme</td>") || !strings.Contains(body, "<td>owner</td>") ||
		strings.Contains(body, "mallory") || strings.Contains(body, "evil") {
		t.Fatalf("GET /: %d, want alice's page with the gateway's identity:\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Session-Expires-In") == "" || resp.Header.Get("Session-Expiry-Warning") != "none" {
		t.Errorf("GET / lacks the expiry headers: %v", resp.Header)
	}

	// The gateway's view of the session: what the app bound.
	resp, body = do(t, c, http.MethodGet, base+"/.session/status", nil)
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d %v:\n%s", resp.StatusCode, err, body)
	}
	for k, want := range map[string]string{"status": "active", "user_id": "alice", "account_id": "acme", "role": "owner", "name": "alice", "email": "alice@acme.example"} {
		if st[k] != want {
			t.Errorf("status %s = %v, want %q", k, st[k], want)
		}
	}
	resp, body = do(t, noRedirect(nil), http.MethodGet, d.AdminURL+"/session_guard/accounts/acme/sessions", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user_id":"alice"`) || !strings.Contains(body, `"email":"alice@acme.example"`) {
		t.Fatalf("admin sessions: %d:\n%s", resp.StatusCode, body)
	}

	// A cookie no session is bound to passes without identity (unbound
	// pass): the API sees nobody.
	resp, body = do(t, noRedirect(nil), http.MethodGet, base+"/api/data", nil, &http.Cookie{Name: appCookieName, Value: "never-bound-0123456789"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user":""`) {
		t.Fatalf("GET /api/data with an unbound cookie: %d, want 200 without identity:\n%s", resp.StatusCode, body)
	}

	// Sign out with the app alone: it ends its session and clears the
	// cookie; the gateway sees the cleared cookie and ends its session.
	old := jarCookie(t, jar, base)
	if old == nil {
		t.Fatal("no session cookie in the jar")
	}
	resp, _ = do(t, c, http.MethodPost, base+"/signout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?signed_out=1" {
		t.Fatalf("POST /signout: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if ck := jarCookie(t, jar, base); ck != nil {
		t.Errorf("cookie left after sign-out: %+v", ck)
	}
	if n := d.cookieApp.count(); n != 0 {
		t.Errorf("the app holds %d sessions after sign-out, want 0", n)
	}

	// The old cookie, replayed, is refused by the gateway, which expires
	// it again: 401 for an API call, 302 with the reason for a navigation.
	oldCookie := &http.Cookie{Name: appCookieName, Value: old.Value}
	resp, body = do(t, noRedirect(nil), http.MethodGet, base+"/api/data", map[string]string{"Accept": "application/json"}, oldCookie)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"session_revoked"`) || resp.Header.Get("Session-Expiry-Reason") != "revoked" {
		t.Errorf("old cookie on /api/data: %d %q, want 401 session_revoked:\n%s", resp.StatusCode, resp.Header.Get("Session-Expiry-Reason"), body)
	}
	if ck := setCookieFor(resp, appCookieName); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("old cookie on /api/data: Set-Cookie %+v, want the cookie expired", ck)
	}
	resp, _ = do(t, noRedirect(nil), http.MethodGet, base+"/", map[string]string{"Accept": "text/html"}, oldCookie)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login?reason=session_revoked" {
		t.Errorf("old cookie on /: %d Location %q, want 302 to /login?reason=session_revoked", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCookieAppIdleExpiry lets the idle limit pass on the gateway's
// injected clock: a navigation with the cookie is redirected to the
// login page with the reason and the cookie is expired.
func TestCookieAppIdleExpiry(t *testing.T) {
	clock := new(offsetClock)
	d := startDemo(t, options{Idle: 5 * time.Minute, Absolute: 15 * time.Minute,
		configure: func(cfg []byte) []byte { return gatewaytest.WithClock(t, cfg, clock.Now) }})
	base := d.CookieGatewayURL
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := noRedirect(jar)
	cookieSignIn(t, d, jar, "bob", "acme", "member")

	// Activity keeps the session: after 4 minutes a request extends it.
	clock.Advance(4 * time.Minute)
	resp, _ := do(t, c, http.MethodGet, base+"/api/data", nil)
	if n, _ := strconv.Atoi(resp.Header.Get("Session-Idle-Expires-In")); resp.StatusCode != http.StatusOK || n < 295 {
		t.Fatalf("after 4m: %d Session-Idle-Expires-In %q, want 200 and the full 300", resp.StatusCode, resp.Header.Get("Session-Idle-Expires-In"))
	}
	// 4 quiet minutes later the (passive) status warns: 1m left.
	clock.Advance(4 * time.Minute)
	resp, _ = do(t, c, http.MethodGet, base+"/.session/status", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Session-Expiry-Warning") != "soon" || resp.Header.Get("Session-Expiry-Reason") != "idle" {
		t.Fatalf("after 8m: %d warning %q reason %q, want 200, soon, idle", resp.StatusCode,
			resp.Header.Get("Session-Expiry-Warning"), resp.Header.Get("Session-Expiry-Reason"))
	}

	// Past the idle limit.
	clock.Advance(time.Minute + time.Second)
	resp, _ = do(t, c, http.MethodGet, base+"/", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login?reason=session_expired" || resp.Header.Get("Session-Expiry-Reason") != "idle" {
		t.Fatalf("after the idle limit: %d Location %q reason %q, want 302 to /login?reason=session_expired",
			resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Session-Expiry-Reason"))
	}
	if ck := setCookieFor(resp, appCookieName); ck == nil || ck.MaxAge >= 0 || ck.Path != "/" {
		t.Fatalf("after the idle limit: Set-Cookie %+v, want %s expired on path /", ck, appCookieName)
	}
	if ck := jarCookie(t, jar, base); ck != nil {
		t.Errorf("the jar kept the expired cookie: %+v", ck)
	}
	// The login page it was sent to is reachable, with the banner.
	resp, body := do(t, c, http.MethodGet, base+"/login?reason=session_expired", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your session expired") {
		t.Errorf("GET /login?reason=session_expired: %d:\n%s", resp.StatusCode, body)
	}
}
