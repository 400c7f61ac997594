package caddymodule_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// captureLog returns globals that also send every log of every module,
// debug level included, to a file, and the file's path.
func captureLog(t *testing.T, globals string) (string, string) {
	path := filepath.Join(t.TempDir(), "debug.log")
	return globals + "\n\tlog capture {\n\t\toutput file " + path + "\n\t\tlevel DEBUG\n\t}", path
}

// wantNoSecrets fails the test when the log at path holds any of the
// secrets, or holds no debug entry of the handler (then it would prove
// nothing).
func wantNoSecrets(t *testing.T, path string, secrets map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, `"level":"debug"`) || !strings.Contains(log, "session rejected") {
		t.Fatalf("the log holds no debug entry of a rejected session:\n%s", log)
	}
	for what, s := range secrets {
		if strings.Contains(log, s) {
			i := strings.Index(log, s)
			start := strings.LastIndex(log[:i], "\n") + 1
			end := i + strings.Index(log[i:], "\n")
			t.Errorf("%s %q is in the log: %s", what, s, log[start:end])
		}
	}
}

// TestLogsHoldNoSecrets captures every log at debug level across valid,
// invalid, expired, revoked and admin requests with bearer tokens, and
// checks that no raw token, token signature or session id appears.
func TestLogsHoldNoSecrets(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			g, _ := b.globals(t)
			g, path := captureLog(t, g)
			e := &env{Gateway: gatewaytest.Start(t, g, site, t0)}
			secrets := map[string]string{}
			mint := func(what string, c devtoken.Claims) string {
				c.Session = devtoken.NewSessionID()
				tok := e.mint(t, c)
				secrets[what+" token"] = tok
				secrets[what+" token signature"] = tok[strings.LastIndex(tok, ".")+1:]
				secrets[what+" session id"] = c.Session
				return tok
			}
			valid, idle := mint("valid", devtoken.Claims{}), mint("idle", devtoken.Claims{})
			wantCode(t, e.Do(t, "GET", "/", valid, nil), 200)
			wantCode(t, e.Do(t, "GET", "/", idle, nil), 200)
			wantCode(t, e.Do(t, "POST", "/.session/keepalive", valid, nil), 200)
			wantCode(t, e.Do(t, "GET", "/.session/status", valid, nil), 200)

			// invalid: tampered signature, unknown key, garbage, expired
			parts := strings.Split(mint("tampered", devtoken.Claims{}), ".")
			tampered := parts[0] + "." + parts[1] + "." + strings.ToUpper(parts[2][:8]) + parts[2][8:] + "x"
			secrets["tampered token (sent)"] = tampered
			wantCode(t, e.Do(t, "GET", "/", tampered, nil), 401)
			garbage := "not-a-jwt-" + devtoken.NewSessionID()
			secrets["garbage token"] = garbage
			wantCode(t, e.Do(t, "GET", "/", garbage, nil), 401)
			expired := mint("expired", devtoken.Claims{TTL: time.Second, Now: e.Clock.Now().Add(-time.Minute)})
			wantCode(t, e.Do(t, "GET", "/", expired, nil), 401)

			// revoked by logout and through the admin API by raw id
			out := mint("logged out", devtoken.Claims{})
			wantCode(t, e.Do(t, "GET", "/", out, nil), 200)
			wantCode(t, e.Do(t, "POST", "/.session/logout", out, nil), 200)
			wantCode(t, e.Do(t, "GET", "/", out, nil), 401)
			revoked := mint("revoked", devtoken.Claims{User: "bob"})
			wantCode(t, e.Do(t, "GET", "/", revoked, nil), 200)
			body := `{"scope":"session","session":"` + secrets["revoked session id"] + `"}`
			wantCode(t, e.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(body)), 200)
			wantCode(t, e.Do(t, "GET", "/", revoked, nil), 401)
			wantCode(t, e.AdminDo(t, "GET", "/session_guard/accounts/acme/sessions", nil), 200)
			wantCode(t, e.AdminDo(t, "GET", "/session_guard/accounts/acme/audit", nil), 200)

			// idle-expired
			e.Clock.Advance(16 * time.Minute)
			wantCode(t, e.Do(t, "GET", "/", idle, nil), 401)
			wantNoSecrets(t, path, secrets)
		})
	}
}

// TestOpaqueLogsHoldNoSecrets is TestLogsHoldNoSecrets in opaque-cookie
// mode: login (bind), valid, unknown, logged-out, revoked and
// idle-expired cookies; no cookie value or session id derived from one
// may appear.
func TestOpaqueLogsHoldNoSecrets(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			g, _ := b.globals(t)
			g, path := captureLog(t, g)
			app := newCookieApp(t)
			site := strings.NewReplacer("APP", strings.TrimPrefix(app.URL, "http://"), "OPAQUE", "key "+cookieKey).Replace(opaqueSite)
			e := &opaqueEnv{Gateway: gatewaytest.Start(t, g, site, t0), app: app}
			secrets := map[string]string{}
			login := func(what, user string) string {
				c := e.login(t, user, "acme", "owner")
				secrets[what+" cookie"] = c
				secrets[what+" session id"] = opaqueTestID(c)
				return c
			}
			valid, idle := login("valid", "alice"), login("idle", "carol")
			wantCode(t, e.get(t, "GET", "/", valid), 200)
			wantCode(t, e.get(t, "GET", "/", idle), 200)
			wantCode(t, e.get(t, "GET", "/.session/status", valid), 200)
			wantCode(t, e.get(t, "GET", "/.session/account", valid), 200)
			unknown := "never-bound-" + devtoken.NewSessionID()
			secrets["unknown cookie"] = unknown
			wantCode(t, e.get(t, "GET", "/", unknown), 200) // unbound: passes anonymous

			out := login("logged out", "dave")
			wantCode(t, e.get(t, "GET", "/logout", out), 200)
			wantCode(t, e.get(t, "GET", "/", out), 401)
			revoked := login("revoked", "bob")
			wantCode(t, e.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"user","user_id":"bob"}`)), 200)
			wantCode(t, e.get(t, "GET", "/", revoked), 401)
			wantCode(t, e.AdminDo(t, "GET", "/session_guard/accounts/acme/sessions", nil), 200)

			e.Clock.Advance(16 * time.Minute)
			wantCode(t, e.get(t, "GET", "/", idle), 401)
			wantNoSecrets(t, path, secrets)
		})
	}
}
