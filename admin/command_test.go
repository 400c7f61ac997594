package admin_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/admin"
	"github.com/sessionguard/sessionguard/internal/session"
)

// cli runs `caddy session-guard args...` and returns its output.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := admin.NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatalf("session-guard %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestCommand(t *testing.T) {
	eachStore(t, func(t *testing.T, b backend) {
		e := start(t, b)
		addr := strings.TrimPrefix(e.Admin, "http://")

		// the admin address is read from the config, like caddy reload
		dir := t.TempDir()
		caddyfile := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(caddyfile, []byte(e.Caddyfile(b.globals(), site)), 0o600); err != nil {
			t.Fatal(err)
		}

		out := mustCLI(t, "policy", "get", "acme", "--config", caddyfile)
		for _, want := range []string{"account:", "acme", "preset:", "strict", "next_login", "inherited", "5..43200"} {
			if !strings.Contains(out, want) {
				t.Errorf("policy get output lacks %q:\n%s", want, out)
			}
		}

		out = mustCLI(t, "policy", "set", "acme", "--idle", "30", "--absolute", "600", "--address", addr, "--actor", "ops-carol")
		if !strings.Contains(out, "30") || !strings.Contains(out, "custom") {
			t.Fatalf("policy set output:\n%s", out)
		}
		if v := e.policy(t, "acme"); !eqp(v.Override.Idle, ptr(30)) || !eqp(v.Override.Absolute, ptr(600)) {
			t.Fatalf("after set: %+v", v)
		}
		mustCLI(t, "policy", "set", "acme", "--clear-idle", "--address", addr)
		if v := e.policy(t, "acme"); v.Override.Idle != nil || !eqp(v.Override.Absolute, ptr(600)) {
			t.Fatalf("after clear-idle: %+v", v)
		}
		out = mustCLI(t, "policy", "set", "acme", "--preset", "standard", "--address", addr, "--json")
		var pv struct {
			Preset string `json:"preset"`
		}
		if err := json.Unmarshal([]byte(out), &pv); err != nil || pv.Preset != "standard" {
			t.Fatalf("policy set --json: %v\n%s", err, out)
		}
		// errors: validation from the API, bad flag combinations locally
		if out, err := cli(t, "policy", "set", "acme", "--idle", "-5", "--address", addr); err == nil || !strings.Contains(err.Error(), "422") {
			t.Fatalf("invalid idle: %v\n%s", err, out)
		}
		if _, err := cli(t, "policy", "set", "acme", "--address", addr); err == nil {
			t.Fatal("policy set without changes succeeded")
		}
		if _, err := cli(t, "policy", "set", "acme", "--idle", "30", "--clear-idle", "--address", addr); err == nil {
			t.Fatal("--idle with --clear-idle succeeded")
		}

		// sessions
		for _, s := range []struct{ sid, user string }{{"a1", "alice"}, {"b1", "bob"}, {"b2", "bob"}} {
			e.wantGet(t, e.mint(t, tok{sid: s.sid, user: s.user, acct: "acme"}), 200, "")
		}
		out = mustCLI(t, "sessions", "acme", "--address", addr)
		for _, want := range []string{"USER", "alice", "Name bob", "bob@example.com", session.HashID("b2"), "3 live session(s), 2 active user(s)"} {
			if !strings.Contains(out, want) {
				t.Errorf("sessions output lacks %q:\n%s", want, out)
			}
		}
		out = mustCLI(t, "sessions", "acme", "--address", addr, "--json")
		var sv sessionsView
		if err := json.Unmarshal([]byte(out), &sv); err != nil || len(sv.Sessions) != 3 {
			t.Fatalf("sessions --json: %v\n%s", err, out)
		}
		// one session per request: the same listing; bob, whose
		// sessions are on two pages, is one user with two sessions
		paged := mustCLI(t, "sessions", "acme", "--address", addr, "--page-size", "1")
		if paged != mustCLI(t, "sessions", "acme", "--address", addr) || !strings.Contains(paged, "3 live session(s), 2 active user(s)") {
			t.Fatalf("sessions --page-size 1:\n%s", paged)
		}

		// revoke
		out = mustCLI(t, "revoke", "acme", "--session", "a1", "--address", addr)
		if !strings.Contains(out, "revoked 1 session(s)") {
			t.Fatalf("revoke --session: %s", out)
		}
		out = mustCLI(t, "revoke", "acme", "--others", session.HashID("b2"), "--address", addr, "--json")
		if strings.TrimSpace(strings.Join(strings.Fields(out), "")) != `{"revoked":1}` {
			t.Fatalf("revoke --others --json: %s", out)
		}
		out = mustCLI(t, "revoke", "acme", "--user", "bob", "--address", addr)
		if !strings.Contains(out, "revoked 1 session(s)") {
			t.Fatalf("revoke --user: %s", out)
		}
		out = mustCLI(t, "revoke", "acme", "--all", "--address", addr)
		if !strings.Contains(out, "revoked 0 session(s)") {
			t.Fatalf("revoke --all: %s", out)
		}
		if _, err := cli(t, "revoke", "acme", "--all", "--user", "bob", "--address", addr); err == nil {
			t.Fatal("two scopes accepted")
		}

		// audit
		out = mustCLI(t, "audit", "acme", "--limit", "2", "--address", addr)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.Contains(lines[1], "sessions.revoke") || !strings.Contains(lines[1], "scope=all") {
			t.Fatalf("audit output:\n%s", out)
		}
		out = mustCLI(t, "audit", "acme", "--address", addr, "--json")
		var av struct {
			Events []struct {
				Type  string `json:"type"`
				Actor string `json:"actor"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(out), &av); err != nil || len(av.Events) != 7 {
			t.Fatalf("audit --json: %v, %d events\n%s", err, len(av.Events), out)
		}
		if last := av.Events[len(av.Events)-1]; last.Type != "policy.update" || last.Actor != "ops-carol" {
			t.Fatalf("oldest event %+v", last)
		}
		if _, err := cli(t, "audit", "acme", "--limit", "0", "--address", addr); err == nil {
			t.Fatal("limit 0 accepted")
		}

		// token: minted from the config's secret, accepted by the gateway
		out = mustCLI(t, "token", "--config", caddyfile, "--sub", "dora", "--acct", "acme", "--role", "owner", "--sid", "tok-1", "--ttl", "2h")
		tk := strings.TrimSpace(out)
		e.Clock.Set(time.Now().Add(2 * time.Second))
		e.wantGet(t, tk, 200, "")
		if r := e.ownerDo(t, "GET", "account", tk, ""); r.StatusCode != 200 {
			t.Fatalf("owner token: %d %s", r.StatusCode, r.Body)
		}
		if sv := e.sessions(t, "acme"); len(sv.Sessions) != 1 || sv.Sessions[0].Hash != session.HashID("tok-1") {
			t.Fatalf("token session %+v", sv)
		}
	})
}

func TestTokenCommandSecretFromEnv(t *testing.T) {
	const envSecret = "fedcba9876543210fedcba9876543210"
	t.Setenv("SG_TEST_SECRET", envSecret)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	cfg := strings.ReplaceAll(site, "{SITE}", "http://127.0.0.1:8080")
	cfg = strings.ReplaceAll(cfg, "{UPSTREAM}", "127.0.0.1:8081")
	cfg = strings.ReplaceAll(cfg, secret, "{env.SG_TEST_SECRET}")
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "token", "--config", caddyfile, "--sub", "alice", "--acct", "acme", "--role", "owner", "--name", "Alice", "--email", "a@example.com", "--json")
	var res struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(res.Token, claims, func(*jwt.Token) (any, error) { return []byte(envSecret), nil }, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("token does not verify with the env secret: %v", err)
	}
	for k, v := range map[string]string{"sub": "alice", "acct": "acme", "role": "owner", "name": "Alice", "email": "a@example.com"} {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %s", k, claims[k], v)
		}
	}
	if sid, _ := claims["sid"].(string); sid == "" {
		t.Error("no sid")
	}
	if d := time.Until(res.ExpiresAt); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expires in %s, want 1h", d)
	}

	// no session_guard handler, or an unset variable: a clear error
	os.Setenv("SG_TEST_SECRET", "")
	if _, err := cli(t, "token", "--config", caddyfile, "--sub", "alice"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty secret: %v", err)
	}
	plain := filepath.Join(dir, "plain.caddyfile")
	if err := os.WriteFile(plain, []byte("http://127.0.0.1:8080 {\n\trespond ok\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "token", "--config", plain, "--adapter", "caddyfile", "--sub", "alice"); err == nil || !strings.Contains(err.Error(), "no session_guard handler") {
		t.Fatalf("no handler: %v", err)
	}
	if _, err := cli(t, "token", "--config", caddyfile); err == nil {
		t.Fatal("token without --sub succeeded")
	}
}

// TestCommandSessionLimit: the CLI sets, shows and clears the session
// limit, the gateway enforces what it set, and sessions shows each
// user's count against the limit.
func TestCommandSessionLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, b backend) {
		e := start(t, b)
		addr := strings.TrimPrefix(e.Admin, "http://")
		out := mustCLI(t, "policy", "set", "acme", "--max-sessions", "2", "--on-limit", "deny", "--address", addr)
		for _, want := range []string{"SESSIONS PER USER", "max", "2", "on_limit", "deny", "1..unlimited"} {
			if !strings.Contains(out, want) {
				t.Errorf("policy set output lacks %q:\n%s", want, out)
			}
		}
		e.wantGet(t, e.mint(t, tok{sid: "a1", user: "alice", acct: "acme"}), 200, "")
		e.wantGet(t, e.mint(t, tok{sid: "a2", user: "alice", acct: "acme"}), 200, "")
		e.wantGet(t, e.mint(t, tok{sid: "a3", user: "alice", acct: "acme"}), 403, "session_limit_reached")
		if out := mustCLI(t, "sessions", "acme", "--address", addr); !strings.Contains(out, "2/2") {
			t.Fatalf("sessions output lacks 2/2:\n%s", out)
		}
		if out, err := cli(t, "policy", "set", "acme", "--on-limit", "kick", "--address", addr); err == nil || !strings.Contains(err.Error(), "422") {
			t.Fatalf("bad on-limit: %v\n%s", err, out)
		}
		if _, err := cli(t, "policy", "set", "acme", "--max-sessions", "3", "--clear-max-sessions", "--address", addr); err == nil {
			t.Fatal("--max-sessions with --clear-max-sessions succeeded")
		}
		out = mustCLI(t, "policy", "set", "acme", "--clear-max-sessions", "--clear-on-limit", "--address", addr)
		if !strings.Contains(out, "unlimited") || !strings.Contains(out, "evict_oldest") {
			t.Fatalf("after clearing:\n%s", out)
		}
		e.wantGet(t, e.mint(t, tok{sid: "a3", user: "alice", acct: "acme"}), 200, "")
	})
}
