package caddymodule_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// The upstream receives exactly the gateway's identity headers, whatever
// the client's Connection header names: the proxy drops the headers it
// names, and would drop the gateway's with them.
func TestConnectionCannotStripIdentity(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1", Role: "owner"})
		for _, conn := range [][]string{
			{"Connection", "keep-alive, Session-User, Session-Account, Session-Id-Hash, Session-Role"},
			{"Connection", "session-user,SESSION-ACCOUNT", "Connection", "Session_Id_Hash, session-role"},
			{"Connection", "Session-Guard-Bind-User, Session-User"},
		} {
			r := e.Do(t, "GET", "/", tok, nil, conn...)
			wantCode(t, r, 200)
			up, _ := e.Upstream.Last()
			want := map[string]string{"Session-User": "alice", "Session-Account": "acme", "Session-Id-Hash": e.hash("s1"), "Session-Role": "owner"}
			for name, v := range want {
				if got := up.Values(name); len(got) != 1 || got[0] != v {
					t.Fatalf("Connection %q: upstream %s = %q, want %q", conn, name, got, v)
				}
			}
		}
	})
}

// Claim values that become header values may hold no control character:
// 401 invalid_token, nothing stored.
func TestControlCharactersInClaims(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		cases := map[string]devtoken.Claims{
			"SOH in sub":     {Session: "c1", User: "al\x01ice"},
			"ESC in account": {Session: "c2", Account: "ac\x1b[31mme"},
			"DEL in role":    {Session: "c3", Role: "own\x7fer"},
			"VT in name":     {Session: "c4", Name: "Ann\x0b"},
			"TAB in email":   {Session: "c5", Email: "a@x.example\t"},
		}
		for name, c := range cases {
			r := e.Do(t, "GET", "/", e.mint(t, c), nil)
			wantCode(t, r, 401)
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("%s: challenge %q", name, r.Header.Get("WWW-Authenticate"))
			}
		}
		r := e.AdminDo(t, "GET", "/session_guard/accounts/acme/sessions", nil)
		wantCode(t, r, 200)
		if strings.Contains(string(r.Body), "session_id_hash") {
			t.Fatalf("a session was stored: %s", r.Body)
		}
		if e.redis != nil {
			// the gateways' cache leases ({~gw}) are not session state
			if keys := e.redis.Client(t).Keys(t.Context(), "*").Val(); len(keys) != 0 && !(len(keys) == 1 && strings.Contains(keys[0], ":{%7Egw}:")) {
				t.Fatalf("keys stored in Redis: %q", keys)
			}
		}
	})
}

// A session belongs to the user it was created for: another user's token
// with the same session id is 401 invalid_token and touches nothing, not
// even the idle clock, and its logout ends nothing.
func TestSessionBelongsToItsUser(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		alice := e.mint(t, devtoken.Claims{Session: "shared"})
		bob := e.mint(t, devtoken.Claims{Session: "shared", User: "bob"})
		wantCode(t, e.Do(t, "GET", "/", alice, nil), 200)
		e.Clock.Advance(14 * time.Minute) // idle is 15 minutes (strict)
		for _, req := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/.session/keepalive"}, {"POST", "/.session/logout"}} {
			r := e.Do(t, req.method, req.path, bob, nil)
			wantCode(t, r, 401)
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("%s %s: challenge %q", req.method, req.path, r.Header.Get("WWW-Authenticate"))
			}
		}
		r := e.Do(t, "GET", "/", alice, nil, "Session-Passive", "1")
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "60") // bob's requests did not touch it
		e.Clock.Advance(time.Minute)
		wantCode(t, e.Do(t, "GET", "/", alice, nil), 401)
	})
}

