package caddymodule_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

const secret = "0123456789abcdef0123456789abcdef"

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// backend is one store setup the whole suite runs against.
type backend struct {
	name    string
	globals func(t *testing.T) (globals string, r *testredis.Server)
}

func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) (string, *testredis.Server) {
			return "session_guard {\n\t\tstore memory\n\t}", nil
		}},
		{"redis", func(t *testing.T) (string, *testredis.Server) {
			srv := testredis.Start(t)
			return "session_guard {\n\t\tstore redis {\n\t\t\taddress " + srv.Addr() + "\n\t\t\ttimeout 2s\n\t\t}\n\t}", srv
		}},
	}
}

const site = `{SITE} {
	session_guard {
		jwt {
			alg HS256
			secret ` + secret + `
			issuer https://idp.example
			audience app
		}
		login_url /login
		passive /poll*
	}
	reverse_proxy {UPSTREAM} {
		header_up X-Auth-User {http.auth.user.id}
		header_up X-SG-Account {http.session_guard.account_id}
		header_up X-SG-Warning {http.session_guard.warning}
		header_up X-SG-Hash {http.session_guard.session_id_hash}
		header_up X-SG-User {http.session_guard.user_id}
		header_up X-SG-Role {http.session_guard.role}
		header_up X-SG-In {http.session_guard.expires_in}/{http.session_guard.idle_expires_in}/{http.session_guard.absolute_expires_in}
		header_up X-SG-Reason {http.session_guard.reason}
	}
}`

type env struct {
	*gatewaytest.Gateway
	redis *testredis.Server
	mode  string // modeJWT (also when empty) or modeOpaque; see mode_test.go
}

// each runs fn against every store.
func each(t *testing.T, extraGlobals string, fn func(t *testing.T, e *env)) {
	eachWith(t, func(*testing.T) string { return extraGlobals }, fn)
}

// eachWith is each with the extra global options made per store.
func eachWith(t *testing.T, extraGlobals func(t *testing.T) string, fn func(t *testing.T, e *env)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			g, r := b.globals(t)
			if x := extraGlobals(t); x != "" {
				g = strings.Replace(g, "session_guard {", "session_guard {\n\t\t"+x, 1)
			}
			gw := gatewaytest.Start(t, g, site, t0)
			fn(t, &env{Gateway: gw, redis: r})
		})
	}
}

func (e *env) mint(t *testing.T, c devtoken.Claims) string {
	t.Helper()
	if c.Now.IsZero() {
		c.Now = e.Clock.Now()
	}
	if c.User == "" {
		c.User = "alice"
	}
	if c.Account == "" {
		c.Account = "acme"
	}
	if e.mode == modeOpaque {
		return e.bindOpaque(t, c)
	}
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	if _, ok := c.Extra["iss"]; !ok {
		c.Extra["iss"] = "https://idp.example"
	}
	if _, ok := c.Extra["aud"]; !ok {
		c.Extra["aud"] = "app"
	}
	if c.TTL == 0 {
		c.TTL = 48 * time.Hour
	}
	tok, err := devtoken.Mint([]byte(secret), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantCode(t *testing.T, r *gatewaytest.Response, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("status %d, want %d; headers %v; body %s", r.StatusCode, code, r.Header, r.Body)
	}
}

func wantHeader(t *testing.T, r *gatewaytest.Response, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Fatalf("%s = %q, want %q (all: %v)", name, got, want, r.Header)
	}
}

func TestValidPassThrough(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1", Role: "member", LoginAt: t0.Add(-time.Hour)})
		r := e.Do(t, "GET", "/app", tok, nil)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "900")
		abs := 11 * 3600 // logged in an hour ago
		if e.mode == modeOpaque {
			abs = 12 * 3600 // an opaque session starts when bound
		}
		wantHeader(t, r, "Session-Absolute-Expires-In", strconv.Itoa(abs))
		wantHeader(t, r, "Session-Expires-In", "900")
		wantHeader(t, r, "Session-Expiry-Warning", "none")
		wantHeader(t, r, "Session-Expiry-Reason", "idle")
		if r.Header.Get("Access-Control-Expose-Headers") != "" {
			t.Fatal("expose headers without Origin")
		}
		up, hits := e.Upstream.Last()
		if hits != 1 {
			t.Fatalf("upstream hits %d", hits)
		}
		for k, v := range map[string]string{
			"Session-Id-Hash": e.hash("s1"), "Session-User": "alice", "Session-Account": "acme",
			"Session-Role": "member", "X-Auth-User": "alice", "X-Sg-Account": "acme", "X-Sg-Warning": "none",
			"X-Sg-Hash": e.hash("s1"), "X-Sg-User": "alice", "X-Sg-Role": "member", "X-Sg-Reason": "idle",
			"X-Sg-In": "900/900/" + strconv.Itoa(abs),
		} {
			if up.Get(k) != v {
				t.Errorf("upstream %s = %q, want %q", k, up.Get(k), v)
			}
		}
		if strings.Contains(strings.Join(up.Values("Authorization"), ""), "s1") {
			t.Log("token forwarded upstream as sent (expected: the app may need it)")
		}
	})
}

