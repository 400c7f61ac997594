package caddymodule_test

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/devtoken"
)

// TestAlgorithmAllowlist: with alg HS256 configured, a token signed with
// the right secret under another HMAC algorithm is refused at the
// gateway, before any session work.
func TestAlgorithmAllowlist(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		now := e.Clock.Now()
		claims := jwt.MapClaims{"sid": "s-alg", "sub": "alice", "acct": "acme", "iss": "https://idp.example", "aud": "app",
			"iat": now.Unix(), "auth_time": now.Unix(), "exp": now.Unix() + 3600}
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
			tok, err := jwt.NewWithClaims(m, claims).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			r := e.Do(t, "GET", "/", tok, nil)
			if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s token: status %d, challenge %q", m.Alg(), r.StatusCode, r.Header.Get("WWW-Authenticate"))
			}
		}
		if _, hits := e.Upstream.Last(); hits != 0 {
			t.Fatalf("%d tokens of a disallowed algorithm reached the upstream", hits)
		}
		// the same claims under the allowed algorithm pass
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
	})
}

// TestOwnerRoleRequired: the owner endpoints answer 403 to a valid
// session whose role is not in owner_roles (exact match), change
// nothing for it, and serve a session whose role is.
func TestOwnerRoleRequired(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		owner := e.mint(t, devtoken.Claims{Session: "o1", Role: "owner"})
		wantCode(t, e.Do(t, "GET", "/", owner, nil), 200)
		for _, role := range []string{"member", "Owner", ""} {
			tok := e.mint(t, devtoken.Claims{Session: "m-" + role, User: "mallory", Role: role})
			wantCode(t, e.Do(t, "GET", "/.session/account", tok, nil), 403)
			wantCode(t, e.Do(t, "PATCH", "/.session/account/policy", tok, strings.NewReader(`{"idle_minutes":30}`), "Content-Type", "application/json"), 403)
			wantCode(t, e.Do(t, "POST", "/.session/account/revoke", tok, strings.NewReader(`{"scope":"all"}`), "Content-Type", "application/json"), 403)
		}
		// nothing changed: the owner's session lives, the policy is the default
		r := e.Do(t, "GET", "/.session/account", owner, nil)
		wantCode(t, r, 200)
		var acct struct {
			Override map[string]any `json:"override"`
		}
		r.JSON(t, &acct)
		if acct.Override["idle_minutes"] != nil {
			t.Fatalf("a non-owner changed the policy: %s", r.Body)
		}
	})
}
