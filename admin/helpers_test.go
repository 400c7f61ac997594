package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

const secret = "0123456789abcdef0123456789abcdef"

const site = `{SITE} {
	session_guard {
		jwt {
			alg HS256
			secret 0123456789abcdef0123456789abcdef
		}
	}
	reverse_proxy {UPSTREAM}
}`

// backend is one store the tests run against.
type backend struct {
	name  string
	redis *testredis.Server // nil for memory
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

// eachStore runs fn once against the memory store and once against a
// real redis-server.
func eachStore(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("memory", func(t *testing.T) { fn(t, backend{name: "memory"}) })
	t.Run("redis", func(t *testing.T) { fn(t, backend{name: "redis", redis: testredis.Start(t)}) })
}

// env is a running gateway with helpers.
type env struct {
	*gatewaytest.Gateway
	b backend
}

func start(t *testing.T, b backend, extra ...string) *env {
	t.Helper()
	g := gatewaytest.Start(t, b.globals(extra...), site, time.Now().Truncate(time.Second))
	return &env{Gateway: g, b: b}
}

type tok struct {
	sid, user, acct, role string
	login                 time.Time
	extra                 map[string]any
}

// mint returns a signed token; login defaults to now.
func (e *env) mint(t *testing.T, k tok) string {
	t.Helper()
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

// get sends GET / with a token and returns the status and error code.
func (e *env) get(t *testing.T, token string) (int, string) {
	t.Helper()
	r := e.Do(t, http.MethodGet, "/", token, nil)
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
	var rd *bytes.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
		headers = append([]string{"Content-Type", "application/json"}, headers...)
	}
	if rd == nil {
		return e.Do(t, method, "/.session/"+ep, token, nil, headers...)
	}
	return e.Do(t, method, "/.session/"+ep, token, rd, headers...)
}
