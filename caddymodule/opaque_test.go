package caddymodule_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/caddymodule"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// cookieApp is an upstream with classic server-side session cookies,
// as Rails, Django, PHP or Express apps have: POST /login sets a new
// random cookie and binds it; POST /logout clears the cookie.
type cookieApp struct {
	*httptest.Server
	mu   sync.Mutex
	last http.Header
	hits int
}

func newCookieApp(t *testing.T) *cookieApp {
	a := &cookieApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.hits++
		a.mu.Unlock()
		q := r.URL.Query()
		switch r.URL.Path {
		case "/login":
			// ?user=&account=&role=&value=&delay= (value: the cookie;
			// default random; delay: answer after that long)
			if d, err := time.ParseDuration(q.Get("delay")); err == nil {
				time.Sleep(d)
			}
			v := q.Get("value")
			if v == "" {
				b := make([]byte, 16)
				_, _ = rand.Read(b)
				v = hex.EncodeToString(b)
			}
			w.Header().Add("Set-Cookie", "sid="+v+"; Path=/; HttpOnly; SameSite=Lax")
			w.Header().Set("Session-Guard-Bind-User", q.Get("user"))
			w.Header().Set("Session-Guard-Bind-Account", q.Get("account"))
			if q.Get("role") != "" {
				w.Header().Set("Session-Guard-Bind-Role", q.Get("role"))
			}
			w.Header().Set("Session-Guard-Bind-Name", "Name "+q.Get("user"))
			w.Header().Set("Session-Guard-Bind-Email", q.Get("user")+"@example.com")
			w.Header()["session_guard_bind_x"] = []string{"lower-case underscore variant"}
		case "/bind-only", "/login-clear":
			// bind headers on a response that sets no new cookie
			if r.URL.Path == "/login-clear" {
				w.Header().Add("Set-Cookie", "sid=; Path=/; Max-Age=0")
			}
			w.Header().Set("Session-Guard-Bind-User", q.Get("user"))
			w.Header().Set("Session-Guard-Bind-Account", q.Get("account"))
			w.Header().Set("Session-Guard-Bind-Role", q.Get("role"))
		case "/logout":
			w.Header().Add("Set-Cookie", "sid=; Path=/; Max-Age=0")
		case "/logout-expires":
			w.Header().Add("Set-Cookie", "sid=gone; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
		}
		w.Header().Set("Content-Type", "text/plain")
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "session") {
				fmt.Fprintf(w, "%s: %s\n", k, r.Header.Get(k))
			}
		}
	}))
	t.Cleanup(a.Close)
	return a
}

// Last returns the request headers of the last request that reached the
// app, and how many did.
func (a *cookieApp) Last() (http.Header, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.Clone(), a.hits
}

const opaqueSite = `{SITE} {
	session_guard {
		token cookie sid
		opaque {
			OPAQUE
		}
		login_url /signin
	}
	reverse_proxy APP {
		header_up X-Auth-User {http.auth.user.id}
	}
}`

type opaqueEnv struct {
	*gatewaytest.Gateway
	app     *cookieApp
	globals string
	redis   *testredis.Server // nil on the memory store
}

// eachOpaque runs fn against every store with the opaque site; opts is
// the content of the opaque block.
func eachOpaque(t *testing.T, extraGlobals, opts string, fn func(t *testing.T, e *opaqueEnv)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			g, rs := b.globals(t)
			if extraGlobals != "" {
				g = strings.Replace(g, "session_guard {", "session_guard {\n\t\t"+extraGlobals, 1)
			}
			app := newCookieApp(t)
			site := strings.NewReplacer("APP", strings.TrimPrefix(app.URL, "http://"), "OPAQUE", opts).Replace(opaqueSite)
			gw := gatewaytest.Start(t, g, site, t0)
			fn(t, &opaqueEnv{Gateway: gw, app: app, globals: g, redis: rs})
		})
	}
}