func TestIdleExpiry(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		e.Clock.Advance(14 * time.Minute)
		r := e.Do(t, "GET", "/", tok, nil)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "900")
		e.Clock.Advance(10 * time.Minute)
		r = e.Do(t, "GET", "/", tok, nil, "Session-Passive", "1")
		wantHeader(t, r, "Session-Expiry-Warning", "soon")
		wantHeader(t, r, "Session-Expires-In", "300")
		e.Clock.Advance(5 * time.Minute)
		_, before := e.Upstream.Last()
		r = e.Do(t, "GET", "/", tok, nil)
		wantCode(t, r, 401)
		var body map[string]string
		r.JSON(t, &body)
		if body["error"] != "session_expired" || body["reason"] != "idle" || len(body) != 2 {
			t.Fatalf("body %v", body)
		}
		wantHeader(t, r, "Session-Expiry-Warning", "now")
		wantHeader(t, r, "Session-Expiry-Reason", "idle")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token", error_description=`) {
			t.Fatalf("challenge %q", r.Header.Get("WWW-Authenticate"))
		}
		if _, after := e.Upstream.Last(); after != before {
			t.Fatal("expired request reached the upstream")
		}
		// Final: keepalive does not revive it.
		wantCode(t, e.Do(t, "POST", "/.session/keepalive", tok, nil), 401)
		// A navigation is redirected to the login page.
		r = e.Do(t, "GET", "/page", tok, nil, "Accept", "text/html,application/xhtml+xml")
		wantCode(t, r, 302)
		wantHeader(t, r, "Location", "/login?reason=session_expired"+e.reauth())
	})
}

func TestAbsoluteExpiryNeverExtended(t *testing.T) {
	eachMode(t, "preset short 10m 30m\n\t\tdefault_preset short", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		for i := 0; i < 5; i++ {
			r := e.Do(t, "GET", "/", tok, nil)
			wantCode(t, r, 200)
			wantHeader(t, r, "Session-Absolute-Expires-In", strconv.Itoa(1800-i*5*60))
			e.Clock.Advance(5 * time.Minute)
		}
		// 25m in: absolute is the closer deadline.
		r := e.Do(t, "GET", "/", tok, nil)
		wantHeader(t, r, "Session-Expiry-Reason", "absolute")
		wantHeader(t, r, "Session-Expires-In", "300")
		wantHeader(t, r, "Session-Expiry-Warning", "soon")
		e.Clock.Advance(5 * time.Minute)
		r = e.Do(t, "GET", "/", tok, nil)
		wantCode(t, r, 401)
		wantHeader(t, r, "Session-Expiry-Reason", "absolute")
		if !strings.Contains(string(r.Body), `"reason":"absolute"`) {
			t.Fatalf("body %s", r.Body)
		}
	})
}

func TestRevokedByLogout(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		other := e.mint(t, devtoken.Claims{Session: "s2"})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		wantCode(t, e.Do(t, "GET", "/", other, nil), 200)
		r := e.Do(t, "POST", "/.session/logout", tok, nil)
		wantCode(t, r, 200)
		r = e.Do(t, "GET", "/", tok, nil)
		wantCode(t, r, 401)
		if strings.TrimSpace(string(r.Body)) != `{"error":"session_revoked"}` {
			t.Fatalf("body %s", r.Body)
		}
		wantHeader(t, r, "Session-Expiry-Reason", "revoked")
		r = e.Do(t, "GET", "/", tok, nil, "Accept", "text/html")
		wantHeader(t, r, "Location", "/login?reason=session_revoked"+e.reauth())
		wantCode(t, e.Do(t, "GET", "/", other, nil), 200)
	})
}

