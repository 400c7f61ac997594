package caddymodule_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessionguard/sessionguard/caddymodule"
	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// Token modes the shared enforcement suite runs in: the same tests, with
// a credential that is a JWT (bearer) or an opaque session cookie bound
// the way an upstream's login response binds it.
const (
	modeJWT    = "jwt"
	modeOpaque = "opaque"
)

// cookieKey is the opaque-mode HMAC key of the shared suite.
const cookieKey = "fedcba9876543210fedcba9876543210-cookies"

// opaqueModeSite is site with the JWT block replaced by opaque mode
// (unbound reject, so that a missing credential is a 401 in both modes).
var opaqueModeSite = func() string {
	start := strings.Index(site, "\t\tjwt {")
	end := strings.Index(site, "audience app\n\t\t}\n")
	if start < 0 || end < 0 {
		panic("site has no jwt block")
	}
	end += len("audience app\n\t\t}\n")
	return site[:start] + "\t\ttoken cookie sid\n\t\topaque {\n\t\t\tkey " + cookieKey + "\n\t\t\tunbound reject\n\t\t}\n" + site[end:]
}()

// eachMode runs fn against every store in both token modes.
func eachMode(t *testing.T, extraGlobals string, fn func(t *testing.T, e *env)) {
	for _, mode := range []string{modeJWT, modeOpaque} {
		t.Run(mode, func(t *testing.T) {
			for _, b := range backends() {
				t.Run(b.name, func(t *testing.T) {
					g, r := b.globals(t)
					if extraGlobals != "" {
						g = strings.Replace(g, "session_guard {", "session_guard {\n\t\t"+extraGlobals, 1)
					}
					s := site
					if mode == modeOpaque {
						s = opaqueModeSite
					}
					gw := gatewaytest.Start(t, g, s, t0)
					fn(t, &env{Gateway: gw, redis: r, mode: mode})
				})
			}
		})
	}
}

// Do sends a request with the credential cred: a bearer token, or in
// opaque mode the session cookie.
func (e *env) Do(t testing.TB, method, path, cred string, body io.Reader, headers ...string) *gatewaytest.Response {
	t.Helper()
	if e.mode == modeOpaque && cred != "" {
		return e.Gateway.Do(t, method, path, "", body, browserHeaders(append(headers, "Cookie", "sid="+cred))...)
	}
	return e.Gateway.Do(t, method, path, cred, body, headers...)
}

// browserHeaders adds Sec-Fetch-Site: same-origin, as a browser sends on
// its own site's requests, unless headers name Origin or Sec-Fetch-Site:
// cookie credentials without either are refused on the session endpoints.
func browserHeaders(headers []string) []string {
	for i := 0; i+1 < len(headers); i += 2 {
		if n := strings.ToLower(headers[i]); n == "origin" || n == "sec-fetch-site" {
			return headers
		}
	}
	return append(headers, "Sec-Fetch-Site", "same-origin")
}

// hash is the Session-Id-Hash of the session minted with session id sid.
func (e *env) hash(sid string) string {
	if e.mode == modeOpaque {
		return session.HashID(opaqueTestID(cookieValue(sid)))
	}
	return session.HashID(sid)
}

func cookieValue(sid string) string { return "app-session-" + sid }

// opaqueTestID is the gateway's documented derivation of a session id
// from a cookie value, HMAC-SHA-256 in base64url.
func opaqueTestID(value string) string {
	m := hmac.New(sha256.New, []byte(cookieKey))
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// bindOpaque records the session of c the way a login response through
// the gateway does (TestOpaqueBindAndRequest covers that path), without
// a request to the recording upstream, and returns the cookie value.
// Login time is now: an opaque session starts when it is bound.
func (e *env) bindOpaque(t *testing.T, c devtoken.Claims) string {
	t.Helper()
	appIface, err := caddy.ActiveContext().App("session_guard")
	if err != nil {
		t.Fatal(err)
	}
	app := appIface.(*caddymodule.App)
	v := cookieValue(c.Session)
	_, err = app.OpaqueStore().Bind(context.Background(), &store.TouchRequest{
		Account: c.Account, SessionHash: session.HashID(opaqueTestID(v)),
		User: c.User, Role: c.Role, Name: c.Name, Email: c.Email,
		Policy: app.Policy(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