// A login time in the future cannot slip past a revoke-all, and cutoffs
// have millisecond precision: a login earlier in the same second as a
// revoke-all is cut off.
func TestRevokeAllCutoffs(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		now := e.Clock.Now()
		future := e.mint(t, devtoken.Claims{Session: "f1", LoginAt: now.Add(600 * time.Second)})
		sameSecond := e.mint(t, devtoken.Claims{Session: "f2", LoginAt: now})
		e.Clock.Advance(300 * time.Millisecond)
		wantCode(t, e.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"all"}`)), 200)
		e.Clock.Advance(100 * time.Millisecond)
		r := e.Do(t, "GET", "/", future, nil)
		wantCode(t, r, 401)
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("future auth_time: challenge %q", r.Header.Get("WWW-Authenticate"))
		}
		r = e.Do(t, "GET", "/", sameSecond, nil)
		wantCode(t, r, 401)
		if !strings.Contains(string(r.Body), `"session_revoked"`) {
			t.Fatalf("login before the cutoff in its second: %s", r.Body)
		}
		// a login after the cutoff, in the same second, starts a session
		after := float64(e.Clock.Now().UnixMilli()) / 1000
		fresh := e.mint(t, devtoken.Claims{Session: "f3", Extra: map[string]any{"auth_time": after}})
		wantCode(t, e.Do(t, "GET", "/", fresh, nil), 200)
	})
}

// Cookie credentials on the state-changing session endpoints and the
// owner endpoints: the request's own origin (or, without Origin,
// Sec-Fetch-Site same-origin or none) passes; Origin null, another
// origin, or neither header is 403 cross_site. The status endpoint reads
// only the caller's own session and is not guarded.
func TestCookieCrossSiteRules(t *testing.T) {
	jwtCookieSite := strings.Replace(site, "login_url /login", "login_url /login\n\t\ttoken cookie sid", 1)
	for _, mode := range []string{modeJWT, modeOpaque} {
		for _, b := range backends() {
			t.Run(mode+"/"+b.name, func(t *testing.T) {
				g, _ := b.globals(t)
				s := jwtCookieSite
				if mode == modeOpaque {
					s = opaqueModeSite
				}
				e := &env{Gateway: gatewaytest.Start(t, g, s, t0), mode: mode}
				owner := e.mint(t, devtoken.Claims{Session: "o1", Role: "owner"})
				do := func(method, path string, headers ...string) *gatewaytest.Response {
					return e.Gateway.Do(t, method, path, "", nil, append(headers, "Cookie", "sid="+owner)...)
				}
				refused := [][]string{
					{"Origin", "null"},
					{"Origin", "null", "Sec-Fetch-Site", "cross-site"},
					{},
					{"Origin", "https://evil.example"},
					{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
					{"Origin", "https://evil.example", "Sec-Fetch-Site", "same-origin"},
					{"Sec-Fetch-Site", "cross-site"},
					{"Sec-Fetch-Site", "same-site"},
				}
				allowed := [][]string{
					{"Sec-Fetch-Site", "same-origin"},
					{"Sec-Fetch-Site", "none"},
					{"Origin", e.URL},
					{"Origin", e.URL, "Sec-Fetch-Site", "same-origin"},
				}
				wantCode(t, do("GET", "/.session/status", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), 200)
				for _, ep := range []struct{ method, path string }{{"POST", "/.session/keepalive"}, {"GET", "/.session/account"}, {"POST", "/.session/logout"}} {
					for _, h := range refused {
						r := do(ep.method, ep.path, h...)
						if r.StatusCode != 403 || strings.TrimSpace(string(r.Body)) != `{"error":"cross_site"}` {
							t.Fatalf("%s %s with %q: %d %s, want 403 cross_site", ep.method, ep.path, h, r.StatusCode, r.Body)
						}
					}
					for _, h := range allowed {
						if r := do(ep.method, ep.path, h...); r.StatusCode != 200 {
							t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, h, r.StatusCode, r.Body)
						}
						if ep.path == "/.session/logout" {
							break // the session has ended
						}
					}
				}
				wantCode(t, do("GET", "/.session/status", "Sec-Fetch-Site", "same-origin"), 401)
			})
		}
	}
}

// Opaque mode: bind headers take effect only on a response that sets the
// session cookie to a new value; a bound cookie is never re-bound to
// another user, account or role.
func TestOpaqueBindNeedsNewCookie(t *testing.T) {
	eachOpaque(t, "", "key "+cookieKey, func(t *testing.T, e *opaqueEnv) {
		alice := e.login(t, "alice", "acme", "")
		whoami := func(c string) string {
			t.Helper()
			wantCode(t, e.get(t, "GET", "/", c), 200)
			up, _ := e.app.Last()
			return up.Get("Session-User") + "/" + up.Get("Session-Account") + "/" + up.Get("Session-Role")
		}
		if got := whoami(alice); got != "alice/acme/" {
			t.Fatalf("after login: %s", got)
		}
		// the same cookie value set again, bound to mallory as owner
		r := e.get(t, "POST", "/login?"+url.Values{"user": {"mallory"}, "account": {"acme"}, "role": {"owner"}, "value": {alice}}.Encode(), alice)
		wantCode(t, r, 200)
		// a response without Set-Cookie
		r = e.get(t, "POST", "/bind-only?"+url.Values{"user": {"mallory"}, "account": {"acme"}, "role": {"owner"}}.Encode(), alice)
		wantCode(t, r, 200)
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "session-guard-bind") {
				t.Fatalf("bind header %q reached the client", name)
			}
		}
		if got := whoami(alice); got != "alice/acme/" {
			t.Fatalf("cookie re-bound: %s", got)
		}
		// another client is handed alice's cookie value as a new cookie
		r = e.get(t, "POST", "/login?"+url.Values{"user": {"mallory"}, "account": {"globex"}, "role": {"owner"}, "value": {alice}}.Encode(), "")
		wantCode(t, r, 200)
		if got := whoami(alice); got != "alice/acme/" {
			t.Fatalf("cookie re-bound by a new Set-Cookie: %s", got)
		}
		// a response that clears the cookie ends the session; its bind
		// headers bind nothing
		r = e.get(t, "POST", "/login-clear?"+url.Values{"user": {"mallory"}, "account": {"acme"}, "role": {"owner"}}.Encode(), alice)
		wantCode(t, r, 200)
		wantCode(t, e.get(t, "GET", "/", alice), 401)
	})
}

// With Caddy's allowlists for '_' and '.' header names (which it drops by
// default), aliases of the identity and bind headers that CGI-style
// upstreams fold onto the same variable are still removed.
func TestAliasIdentityHeadersWithCaddyAllowlist(t *testing.T) {
	aliases := []string{"Session_User", "Session_Account", "Session_Role", "Session_Id_Hash", "Session_Guard_Bind_User",
		"Session.User", "Session.Role", "Session_Guard.Bind_Role"}
	var under, dot []string
	var hdrs []string
	for _, a := range aliases {
		if strings.Contains(a, ".") {
			dot = append(dot, strings.ToLower(a))
		} else {
			under = append(under, strings.ToLower(a))
		}
		hdrs = append(hdrs, a, "forged")
	}
	under = append(under, "x_other") // an allowed alias that is not ours
	hdrs = append(hdrs, "X_Other", "kept")
	globals := "servers {\n\t\texpected_underscore_headers " + strings.Join(under, " ") +
		"\n\t\texpected_dot_headers " + strings.Join(dot, " ") + "\n\t}\n\tsession_guard {\n\t\tstore memory\n\t}"
	e := &env{Gateway: gatewaytest.Start(t, globals, site, t0)}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	wantCode(t, e.Do(t, "GET", "/", tok, nil, hdrs...), 200)
	up, _ := e.Upstream.Last()
	kept := false
	for name, v := range up {
		if strings.EqualFold(name, "X_Other") {
			kept = true // Caddy let the allowlisted aliases through
			continue
		}
		if strings.ContainsAny(name, "_.") {
			t.Fatalf("alias %s %q reached the upstream", name, v)
		}
	}
	if !kept {
		t.Fatalf("the allowlist let nothing through: %v", up)
	}
	if up.Get("Session-User") != "alice" || up.Get("Session-Role") != "" {
		t.Fatalf("identity: %v", up)
	}
}

// max_auth_age on a route (RFC 9470 step-up): a fresh login passes; an
// older one gets the insufficient_user_authentication challenge with
// max_age on that route only (navigations: 302 with reason and max_age),
// and its session goes on elsewhere.
func TestMaxAuthAgeStepUp(t *testing.T) {
	stepSite := strings.Replace(site, "\treverse_proxy {UPSTREAM} {", `	route /billing/* {
		session_guard {
			jwt {
				alg HS256
				secret `+secret+`
				issuer https://idp.example
				audience app
			}
			login_url /login
			max_auth_age 5m
		}
	}
	reverse_proxy {UPSTREAM} {`, 1)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			g, _ := b.globals(t)
			e := &env{Gateway: gatewaytest.Start(t, g, stepSite, t0)}
			tok := e.mint(t, devtoken.Claims{Session: "s1"})
			wantCode(t, e.Do(t, "GET", "/billing/cards", tok, nil), 200)
			e.Clock.Advance(5 * time.Minute)
			wantCode(t, e.Do(t, "GET", "/billing/cards", tok, nil), 200)
			e.Clock.Advance(time.Second)
			r := e.Do(t, "GET", "/billing/cards", tok, nil)
			wantCode(t, r, 401)
			wantHeader(t, r, "WWW-Authenticate", `Bearer error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age="300"`)
			if strings.TrimSpace(string(r.Body)) != `{"error":"insufficient_user_authentication","max_age":300}` {
				t.Fatalf("body %s", r.Body)
			}
			r = e.Do(t, "GET", "/billing/cards", tok, nil, "Accept", "text/html")
			wantCode(t, r, 302)
			wantHeader(t, r, "Location", "/login?reason=reauth_required&max_age=300")
			// the session goes on on other paths
			wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
			// a fresh login passes the guarded route, also when the provider
			// keeps the session id and only renews auth_time
			fresh := e.mint(t, devtoken.Claims{Session: "s2"})
			wantCode(t, e.Do(t, "GET", "/billing/cards", fresh, nil), 200)
			renewed := e.mint(t, devtoken.Claims{Session: "s1"})
			wantCode(t, e.Do(t, "GET", "/billing/cards", renewed, nil), 200)
			wantCode(t, e.Do(t, "GET", "/billing/cards", tok, nil), 401)
		})
	}
}

// A cookie frontend on a cors origin may use the session endpoints,
// although its browser sends Sec-Fetch-Site: cross-site or same-site;
// other origins are still refused.
func TestCookieCrossSiteFromCORSOrigin(t *testing.T) {
	corsSite := strings.Replace(site, "login_url /login", "login_url /login\n\t\ttoken cookie sid\n\t\tcors {\n\t\t\torigins https://app.example\n\t\t\tcredentials\n\t\t}", 1)
	e := &env{Gateway: gatewaytest.Start(t, "", corsSite, t0)}
	tok := e.mint(t, devtoken.Claims{Session: "c1"})
	for _, fetchSite := range []string{"cross-site", "same-site"} {
		r := e.Do(t, "POST", "/.session/keepalive", "", nil, "Cookie", "sid="+tok, "Origin", "https://app.example", "Sec-Fetch-Site", fetchSite)
		wantCode(t, r, 200)
		wantHeader(t, r, "Access-Control-Allow-Origin", "https://app.example")
	}
	r := e.Do(t, "POST", "/.session/keepalive", "", nil, "Cookie", "sid="+tok, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	wantCode(t, r, 403)
}