func TestMissingToken(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		r := e.Do(t, "GET", "/", "", nil)
		wantCode(t, r, 401)
		wantHeader(t, r, "WWW-Authenticate", `Bearer realm="session_guard"`)
		r = e.Do(t, "GET", "/", "", nil, "Accept", "text/html")
		wantCode(t, r, 302)
		wantHeader(t, r, "Location", "/login")
		if _, hits := e.Upstream.Last(); hits != 0 {
			t.Fatal("unauthenticated request reached the upstream")
		}
	})
}

func rsaKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestInvalidTokens(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		good := e.mint(t, devtoken.Claims{Session: "s1"})
		parts := strings.Split(good, ".")
		claims := func(extra map[string]any) jwt.MapClaims {
			c := jwt.MapClaims{"sid": "x", "sub": "alice", "acct": "acme", "iss": "https://idp.example", "aud": "app",
				"iat": e.Clock.Now().Unix(), "auth_time": e.Clock.Now().Unix(), "exp": e.Clock.Now().Add(time.Hour).Unix()}
			for k, v := range extra {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
			}
			return c
		}
		hs := func(c jwt.MapClaims, key []byte) string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		b64 := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		_, pubPEM := rsaKey(t)
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		tampered := strings.Replace(string(payload), `"alice"`, `"admin"`, 1)
		cases := map[string]string{
			"alg none":           b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(claims(nil)) + ".",
			"alg None":           b64(map[string]string{"alg": "None"}) + "." + b64(claims(nil)) + ".",
			"RS to HS confusion": hs(claims(nil), pubPEM),
			"tampered payload":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + parts[2],
			"expired":            hs(claims(map[string]any{"exp": e.Clock.Now().Add(-time.Second).Unix()}), []byte(secret)),
			"no exp":             hs(claims(map[string]any{"exp": nil}), []byte(secret)),
			"wrong aud":          hs(claims(map[string]any{"aud": "other"}), []byte(secret)),
			"wrong iss":          hs(claims(map[string]any{"iss": "https://evil.example"}), []byte(secret)),
			"nbf in future":      hs(claims(map[string]any{"nbf": e.Clock.Now().Add(time.Hour).Unix()}), []byte(secret)),
			"no sid":             hs(claims(map[string]any{"sid": nil}), []byte(secret)),
			"garbage":            "not-a-jwt",
			"dots":               strings.Repeat(".", 20_000),
		}
		for name, tok := range cases {
			r := e.Do(t, "GET", "/", tok, nil)
			if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s: status %d, challenge %q, body %s", name, r.StatusCode, r.Header.Get("WWW-Authenticate"), r.Body)
			}
		}
		if _, hits := e.Upstream.Last(); hits != 0 {
			t.Fatalf("%d invalid requests reached the upstream", hits)
		}
	})
}

func TestInvalidRequest(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		dup := []string{"Authorization", "Bearer " + tok, "Authorization", "Bearer " + tok}
		if e.mode == modeOpaque {
			dup = []string{"Cookie", "sid=" + tok, "Cookie", "sid=" + tok}
		}
		r := e.Do(t, "GET", "/", "", nil, dup...)
		wantCode(t, r, 400)
		if !strings.Contains(string(r.Body), `"error":"invalid_request"`) {
			t.Fatalf("body %s", r.Body)
		}
	})
}

func TestSpoofedIdentityHeaders(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"}) // no role claim
		r := e.Do(t, "GET", "/", tok, nil,
			"session-user", "mallory", "SESSION-ACCOUNT", "victim", "Session-Role", "owner",
			"Session-Id-Hash", "forged", "sEsSiOn-RoLe", "owner", "Session_Role", "owner", "session_user", "mallory")
		wantCode(t, r, 200)
		up, _ := e.Upstream.Last()
		if up.Get("Session-User") != "alice" || up.Get("Session-Account") != "acme" || up.Get("Session-Id-Hash") != e.hash("s1") {
			t.Fatalf("identity headers: %v", up)
		}
		if v := up.Values("Session-Role"); len(v) != 0 {
			t.Fatalf("spoofed role reached the upstream: %v", v)
		}
		for name := range up {
			if strings.Contains(name, "_") {
				t.Fatalf("underscore variant %q reached the upstream", name)
			}
		}
		for _, v := range up.Values("Session-User") {
			if v != "alice" {
				t.Fatalf("spoofed user value survived: %v", up.Values("Session-User"))
			}
		}
	})
}