// login logs user of account in through the app and returns the cookie
// value the browser got.
func (e *opaqueEnv) login(t *testing.T, user, account, role string) string {
	t.Helper()
	r := e.Do(t, "POST", "/login?"+url.Values{"user": {user}, "account": {account}, "role": {role}}.Encode(), "", nil)
	wantCode(t, r, 200)
	for name := range r.Header {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "session-guard-bind") {
			t.Fatalf("bind header %q reached the client", name)
		}
	}
	for _, c := range r.Cookies() {
		if c.Name == "sid" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("login set no cookie: %v", r.Header)
	return ""
}

// get sends a request with the cookie; headers as name, value pairs.
func (e *opaqueEnv) get(t *testing.T, method, path, cookie string, headers ...string) *gatewaytest.Response {
	t.Helper()
	if cookie != "" {
		headers = browserHeaders(append(headers, "Cookie", "sid="+cookie))
	}
	return e.Do(t, method, path, "", nil, headers...)
}

// wantExpiredCookie checks that r expires the sid cookie.
func wantExpiredCookie(t *testing.T, r *gatewaytest.Response, path string) {
	t.Helper()
	for _, c := range r.Cookies() {
		if c.Name == "sid" && c.Value == "" && c.MaxAge < 0 && c.Path == path {
			return
		}
	}
	t.Fatalf("response does not expire the cookie (path %s): %q", path, r.Header.Values("Set-Cookie"))
}

func TestOpaqueBindAndRequest(t *testing.T) {
	eachOpaque(t, "", "unbound pass", func(t *testing.T, e *opaqueEnv) {
		// Anonymous requests pass without identity.
		r := e.get(t, "GET", "/", "", "Session-User", "mallory")
		wantCode(t, r, 200)
		if up, _ := e.app.Last(); up.Get("Session-User") != "" || up.Get("Session-Id-Hash") != "" {
			t.Fatalf("identity on an anonymous request: %v", up)
		}
		if r.Header.Get("Session-Expires-In") != "" {
			t.Fatal("expiry headers on an anonymous request")
		}
		// A cookie that was never bound passes without identity too.
		wantCode(t, e.get(t, "GET", "/", "never-bound"), 200)
		if up, _ := e.app.Last(); up.Get("Session-User") != "" {
			t.Fatalf("identity for an unbound cookie: %v", up)
		}

		c := e.login(t, "alice", "acme", "owner")
		r = e.get(t, "GET", "/app", c)
		wantCode(t, r, 200)
		wantHeader(t, r, "Session-Idle-Expires-In", "900")
		wantHeader(t, r, "Session-Absolute-Expires-In", strconv.Itoa(12*3600))
		wantHeader(t, r, "Session-Expiry-Warning", "none")
		up, _ := e.app.Last()
		hash := up.Get("Session-Id-Hash")
		if up.Get("Session-User") != "alice" || up.Get("Session-Account") != "acme" || up.Get("Session-Role") != "owner" ||
			up.Get("X-Auth-User") != "alice" || !session.LooksLikeHash(hash) {
			t.Fatalf("identity headers: %v", up)
		}
		if strings.Contains(hash, c) {
			t.Fatal("session hash contains the cookie")
		}
		// The status endpoint works with the cookie.
		r = e.get(t, "GET", "/.session/status", c)
		wantCode(t, r, 200)
		var st map[string]any
		r.JSON(t, &st)
		if st["user_id"] != "alice" || st["account_id"] != "acme" || st["session_id_hash"] != hash || st["name"] != "Name alice" || st["owner"] != true {
			t.Fatalf("status: %v", st)
		}
		// The admin API lists the session with the bound user.
		r = e.AdminDo(t, "GET", "/session_guard/accounts/acme/sessions", nil)
		wantCode(t, r, 200)
		var list struct {
			Sessions []map[string]any `json:"sessions"`
		}
		r.JSON(t, &list)
		if len(list.Sessions) != 1 || list.Sessions[0]["session_id_hash"] != hash || list.Sessions[0]["user_id"] != "alice" ||
			list.Sessions[0]["email"] != "alice@example.com" {
			t.Fatalf("listing: %s", r.Body)
		}
		if strings.Contains(string(r.Body), c) {
			t.Fatal("the raw cookie is in the listing")
		}
		if e.redis != nil {
			// Nothing in Redis holds the raw cookie value.
			ctx := context.Background()
			rc := e.redis.Client(t)
			keys, err := rc.Keys(ctx, "*").Result()
			if err != nil || len(keys) < 3 {
				t.Fatalf("keys %q %v", keys, err)
			}
			for _, k := range keys {
				var content string
				switch typ := rc.Type(ctx, k).Val(); typ {
				case "hash":
					content = fmt.Sprint(rc.HGetAll(ctx, k).Val())
				case "string":
					content = rc.Get(ctx, k).Val()
				case "zset":
					content = fmt.Sprint(rc.ZRange(ctx, k, 0, -1).Val())
				case "stream": // the lifecycle events
					content = fmt.Sprint(rc.XRange(ctx, k, "-", "+").Val())
				default:
					t.Fatalf("key %q of unexpected type %s", k, typ)
				}
				if strings.Contains(k, c) || strings.Contains(content, c) {
					t.Fatalf("key %q holds the raw cookie", k)
				}
			}
		}
	})
}

