package caddymodule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

const appOrigin = "https://app.example"

// corsSite is site with a cors block for appOrigin.
var corsSite = strings.Replace(site, "login_url /login", "login_url /login\n\t\tcors {\n\t\t\torigins "+appOrigin+"\n\t\t\tcredentials\n\t\t\tmax_age 10m\n\t\t}", 1)

// wantCORS fails unless r is marked for appOrigin, credentials included,
// with WWW-Authenticate exposed.
func wantCORS(t *testing.T, r *gatewaytest.Response) {
	t.Helper()
	wantHeader(t, r, "Access-Control-Allow-Origin", appOrigin)
	wantHeader(t, r, "Access-Control-Allow-Credentials", "true")
	if len(r.Header.Values("Access-Control-Allow-Origin")) != 1 {
		t.Fatalf("Access-Control-Allow-Origin repeated: %v", r.Header)
	}
	if !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
		t.Fatalf("no Vary: Origin: %v", r.Header)
	}
	if !strings.Contains(strings.Join(r.Header.Values("Access-Control-Expose-Headers"), ","), "WWW-Authenticate") {
		t.Fatalf("WWW-Authenticate not exposed: %v", r.Header)
	}
}

func wantNoCORS(t *testing.T, r *gatewaytest.Response) {
	t.Helper()
	for name := range r.Header {
		if strings.HasPrefix(name, "Access-Control-Allow-") {
			t.Fatalf("CORS header %s for an unlisted origin: %v", name, r.Header)
		}
	}
}

func TestCORSPreflightsAnsweredByTheGateway(t *testing.T) {
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", corsSite, t0)
	for _, path := range []string{"/api/items", "/.session/keepalive", "/.session/kit.js"} {
		r := g.Do(t, "OPTIONS", path, "", nil, "Origin", appOrigin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
		wantCode(t, r, 204)
		wantCORS(t, r)
		wantHeader(t, r, "Access-Control-Allow-Headers", "authorization, content-type")
		wantHeader(t, r, "Access-Control-Max-Age", "600")
		if !strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Fatalf("%s: methods %q", path, r.Header.Get("Access-Control-Allow-Methods"))
		}
	}
	r := g.Do(t, "OPTIONS", "/api/items", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "DELETE")
	wantCode(t, r, 204)
	wantNoCORS(t, r)
	if _, hits := g.Upstream.Last(); hits != 0 {
		t.Fatalf("%d preflights reached the upstream", hits)
	}
	// A plain OPTIONS (no Access-Control-Request-Method) is no preflight:
	// it needs a session like any request.
	wantCode(t, g.Do(t, "OPTIONS", "/api/items", "", nil, "Origin", appOrigin), 401)
}

func TestCORSOnEveryAnswer(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore redis {\n\t\t\taddress "+srv.Addr()+"\n\t\t\ttimeout 2s\n\t\t}\n\t}", corsSite, t0)
	e := &env{Gateway: g, redis: srv}
	// the upstream's own CORS headers are replaced, not repeated
	e.Upstream.Extra.Set("Access-Control-Allow-Origin", "*")
	tok := e.mint(t, devtoken.Claims{Session: "s1"})

	r := e.Do(t, "GET", "/api", tok, nil, "Origin", appOrigin)
	wantCode(t, r, 200)
	wantCORS(t, r)
	if !strings.Contains(strings.Join(r.Header.Values("Access-Control-Expose-Headers"), ","), "Session-Expires-In") {
		t.Fatalf("expiry headers not exposed: %v", r.Header)
	}
	wantCORS(t, wantStatus(t, e.Do(t, "GET", "/.session/status", tok, nil, "Origin", appOrigin), 200))
	wantCORS(t, wantStatus(t, e.Do(t, "GET", "/api", "", nil, "Origin", appOrigin), 401))
	wantCORS(t, wantStatus(t, e.Do(t, "GET", "/api", "", nil, "Origin", appOrigin, "Accept", "text/html"), 302))
	wantCORS(t, wantStatus(t, e.Do(t, "GET", "/.session/account", tok, nil, "Origin", appOrigin), 403))

	e.Clock.Advance(16 * time.Minute) // strict: idle 15m
	r = wantStatus(t, e.Do(t, "GET", "/api", tok, nil, "Origin", appOrigin), 401)
	wantCORS(t, r)
	wantHeader(t, r, "Session-Expiry-Reason", "idle")

	// unlisted origins get no CORS headers from the gateway, on any answer
	e.Upstream.Extra.Del("Access-Control-Allow-Origin")
	wantNoCORS(t, wantStatus(t, e.Do(t, "GET", "/api", "", nil, "Origin", "https://evil.example"), 401))
	tok2 := e.mint(t, devtoken.Claims{Session: "s2"})
	wantNoCORS(t, wantStatus(t, e.Do(t, "GET", "/api", tok2, nil, "Origin", "https://evil.example"), 200))

	srv.Stop(t)
	// a session no gateway cache holds: the store is asked at once
	tok3 := e.mint(t, devtoken.Claims{Session: "s3"})
	wantCORS(t, wantStatus(t, e.Do(t, "GET", "/api", tok3, nil, "Origin", appOrigin), 503))
}

// wantStatus is wantCode returning r.
func wantStatus(t *testing.T, r *gatewaytest.Response, code int) *gatewaytest.Response {
	t.Helper()
	wantCode(t, r, code)
	return r
}