func TestPassiveRequests(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		e.Clock.Advance(5 * time.Minute)
		r := e.Do(t, "GET", "/", tok, nil, "Session-Passive", "1")
		wantHeader(t, r, "Session-Idle-Expires-In", "600")
		e.Clock.Advance(5 * time.Minute)
		r = e.Do(t, "GET", "/poll/updates", tok, nil)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "300")
		r = e.Do(t, "GET", "/.session/status", tok, nil)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "300")
		var st map[string]any
		r.JSON(t, &st)
		if st["status"] != "active" || st["idle_expires_in"] != float64(300) || st["user_id"] != "alice" {
			t.Fatalf("status body %v", st)
		}
		e.Clock.Advance(5 * time.Minute)
		wantCode(t, e.Do(t, "GET", "/.session/status", tok, nil), 401)
	})
}

func TestKeepalive(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		e.Clock.Advance(12 * time.Minute)
		r := e.Do(t, "POST", "/.session/keepalive", tok, nil)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "900")
		wantCode(t, e.Do(t, "GET", "/.session/keepalive", tok, nil), 405)
		// A bearer token is never sent by a browser on its own: a
		// cross-origin app may call the endpoints.
		wantCode(t, e.Do(t, "POST", "/.session/keepalive", tok, nil, "Origin", "https://app.example"), 200)
		if _, hits := e.Upstream.Last(); hits != 1 {
			t.Fatalf("endpoint requests reached the upstream: %d", hits)
		}
		// A preflight passes to the app without credentials.
		r = e.Do(t, "OPTIONS", "/api", "", nil, "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Session-User", "x")
		wantCode(t, r, 200)
		if up, _ := e.Upstream.Last(); up.Get("Session-User") != "" {
			t.Fatal("spoofed identity on a preflight reached the upstream")
		}
	})
}

func TestExposeHeaders(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *env) {
		e.Upstream.Extra.Set("Access-Control-Expose-Headers", "X-App")
		e.Upstream.Extra.Set("Session-Expires-In", "99999")
		tok := e.mint(t, devtoken.Claims{Session: "s1"})
		r := e.Do(t, "GET", "/", tok, nil, "Origin", "https://app.example")
		wantCode(t, r, 200)
		exp := strings.Join(r.Header.Values("Access-Control-Expose-Headers"), ",")
		for _, n := range []string{"X-App", "Session-Expires-In", "Session-Idle-Expires-In", "Session-Absolute-Expires-In", "Session-Expiry-Warning", "Session-Expiry-Reason"} {
			if !strings.Contains(exp, n) {
				t.Fatalf("expose headers %q lack %s", exp, n)
			}
		}
		if v := r.Header.Values("Session-Expires-In"); len(v) != 1 || v[0] != "900" {
			t.Fatalf("upstream overrode the expiry header: %v", v)
		}
	})
}

func TestTokenPolicyClaims(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		site := strings.Replace(site, "login_url /login", "login_url /login\n\t\tclaims {\n\t\t\tidle idle_max\n\t\t\tabsolute abs_max\n\t\t}", 1)
		globals, _ := backends()[0].globals(t)
		if e.redis != nil {
			// a generous timeout: this test is about claims, and the
			// first request of a new client loads the scripts
			globals = "session_guard {\n\t\tstore redis {\n\t\t\taddress " + e.redis.Addr() + "\n\t\t\ttimeout 2s\n\t\t}\n\t}"
		}
		e.Load(t, globals, site)
		tok := e.mint(t, devtoken.Claims{Session: "s1", Idle: 30 * time.Minute, Absolute: 2 * time.Hour})
		r := e.Do(t, "GET", "/", tok, nil)
		wantHeader(t, r, "Session-Idle-Expires-In", "1800")
		wantHeader(t, r, "Session-Absolute-Expires-In", "7200")
	})
}