func TestOpaqueIdleExpiry(t *testing.T) {
	eachOpaque(t, "", "cookie_path /\n\t\t\tcookie_domain 127.0.0.1", func(t *testing.T, e *opaqueEnv) {
		c := e.login(t, "alice", "acme", "")
		e.Clock.Advance(14 * time.Minute)
		wantCode(t, e.get(t, "GET", "/", c), 200)
		e.Clock.Advance(14 * time.Minute)
		wantHeader(t, e.get(t, "GET", "/", c, "Session-Passive", "1"), "Session-Expires-In", "60")
		e.Clock.Advance(time.Minute)
		_, before := e.app.Last()
		r := e.get(t, "GET", "/", c)
		wantCode(t, r, 401)
		if strings.TrimSpace(string(r.Body)) != `{"error":"session_expired","reason":"idle"}` {
			t.Fatalf("body %s", r.Body)
		}
		wantHeader(t, r, "Session-Expiry-Reason", "idle")
		wantExpiredCookie(t, r, "/")
		if !strings.Contains(r.Header.Get("Set-Cookie"), "Domain=127.0.0.1") {
			t.Fatalf("cookie domain missing: %q", r.Header.Get("Set-Cookie"))
		}
		if _, after := e.app.Last(); after != before {
			t.Fatal("an expired session reached the app")
		}
		r = e.get(t, "GET", "/page", c, "Accept", "text/html")
		wantCode(t, r, 302)
		wantHeader(t, r, "Location", "/signin?reason=session_expired")
		wantExpiredCookie(t, r, "/")
		// A new login works.
		wantCode(t, e.get(t, "GET", "/", e.login(t, "alice", "acme", "")), 200)
	})
}

func TestOpaqueAbsoluteExpiry(t *testing.T) {
	eachOpaque(t, "preset short 10m 30m\n\t\tdefault_preset short", "cookie_path /app", func(t *testing.T, e *opaqueEnv) {
		c := e.login(t, "alice", "acme", "")
		for i := 0; i < 6; i++ {
			r := e.get(t, "GET", "/", c)
			wantCode(t, r, 200)
			wantHeader(t, r, "Session-Absolute-Expires-In", strconv.Itoa(1800-i*5*60))
			e.Clock.Advance(5 * time.Minute)
		}
		r := e.get(t, "GET", "/", c)
		wantCode(t, r, 401)
		wantHeader(t, r, "Session-Expiry-Reason", "absolute")
		wantExpiredCookie(t, r, "/app")
	})
}

