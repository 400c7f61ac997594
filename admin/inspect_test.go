package admin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
)

func TestInspectCommand(t *testing.T) {
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	cfg := `http://127.0.0.1:8080 {
	session_guard {
		jwt {
			alg HS256
			secret ` + secret + `
			issuer https://idp.example
		}
		claims {
			account ext.acct
			role realm_access.roles
		}
	}
	respond ok
}
`
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	mint := func(iss string) string {
		tok, err := devtoken.Mint([]byte(secret), devtoken.Claims{Session: "s1", User: "alice", Now: time.Now(),
			Extra: map[string]any{"iss": iss, "ext": map[string]any{"acct": "acme"}, "realm_access": map[string]any{"roles": []string{"member", "owner"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint("https://idp.example")
	out := mustCLI(t, "inspect", "--config", caddyfile, good)
	for _, want := range []string{"header:     alg HS256", "verify:     ok", "user:       alice", "account:    acme", "roles:      member, owner"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	bad := mint("https://evil.example")
	out, err := cli(t, "inspect", "--config", caddyfile, bad)
	if err == nil || !strings.Contains(out, "iss expected https://idp.example, received https://evil.example") {
		t.Errorf("wrong issuer: err %v\n%s", err, out)
	}
	for _, tok := range []string{good, bad} {
		if strings.Contains(out, tok) || strings.Contains(mustCLIOrOut(t, caddyfile, tok), tok) {
			t.Error("inspect printed the token")
		}
	}
}

func mustCLIOrOut(t *testing.T, caddyfile, tok string) string {
	out, _ := cli(t, "inspect", "--config", caddyfile, tok)
	return out
}
