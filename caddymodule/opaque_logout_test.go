package caddymodule_test

import (
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// wantOnlyExpiredCookie checks that r expires the sid cookie exactly
// once, with the given Path and Domain: a second Set-Cookie with other
// attributes (say Path=/ and no Domain) would leave the app's cookie in
// the browser, since a browser deletes only a cookie whose name, path
// and domain all match.
func wantOnlyExpiredCookie(t *testing.T, r *gatewaytest.Response, path, domain string) {
	t.Helper()
	var n int
	for _, c := range r.Cookies() {
		if c.Name != "sid" {
			continue
		}
		n++
		if c.Value != "" || c.MaxAge >= 0 || c.Path != path || c.Domain != domain {
			t.Fatalf("Set-Cookie %q: want an expired sid with Path=%s Domain=%s", r.Header.Values("Set-Cookie"), path, domain)
		}
	}
	if n != 1 {
		t.Fatalf("want exactly one Set-Cookie for sid, got %q", r.Header.Values("Set-Cookie"))
	}
	if raw := r.Header.Get("Set-Cookie"); !strings.Contains(raw, "Path="+path) || !strings.Contains(raw, "Domain="+domain) {
		t.Fatalf("raw Set-Cookie %q lacks Path=%s or Domain=%s", raw, path, domain)
	}
}

// The session endpoints that end the caller's session (logout, and an
// owner's revoke of the whole account) expire the app's cookie with the
// configured cookie_path and cookie_domain, as the 401 of an ended
// session does.
func TestOpaqueLogoutCookieAttributes(t *testing.T) {
	eachOpaque(t, "", "cookie_path /app\n\t\t\tcookie_domain 127.0.0.1", func(t *testing.T, e *opaqueEnv) {
		c := e.login(t, "alice", "acme", "")
		r := e.get(t, "POST", "/.session/logout", c)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Expiry-Reason", "revoked")
		wantOnlyExpiredCookie(t, r, "/app", "127.0.0.1")
		wantCode(t, e.get(t, "GET", "/", c), 401)

		owner := e.login(t, "olga", "acme", "owner")
		r = e.Do(t, "POST", "/.session/account/revoke", "", strings.NewReader(`{"scope":"all"}`),
			"Cookie", "sid="+owner, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin")
		wantCode(t, r, 200)
		wantOnlyExpiredCookie(t, r, "/app", "127.0.0.1")
		wantCode(t, e.get(t, "GET", "/", owner), 401)
	})
}
