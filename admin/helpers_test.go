package admin_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

const secret = "0123456789abcdef0123456789abcdef"

// cookieKey is the HMAC key of opaque mode, configured so that the
// tests can derive the session id of a cookie.
const cookieKey = "fedcba9876543210fedcba9876543210-admin-cookies"

// mode is a token mode the suites run in: the same tests, with a
// credential that is a bearer JWT or an opaque session cookie that the
// app's login response bound.
type mode struct {
	name string
	// handler is the mode's part of the session_guard handler block.
	handler string
	opaque  bool
}

var (
	jwtMode = mode{
		name:    "jwt",
		handler: "jwt {\n\t\t\talg HS256\n\t\t\tsecret " + secret + "\n\t\t}",
	}
	// opaqueMode passes unbound cookies, so that the login through the
	// gateway can reach the app and bind one.
	opaqueMode = mode{
		name:    "opaque",
		handler: "token cookie sid\n\t\topaque {\n\t\t\tkey " + cookieKey + "\n\t\t}",
		opaque:  true,
	}
	modes = []mode{jwtMode, opaqueMode}
)

// site renders the mode's site block, with extra handler options.
func (m mode) site(extra ...string) string {
	h := m.handler
	for _, x := range extra {
		h += "\n\t\t" + x
	}
	return "{SITE} {\n\tsession_guard {\n\t\t" + h + "\n\t}\n\treverse_proxy {UPSTREAM}\n}"
}

// site is the JWT site.
var site = jwtMode.site()

// backend is one store the tests run against, in one token mode.
type backend struct {
	name  string
	redis *testredis.Server // nil for memory
	mode  mode              // jwtMode when zero
}

// storeSnippet is the store line(s) of the global session_guard block.
func (b backend) storeSnippet() string {
	if b.redis == nil {
		return "store memory"
	}
	return fmt.Sprintf("store redis {\n\t\t\taddress %s\n\t\t\ttimeout 2s\n\t\t}", b.redis.Addr())
}

// globals renders the global session_guard block with extra options.
func (b backend) globals(extra ...string) string {
	return "session_guard {\n\t\t" + b.storeSnippet() + "\n\t\t" + strings.Join(extra, "\n\t\t") + "\n\t}"
}

// tokenMode is the backend's token mode.
func (b backend) tokenMode() mode {
	if b.mode.name == "" {
		return jwtMode
	}
	return b.mode
}

// site is the site block of the backend's token mode, with extra
// handler options.
func (b backend) site(extra ...string) string { return b.tokenMode().site(extra...) }

// eachStore runs fn once against the memory store and once against a
// real redis-server, in JWT mode.
func eachStore(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("memory", func(t *testing.T) { fn(t, backend{name: "memory"}) })
	t.Run("redis", func(t *testing.T) { fn(t, backend{name: "redis", redis: testredis.Start(t)}) })
}

// eachMode runs fn in both token modes against both stores.
func eachMode(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, b backend) {
				b.mode = m
				fn(t, b)
			})
		})
	}
}

// env is a running gateway with helpers.
type env struct {
	*gatewaytest.Gateway
	b    backend
	mode mode
}

func start(t *testing.T, b backend, extra ...string) *env {
	t.Helper()
	g := gatewaytest.Start(t, b.globals(extra...), b.site(), time.Now().Truncate(time.Second))
	return &env{Gateway: g, b: b, mode: b.tokenMode()}
}

type tok struct {
	sid, user, acct, role string
	login                 time.Time
	extra                 map[string]any
}