func TestOpaqueRevocation(t *testing.T) {
	eachOpaque(t, "", "", func(t *testing.T, e *opaqueEnv) {
		a1, a2 := e.login(t, "alice", "acme", ""), e.login(t, "alice", "acme", "")
		b := e.login(t, "bob", "acme", "")
		x := e.login(t, "alice", "other", "")
		revoke := func(body string) int {
			t.Helper()
			r := e.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(body))
			wantCode(t, r, 200)
			var out struct{ Revoked int }
			r.JSON(t, &out)
			return out.Revoked
		}
		if n := revoke(`{"scope":"user","user_id":"alice"}`); n != 2 {
			t.Fatalf("revoke user: %d, want 2", n)
		}
		for _, c := range []string{a1, a2} {
			r := e.get(t, "GET", "/", c)
			wantCode(t, r, 401)
			if strings.TrimSpace(string(r.Body)) != `{"error":"session_revoked"}` {
				t.Fatalf("body %s", r.Body)
			}
			wantExpiredCookie(t, r, "/")
		}
		wantCode(t, e.get(t, "GET", "/", b), 200)
		wantCode(t, e.get(t, "GET", "/", x), 200)
		if n := revoke(`{"scope":"all"}`); n != 1 {
			t.Fatalf("revoke all: %d, want 1", n)
		}
		wantCode(t, e.get(t, "GET", "/", b), 401)
		wantCode(t, e.get(t, "GET", "/", x), 200)
		// After revoke-all a new login is a new session.
		e.Clock.Advance(time.Second)
		wantCode(t, e.get(t, "GET", "/", e.login(t, "bob", "acme", "")), 200)
		// Logout through the endpoint works too.
		r := e.get(t, "POST", "/.session/logout", x)
		wantCode(t, r, 200)
		wantCode(t, e.get(t, "GET", "/", x), 401)
	})
}

func TestOpaqueLogoutByUpstream(t *testing.T) {
	eachOpaque(t, "", "", func(t *testing.T, e *opaqueEnv) {
		for _, path := range []string{"/logout", "/logout-expires"} {
			c := e.login(t, "alice", "acme", "")
			keep := e.login(t, "alice", "acme", "")
			r := e.get(t, "POST", path, c)
			wantCode(t, r, 200)
			if !strings.Contains(r.Header.Get("Set-Cookie"), "sid=") {
				t.Fatalf("%s: the app's Set-Cookie was lost: %v", path, r.Header)
			}
			// A copy of the cookie kept by an attacker is dead.
			r = e.get(t, "GET", "/", c)
			wantCode(t, r, 401)
			wantHeader(t, r, "Session-Expiry-Reason", "revoked")
			wantCode(t, e.get(t, "GET", "/", keep), 200)
		}
	})
}

func TestOpaqueForgedBindHeaders(t *testing.T) {
	eachOpaque(t, "", "", func(t *testing.T, e *opaqueEnv) {
		forged := []string{
			"Session-Guard-Bind-User", "mallory", "session-guard-bind-account", "victim",
			"SESSION-GUARD-BIND-ROLE", "owner", "Session_Guard_Bind_User", "mallory",
		}
		// On an ordinary request with an unbound cookie: stripped, nothing bound.
		wantCode(t, e.get(t, "GET", "/", "attacker-chosen", forged...), 200)
		up, _ := e.app.Last()
		for name := range up {
			if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "session-guard-bind") {
				t.Fatalf("client-sent %q reached the app", name)
			}
		}
		wantCode(t, e.get(t, "GET", "/", "attacker-chosen"), 200)
		if up, _ := e.app.Last(); up.Get("Session-User") != "" {
			t.Fatalf("a client bound its own cookie: %v", up)
		}
		if r := e.AdminDo(t, "GET", "/session_guard/accounts/victim/sessions", nil); strings.Contains(string(r.Body), "mallory") {
			t.Fatalf("forged session listed: %s", r.Body)
		}
		// On the login: the app's headers count, not the client's.
		r := e.Do(t, "POST", "/login?user=alice&account=acme", "", nil, forged...)
		wantCode(t, r, 200)
		var c string
		for _, ck := range r.Cookies() {
			if ck.Name == "sid" {
				c = ck.Value
			}
		}
		wantCode(t, e.get(t, "GET", "/", c), 200)
		if up, _ := e.app.Last(); up.Get("Session-User") != "alice" || up.Get("Session-Account") != "acme" || up.Get("Session-Role") != "" {
			t.Fatalf("identity after a login with forged headers: %v", up)
		}
	})
}