func TestStoreDownFailsClosedAndRecovers(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore redis {\n\t\t\taddress "+srv.Addr()+"\n\t\t\ttimeout 2s\n\t\t}\n\t}", site, t0)
	e := &env{Gateway: g, redis: srv}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
	srv.Stop(t)
	// The session cache answers the session it holds until the gateway
	// notices the outage: at its next lease renewal (a quarter lease).
	for deadline := time.Now().Add(store.DefaultCacheLease); e.Do(t, "GET", "/", tok, nil).StatusCode == 200; {
		if time.Now().After(deadline) {
			t.Fatal("still answered 200 from the cache a lease after Redis stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		r := e.Do(t, "GET", "/", tok, nil, "Accept", "text/html")
		wantCode(t, r, 503)
		if r.Header.Get("Retry-After") == "" || r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("503 headers: %v", r.Header)
		}
	}
	srv.Restart(t) // an empty Redis: the session is recreated from the token
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.Do(t, "GET", "/", tok, nil)
		if r.StatusCode == 200 {
			break
		}
		if r.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("after restart: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStoreDownFailOpen(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, "session_guard {\n\t\ton_store_error open\n\t\tstore redis {\n\t\t\taddress "+srv.Addr()+"\n\t\t}\n\t}", site, t0)
	e := &env{Gateway: g, redis: srv}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	srv.Stop(t)
	r := e.Do(t, "GET", "/", tok, nil)
	wantCode(t, r, 200)
	wantHeader(t, r, "Session-Expiry-Warning", "unknown")
	up, _ := e.Upstream.Last()
	if up.Get("Session-User") != "alice" {
		t.Fatalf("identity not passed when failing open: %v", up)
	}
	// A bad token is still rejected when the store is down.
	wantCode(t, e.Do(t, "GET", "/", "x.y.z", nil), 401)
}

func TestPublicKeyFileRS256(t *testing.T) {
	k, pubPEM := rsaKey(t)
	dir := t.TempDir()
	pemPath := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pemPath, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	rsSite := strings.Replace(strings.Replace(site, "alg HS256", "alg RS256", 1), "secret "+secret, "public_key "+pemPath, 1)
	g := gatewaytest.Start(t, "", rsSite, t0)
	now := g.Clock.Now()
	c := jwt.MapClaims{"sid": "r1", "sub": "bob", "acct": "acme", "iss": "https://idp.example", "aud": "app",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	r := g.Do(t, "GET", "/", tok, nil)
	if r.StatusCode != 200 {
		t.Fatalf("RS256 token: %d %s", r.StatusCode, r.Body)
	}
	// An HS256 token signed with the public key as secret is refused.
	conf, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(pubPEM)
	if r := g.Do(t, "GET", "/", conf, nil); r.StatusCode != 401 {
		t.Fatalf("alg confusion: %d", r.StatusCode)
	}
	_ = http.StatusOK
}

func TestCookieEndpointsRefuseCrossSite(t *testing.T) {
	cookieSite := strings.Replace(site, "login_url /login", "login_url /login\n\t\ttoken cookie sg", 1)
	g := gatewaytest.Start(t, "", cookieSite, t0)
	e := &env{Gateway: g}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	wantCode(t, e.Do(t, "GET", "/", "", nil, "Cookie", "sg="+tok), 200)
	wantCode(t, e.Do(t, "POST", "/.session/logout", "", nil, "Cookie", "sg="+tok, "Origin", "https://evil.example"), 403)
	wantCode(t, e.Do(t, "POST", "/.session/logout", "", nil, "Cookie", "sg="+tok, "Sec-Fetch-Site", "cross-site"), 403)
	wantCode(t, e.Do(t, "GET", "/", "", nil, "Cookie", "sg="+tok), 200)
	r := e.Do(t, "POST", "/.session/logout", "", nil, "Cookie", "sg="+tok, "Origin", g.URL)
	wantCode(t, r, 200)
	if !strings.Contains(r.Header.Get("Set-Cookie"), "sg=;") || !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout did not expire the cookie: %q", r.Header.Get("Set-Cookie"))
	}
	wantCode(t, e.Do(t, "GET", "/", "", nil, "Cookie", "sg="+tok), 401)
	// Basic credentials a browser cached are no token of ours: 401, not 400.
	wantCode(t, e.Do(t, "GET", "/", "", nil, "Authorization", "Basic dXNlcjpwYXNz"), 401)
}