// mint returns a signed token; login defaults to now. JWT mode only:
// the gateway has not seen the token yet.
func (e *env) mint(t *testing.T, k tok) string {
	t.Helper()
	if e.mode.opaque {
		t.Fatal("mint in opaque mode: use login")
	}
	s, err := devtoken.Mint([]byte(secret), devtoken.Claims{
		Session: k.sid, User: k.user, Account: k.acct, Role: k.role,
		Name: "Name " + k.user, Email: k.user + "@example.com",
		LoginAt: k.login, Now: e.Clock.Now(), TTL: 24 * time.Hour, Extra: k.extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// login starts the session k.sid and returns its credential: in JWT mode
// a minted token, after a first request that the gateway answers 200; in
// opaque mode the cookie value that a login through the gateway bound
// (login time now). k.login and k.extra are JWT claims.
func (e *env) login(t *testing.T, k tok) string {
	t.Helper()
	if !e.mode.opaque {
		tk := e.mint(t, k)
		e.wantGet(t, tk, 200, "")
		return tk
	}
	if !k.login.IsZero() || k.extra != nil {
		t.Fatal("login time and extra claims are JWT-only")
	}
	v := cookieValue(k.sid)
	e.Bind(t, gatewaytest.Binding{
		Value: v, User: k.user, Account: k.acct, Role: k.role,
		Name: "Name " + k.user, Email: k.user + "@example.com",
	})
	return v
}

// cookieValue is the app's cookie of the session named sid in opaque
// mode.
func cookieValue(sid string) string { return "app-cookie-" + sid }

// id is the session id the gateway knows the session sid by: the JWT's
// sid claim, or in opaque mode the documented HMAC-SHA-256 (base64url)
// of the cookie value.
func (e *env) id(sid string) string {
	if !e.mode.opaque {
		return sid
	}
	m := hmac.New(sha256.New, []byte(cookieKey))
	m.Write([]byte(cookieValue(sid)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// hash is the session id hash of the session sid.
func (e *env) hash(sid string) string { return session.HashID(e.id(sid)) }

// do sends a request with the credential cred: a bearer token, or the
// session cookie in opaque mode.
func (e *env) do(t *testing.T, method, path, cred string, body io.Reader, headers ...string) *gatewaytest.Response {
	t.Helper()
	if e.mode.opaque {
		if cred != "" {
			// as a browser on the gateway's own site sends it: cookie
			// credentials without it are refused as cross-site
			headers = append(headers, "Cookie", "sid="+cred, "Sec-Fetch-Site", "same-origin")
		}
		return e.Do(t, method, path, "", body, headers...)
	}
	return e.Do(t, method, path, cred, body, headers...)
}

// get sends GET / with a token and returns the status and error code.
func (e *env) get(t *testing.T, token string) (int, string) {
	t.Helper()
	r := e.do(t, http.MethodGet, "/", token, nil)
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &body)
	return r.StatusCode, body.Error
}

func (e *env) wantGet(t *testing.T, token string, status int, code string) {
	t.Helper()
	st, c := e.get(t, token)
	if st != status || c != code {
		t.Fatalf("GET /: %d %q, want %d %q", st, c, status, code)
	}
}

func acctPath(account, rest string) string {
	return "/session_guard/accounts/" + url.PathEscape(account) + "/" + rest
}

// admin sends an admin request and checks the status.
func (e *env) admin(t *testing.T, method, path string, body string, want int, headers ...string) *gatewaytest.Response {
	t.Helper()
	var b []byte
	if body != "" || method == http.MethodPatch || method == http.MethodPost {
		b = []byte(body)
	}
	r := e.AdminDo(t, method, path, b, headers...)
	if r.StatusCode != want {
		t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, truncateForLog(body), r.StatusCode, want, r.Body)
	}
	return r
}

func truncateForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func (e *env) patch(t *testing.T, account, body string, want int) map[string]any {
	t.Helper()
	var out map[string]any
	e.admin(t, http.MethodPatch, acctPath(account, "policy"), body, want).JSON(t, &out)
	return out
}

func (e *env) revoke(t *testing.T, account, body string) int {
	t.Helper()
	var out struct {
		Revoked *int `json:"revoked"`
	}
	e.admin(t, http.MethodPost, acctPath(account, "revoke"), body, 200).JSON(t, &out)
	if out.Revoked == nil {
		t.Fatal("no revoked count")
	}
	return *out.Revoked
}

func (e *env) audit(t *testing.T, account string) []store.Event {
	t.Helper()
	var out struct {
		Events []store.Event `json:"events"`
	}
	e.admin(t, http.MethodGet, acctPath(account, "audit")+"?limit=1000", "", 200).JSON(t, &out)
	return out.Events
}

type policyView struct {
	Account  string `json:"account"`
	Override struct {
		Idle     *int64 `json:"idle_minutes"`
		Absolute *int64 `json:"absolute_minutes"`
	} `json:"override"`
	Effective struct {
		Idle     int64 `json:"idle_minutes"`
		Absolute int64 `json:"absolute_minutes"`
	} `json:"effective"`
	Preset string `json:"preset"`
	Apply  string `json:"apply"`
}

func (e *env) policy(t *testing.T, account string) policyView {
	t.Helper()
	var v policyView
	e.admin(t, http.MethodGet, acctPath(account, "policy"), "", 200).JSON(t, &v)
	return v
}

type sessionsView struct {
	Sessions []struct {
		Hash    string `json:"session_id_hash"`
		User    string `json:"user_id"`
		Current bool   `json:"current"`
	} `json:"sessions"`
	ActiveUsers []struct {
		UserID      string    `json:"user_id"`
		Name        string    `json:"name"`
		Email       string    `json:"email"`
		LastLoginAt time.Time `json:"last_login_at"`
		Sessions    int       `json:"sessions"`
		You         bool      `json:"you"`
	} `json:"active_users"`
	NextCursor string `json:"next_cursor"`
}

func (e *env) sessions(t *testing.T, account string) sessionsView {
	t.Helper()
	var v sessionsView
	e.admin(t, http.MethodGet, acctPath(account, "sessions"), "", 200).JSON(t, &v)
	return v
}

func ptr(n int64) *int64 { return &n }

func eqp(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func show(p *int64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// ownerDo sends a request to an owner endpoint.
func (e *env) ownerDo(t *testing.T, method, ep, token, body string, headers ...string) *gatewaytest.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		headers = append([]string{"Content-Type", "application/json"}, headers...)
	}
	return e.do(t, method, "/.session/"+ep, token, rd, headers...)
}