// rawRequest sends a request line and headers as they are (the Go
// client refuses to send some of them) and returns the status code.
func rawRequest(t *testing.T, addr, headers string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", addr, headers); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestOpaqueCookieValues(t *testing.T) {
	eachOpaque(t, "", "", func(t *testing.T, e *opaqueEnv) {
		// Values apps use, with characters that mean something to Redis
		// keys or Caddy placeholders, bind and work.
		for _, v := range []string{"{a}:*b", "s%3Aabc.def--x", "{http.request.uri}", "}{", strings.Repeat("k", 4096)} {
			r := e.Do(t, "POST", "/login?"+url.Values{"user": {"u" + v[:2]}, "account": {"acme"}, "value": {v}}.Encode(), "", nil)
			wantCode(t, r, 200)
			r = e.get(t, "GET", "/", v)
			wantCode(t, r, 200)
			if up, _ := e.app.Last(); up.Get("Session-User") != "u"+v[:2] {
				t.Fatalf("value %.20q: identity %v", v, up)
			}
		}
		_, before := e.app.Last()
		addr := strings.TrimPrefix(e.URL, "http://")
		// NUL and other control bytes.
		if code := rawRequest(t, addr, "Cookie: sid=ab\x00cd\r\n"); code != 400 {
			t.Fatalf("NUL: %d, want 400", code)
		}
		if code := rawRequest(t, addr, "Cookie: sid=ab\x01cd\r\n"); code != 400 {
			t.Fatalf("control byte: %d, want 400", code)
		}
		if code := rawRequest(t, addr, "Cookie: sid=ab\xffcd\r\n"); code != 400 {
			t.Fatalf("non-ASCII: %d, want 400", code)
		}
		// 10 KB: too long, rejected before any store call.
		r := e.get(t, "GET", "/", strings.Repeat("x", 10*1024))
		wantCode(t, r, 401)
		if _, after := e.app.Last(); after != before {
			t.Fatalf("%d malformed requests reached the app", after-before)
		}
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("challenge %q", r.Header.Get("WWW-Authenticate"))
		}
		// Duplicated cookie, in one header or two.
		c := e.login(t, "alice", "acme", "")
		_, before = e.app.Last()
		r = e.Do(t, "GET", "/", "", nil, "Cookie", "sid="+c+"; sid=other")
		wantCode(t, r, 400)
		if !strings.Contains(string(r.Body), `"error":"invalid_request"`) {
			t.Fatalf("body %s", r.Body)
		}
		wantCode(t, e.Do(t, "GET", "/", "", nil, "Cookie", "sid="+c, "Cookie", "sid="+c), 400)
		if _, after := e.app.Last(); after != before {
			t.Fatalf("%d rejected requests reached the app", after-before)
		}
		// An app binding a value the gateway refuses does not bind it.
		wantCode(t, e.Do(t, "POST", "/login?user=bob&account=acme&value="+strings.Repeat("y", 5000), "", nil), 200)
		if r := e.AdminDo(t, "GET", "/session_guard/accounts/acme/sessions", nil); strings.Contains(string(r.Body), "bob") {
			t.Fatalf("oversized cookie bound: %s", r.Body)
		}
	})
}

