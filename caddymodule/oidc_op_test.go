package caddymodule_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testop"
)

// waitPast sleeps until the OP's clock (real time, whole seconds in iat
// and auth_time) is past t.
func waitPast(t time.Time) {
	for !time.Now().Truncate(time.Second).After(t) {
		time.Sleep(50 * time.Millisecond)
	}
}

// opGateway starts Caddy with a do that moves the gateway's clock up to
// the OP's (real time) before each request.
func opGateway(t *testing.T, globals, site string) (*gatewaytest.Gateway, func(method, path, tok string, headers ...string) *gatewaytest.Response) {
	gw := gatewaytest.Start(t, globals, site, time.Now())
	return gw, func(method, path, tok string, headers ...string) *gatewaytest.Response {
		if now := time.Now(); now.After(gw.Clock.Now()) {
			gw.Clock.Set(now)
		}
		return gw.Do(t, method, path, tok, nil, headers...)
	}
}

// Through Caddy, with ID tokens of a real OpenID provider (zitadel's
// example OP, found by discovery, keys from its JWKS): login, idle
// expiry, a refresh after idle expiry (same sid and auth_time) starting a
// new session, logout then a refresh refused with reauth=1 for
// navigations, and a fresh login (same OP session, new auth_time)
// admitted. The OP keeps real time, so the gateway's clock follows it and
// the idle timeout is the shortest preset allowed, 1m.
func TestRealOPSessionGenerations(t *testing.T) {
	p := testop.Start(t)
	globals := "session_guard {\n\t\tstore memory\n\t\tpreset quick 1m 1h\n\t\tbounds idle 1m 720h\n\t\tdefault_preset quick\n\t}"
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery %s
			audience %s
		}
		default_account acme
		login_url /login
	}
	reverse_proxy {UPSTREAM}
}`, p.Issuer, testop.Client)
	gw, do := opGateway(t, globals, site)

	first := p.Login(t, "")
	sid, authTime := testop.Claims(t, first.IDToken)["sid"], testop.Claims(t, first.IDToken)["auth_time"]
	wantCode(t, do("GET", "/", first.IDToken), 200)
	idleEnd := gw.Clock.Now().Add(time.Minute)

	waitPast(idleEnd)
	wantCode(t, do("GET", "/", first.IDToken), 401)
	again := p.Refresh(t, first)
	if c := testop.Claims(t, again.IDToken); c["sid"] != sid || c["auth_time"] != authTime {
		t.Fatalf("refresh: sid %v auth_time %v, want the login's %v %v", c["sid"], c["auth_time"], sid, authTime)
	}
	wantCode(t, do("GET", "/", again.IDToken), 200)

	wantCode(t, do("POST", "/.session/logout", again.IDToken), 200)
	loggedOut := gw.Clock.Now()
	silent := p.Refresh(t, again)
	wantCode(t, do("GET", "/", silent.IDToken), 401)
	r := do("GET", "/", silent.IDToken, "Accept", "text/html")
	wantCode(t, r, 302)
	wantHeader(t, r, "Location", "/login?reason=session_revoked&reauth=1")

	waitPast(loggedOut) // auth_time has whole seconds
	fresh := p.Login(t, "login")
	if c := testop.Claims(t, fresh.IDToken); c["sid"] != sid || c["auth_time"] == authTime {
		t.Fatalf("fresh login: sid %v auth_time %v, want sid %v and a new auth_time", c["sid"], c["auth_time"], sid)
	}
	wantCode(t, do("GET", "/", fresh.IDToken), 200)
}

// Through Caddy, with the real OP's JWT access tokens, which have no sid:
// with session sid sub+auth_time a refreshed token (same auth_time) goes
// on in the same session, and a fresh login starts another.
func TestRealOPAccessTokenWithoutSid(t *testing.T) {
	p := testop.Start(t)
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery %s
			audience %s
		}
		claims {
			session sid sub+auth_time
		}
		default_account acme
	}
	reverse_proxy {UPSTREAM}
}`, p.Issuer, testop.Client)
	gw, do := opGateway(t, "session_guard {\n\t\tstore memory\n\t}", site)
	session := func(tok string) string {
		t.Helper()
		wantCode(t, do("GET", "/", tok), 200)
		h, _ := gw.Upstream.Last()
		return h.Get("Session-Id-Hash")
	}

	first := p.Login(t, "")
	c := testop.Claims(t, first.AccessToken)
	if _, ok := c["sid"]; ok || c["auth_time"] == nil {
		t.Fatalf("access token claims %v: want auth_time and no sid", c)
	}
	s1 := session(first.AccessToken)
	if s1 == "" {
		t.Fatal("no Session-Id-Hash upstream")
	}
	refreshed := p.Refresh(t, first)
	if refreshed.AccessToken == first.AccessToken {
		t.Fatal("refresh gave the same access token")
	}
	if s := session(refreshed.AccessToken); s != s1 {
		t.Fatalf("refreshed token: session %q, want %q", s, s1)
	}
	waitPast(time.Unix(int64(c["auth_time"].(float64)), 0))
	if s := session(p.Login(t, "login").AccessToken); s == s1 || s == "" {
		t.Fatalf("fresh login: session %q, want a new one (first %q)", s, s1)
	}
}
