package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// With the provider unreachable the config still loads (Provision never
// needs the network), and requests get 503 with Retry-After.
func TestDiscoveryProviderDown(t *testing.T) {
	dead := gatewaytest.FreePorts(t, 1)[0]
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery http://127.0.0.1:%d/realms/main
		}
	}
	reverse_proxy {UPSTREAM}
}`, dead)
	gw := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, t0)
	tok, err := devtoken.Mint([]byte(secret), devtoken.Claims{Session: "s1", User: "alice", Account: "acme", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	r := gw.Do(t, http.MethodGet, "/", tok, nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("provider down: status %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// reauth is what a login redirect for an ended session adds: the IdP must
// authenticate again (JWT mode; an opaque cookie app logs in itself).
func (e *env) reauth() string {
	if e.mode == modeOpaque {
		return ""
	}
	return "&reauth=1"
}

// Session generations through Caddy: a silent re-issue (same sid and
// login time) after idle expiry starts a new session; after logout it
// does not, and a navigation is sent to log in again with reauth=1; a
// fresh login does.
func TestSessionGenerations(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		login := e.Clock.Now()
		tok := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: login})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		e.Clock.Advance(16 * time.Minute) // strict: idle 15m
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 401)
		reissued := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: login})
		wantCode(t, e.Do(t, "GET", "/", reissued, nil), 200)

		wantCode(t, e.Do(t, "POST", "/.session/logout", reissued, nil), 200)
		e.Clock.Advance(time.Minute)
		silent := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: login})
		wantCode(t, e.Do(t, "GET", "/", silent, nil), 401)
		r := e.Do(t, "GET", "/", silent, nil, "Accept", "text/html")
		wantCode(t, r, 302)
		wantHeader(t, r, "Location", "/login?reason=session_revoked&reauth=1")
		fresh := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: e.Clock.Now()})
		wantCode(t, e.Do(t, "GET", "/", fresh, nil), 200)
	})
}