func TestOpaqueUnboundReject(t *testing.T) {
	eachOpaque(t, "", "unbound reject", func(t *testing.T, e *opaqueEnv) {
		// The login goes through a handler that lets unbound requests
		// pass, so that its response can bind the session.
		app := strings.TrimPrefix(e.app.URL, "http://")
		e.Load(t, e.globals, `{SITE} {
	handle /login {
		session_guard {
			token cookie sid
			opaque
		}
		reverse_proxy `+app+`
	}
	handle {
		session_guard {
			token cookie sid
			opaque {
				unbound reject
			}
			login_url /signin
		}
		reverse_proxy `+app+`
	}
}`)
		r := e.DoAfterReload(t, "GET", "/", "")
		wantCode(t, r, 401)
		wantHeader(t, r, "WWW-Authenticate", `Bearer realm="session_guard"`)
		wantCode(t, e.get(t, "GET", "/", "never-bound"), 401)
		r = e.get(t, "GET", "/", "never-bound", "Accept", "text/html")
		wantCode(t, r, 302)
		wantHeader(t, r, "Location", "/signin")
		if _, hits := e.app.Last(); hits != 0 {
			t.Fatalf("%d unbound requests reached the app", hits)
		}
		c := e.login(t, "alice", "acme", "")
		wantCode(t, e.get(t, "GET", "/", c), 200)
	})
}

// TestOpaqueBindAcrossReload: a login whose upstream answers after a
// reload that replaced the Redis client, and after the old client's
// minimum close delay, still binds its session: the old client stays
// open while a request holds it.
func TestOpaqueBindAcrossReload(t *testing.T) {
	srv := testredis.Start(t)
	app := newCookieApp(t)
	site := strings.NewReplacer("APP", strings.TrimPrefix(app.URL, "http://"), "OPAQUE", "key "+strings.Repeat("k", 32)).Replace(opaqueSite)
	globals := func(timeout string) string {
		return "session_guard {\n\t\tstore redis {\n\t\t\taddress " + srv.Addr() + "\n\t\t\ttimeout " + timeout + "\n\t\t}\n\t}"
	}
	g := gatewaytest.Start(t, globals("100ms"), site, t0)
	e := &opaqueEnv{Gateway: g, app: app, redis: srv}
	type answer struct {
		code int
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		// the old client's close delay is 1s + 2 x 100ms
		resp, err := http.Post(g.URL+"/login?user=alice&account=acme&value=slow-login&delay=1500ms", "text/plain", nil)
		if err != nil {
			done <- answer{err: err}
			return
		}
		resp.Body.Close()
		done <- answer{code: resp.StatusCode}
	}()
	time.Sleep(300 * time.Millisecond)
	g.Load(t, globals("150ms"), site) // other settings: a new pooled client
	a := <-done
	if a.err != nil || a.code != 200 {
		t.Fatalf("slow login across the reload: %d %v", a.code, a.err)
	}
	r := e.get(t, "GET", "/", "slow-login")
	wantCode(t, r, 200)
	if up, _ := app.Last(); up.Get("Session-User") != "alice" {
		t.Fatalf("the slow login's session was not bound: upstream saw Session-User %q", up.Get("Session-User"))
	}
}

// TestOpaqueStoreDownFailOpen: with on_store_error open and Redis down,
// nobody can tell whose a cookie is: the request passes without
// identity, says Session-Expiry-Warning: unknown, and is counted as
// fail_open (not as unbound).
func TestOpaqueStoreDownFailOpen(t *testing.T) {
	srv := testredis.Start(t)
	app := newCookieApp(t)
	site := strings.NewReplacer("APP", strings.TrimPrefix(app.URL, "http://"), "OPAQUE", "key "+strings.Repeat("k", 32)).Replace(opaqueSite)
	g := gatewaytest.Start(t, "session_guard {\n\t\ton_store_error open\n\t\tstore redis {\n\t\t\taddress "+srv.Addr()+"\n\t\t\ttimeout 2s\n\t\t}\n\t}", site, t0)
	e := &opaqueEnv{Gateway: g, app: app, redis: srv}
	c := e.login(t, "alice", "acme", "member")
	wantCode(t, e.get(t, "GET", "/", c), 200)
	srv.Stop(t)
	before := caddymodule.DecisionCount("proxy", "fail_open")
	unbound := caddymodule.DecisionCount("proxy", "unbound")
	r := e.get(t, "GET", "/", c)
	wantCode(t, r, 200)
	wantHeader(t, r, "Session-Expiry-Warning", "unknown")
	if up, _ := app.Last(); up.Get("Session-User") != "" {
		t.Fatalf("identity sent upstream while nobody knows whose the cookie is: %q", up.Get("Session-User"))
	}
	if d := caddymodule.DecisionCount("proxy", "fail_open") - before; d != 1 {
		t.Fatalf("fail_open decisions grew by %v, want 1", d)
	}
	if d := caddymodule.DecisionCount("proxy", "unbound") - unbound; d != 0 {
		t.Fatalf("unbound decisions grew by %v, want 0", d)
	}
}

// The generated key is kept in the store: after a config reload (a new
// handler) bound cookies still map to their sessions.
func TestOpaqueGeneratedKeySurvivesReload(t *testing.T) {
	eachOpaque(t, "", "", func(t *testing.T, e *opaqueEnv) {
		c := e.login(t, "alice", "acme", "")
		site := strings.NewReplacer("APP", strings.TrimPrefix(e.app.URL, "http://"), "OPAQUE", "unbound pass").Replace(opaqueSite)
		e.Load(t, e.globals, site)
		r := e.DoAfterReload(t, "GET", "/.session/status", "")
		wantCode(t, r, 401)
		r = e.get(t, "GET", "/", c)
		wantCode(t, r, 200)
		if up, _ := e.app.Last(); up.Get("Session-User") != "alice" {
			t.Fatalf("after reload: %v", up)
		}
	})
}

func TestOpaqueConfiguredKey(t *testing.T) {
	t.Setenv("SG_TEST_COOKIE_KEY", "0123456789abcdef0123456789abcdef-cookie")
	eachOpaque(t, "", "key {env.SG_TEST_COOKIE_KEY}", func(t *testing.T, e *opaqueEnv) {
		c := e.login(t, "alice", "acme", "")
		wantCode(t, e.get(t, "GET", "/", c), 200)
		if up, _ := e.app.Last(); up.Get("Session-User") != "alice" {
			t.Fatalf("identity: %v", up)
		}
	})
	t.Run("short key refused", func(t *testing.T) {
		app := newCookieApp(t)
		r := strings.NewReplacer("APP", strings.TrimPrefix(app.URL, "http://"), "OPAQUE", "unbound pass")
		g := gatewaytest.Start(t, "", r.Replace(opaqueSite), t0)
		bad := strings.Replace(r.Replace(opaqueSite), "unbound pass", "key {env.SG_TEST_UNSET_KEY}", 1)
		if err := g.TryLoad(t, "", bad); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
			t.Fatalf("load with an empty key: %v", err)
		}
	})
}

func TestOpaqueStoreDown(t *testing.T) {
	srv := testredis.Start(t)
	app := newCookieApp(t)
	site := strings.NewReplacer("APP", strings.TrimPrefix(app.URL, "http://"), "OPAQUE", "unbound pass").Replace(opaqueSite)
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore redis {\n\t\t\taddress "+srv.Addr()+"\n\t\t\ttimeout 2s\n\t\t}\n\t}", site, t0)
	e := &opaqueEnv{Gateway: g, app: app}
	c := e.login(t, "alice", "acme", "")
	wantCode(t, e.get(t, "GET", "/", c), 200)
	srv.Stop(t)
	r := e.get(t, "GET", "/", c)
	wantCode(t, r, 503)
	if r.Header.Get("Retry-After") == "" || r.Header.Get("Set-Cookie") != "" {
		t.Fatalf("503 headers: %v", r.Header)
	}
	// A login whose session cannot be recorded is not half done: 503,
	// and the browser does not get the new cookie.
	_, before := app.Last()
	r = e.Do(t, "POST", "/login?user=bob&account=acme", "", nil)
	wantCode(t, r, 503)
	if r.Header.Get("Set-Cookie") != "" || strings.Contains(string(r.Body), "Session") {
		t.Fatalf("failed bind leaked the app's response: %v %s", r.Header, r.Body)
	}
	if _, after := app.Last(); after != before+1 {
		t.Fatalf("login reached the app %d times", after-before)
	}
}
