package resilience

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// raw builds a JWT from header and claims, signed with HS256 and key
// (no signature when key is nil).
func raw(header, claims map[string]any, key []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	s := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if key == nil {
		return s + "."
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// snapshot returns every key of the Redis store with its DUMP.
func snapshot(t testing.TB, srv *testredis.Server) map[string]string {
	c := srv.Client(t)
	ctx := context.Background()
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	out := map[string]string{}
	for _, k := range keys {
		if strings.Contains(k, ":{%7Egw}:") {
			continue // the gateways' cache leases change on their own
		}
		v, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// TestHostileInput sends hostile tokens and admin bodies through a real
// Caddy on Redis. Each case gets the contract's error and leaves every
// key in Redis byte-for-byte unchanged.
func TestHostileInput(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 500ms"), site, t0)
	now := g.Clock.Now()
	good := func(extra map[string]any) map[string]any {
		c := map[string]any{"sid": "h-1", "sub": "alice", "acct": "acme", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"iss": "https://idp.example", "aud": "app"}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	key := []byte(secret)
	valid := raw(hs, good(nil), key)
	parts := strings.Split(valid, ".")
	tamperedClaims, _ := json.Marshal(good(map[string]any{"acct": "globex"}))
	// Seed: one live session, an override and an audit event.
	wantCode(t, g.Do(t, "GET", "/", valid, nil), 200)
	wantCode(t, g.AdminDo(t, "PATCH", "/session_guard/accounts/acme/policy", []byte(`{"idle_minutes":30}`)), 200)

	type tc struct {
		name   string
		bearer string
		codes  []int
	}
	cases := []tc{
		{"alg none", raw(map[string]any{"alg": "none"}, good(map[string]any{"sid": "x1"}), nil), []int{401}},
		{"alg None", raw(map[string]any{"alg": "None"}, good(map[string]any{"sid": "x2"}), nil), []int{401}},
		{"missing alg", raw(map[string]any{"typ": "JWT"}, good(map[string]any{"sid": "x3"}), key), []int{401}},
		{"RS256 header, HMAC with the secret", raw(map[string]any{"alg": "RS256"}, good(map[string]any{"sid": "x4"}), key), []int{401}},
		{"kid injection, forged", raw(map[string]any{"alg": "HS256", "kid": "../../../dev/null' OR 1=1"}, good(map[string]any{"sid": "x5"}), []byte("attacker-key-attacker-key-attack")), []int{401}},
		{"embedded jwk", raw(map[string]any{"alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": base64.RawURLEncoding.EncodeToString([]byte("attacker-key-attacker-key-attack"))}}, good(map[string]any{"sid": "x6"}), []byte("attacker-key-attacker-key-attack")), []int{401}},
		{"jku", raw(map[string]any{"alg": "HS256", "jku": "http://127.0.0.1:1/jwks"}, good(map[string]any{"sid": "x7"}), []byte("attacker-key-attacker-key-attack")), []int{401}},
		{"payload tampered", parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedClaims) + "." + parts[2], []int{401}},
		{"exp missing", raw(hs, good(map[string]any{"sid": "x8", "exp": nil}), key), []int{401}},
		{"exp negative", raw(hs, good(map[string]any{"sid": "x9", "exp": -1}), key), []int{401}},
		{"exp past float", raw(hs, good(map[string]any{"sid": "x10", "exp": float64(now.Unix()) - 0.5}), key), []int{401}},
		{"exp string", raw(hs, good(map[string]any{"sid": "x11", "exp": "9999999999"}), key), []int{401}},
		{"nbf in the future", raw(hs, good(map[string]any{"sid": "x12", "nbf": now.Add(time.Hour).Unix()}), key), []int{401}},
		{"iat in the future", raw(hs, good(map[string]any{"sid": "x20", "iat": now.Add(time.Hour).Unix()}), key), []int{401}},
		{"iat a second in the future", raw(hs, good(map[string]any{"sid": "x21", "iat": now.Add(time.Second).Unix()}), key), []int{401}},
		{"iat in the future, auth_time past", raw(hs, good(map[string]any{"sid": "x22", "auth_time": now.Add(-time.Hour).Unix(), "iat": now.Add(time.Hour).Unix()}), key), []int{401}},
		{"wrong iss", raw(hs, good(map[string]any{"sid": "x13", "iss": "https://evil.example"}), key), []int{401}},
		{"wrong aud", raw(hs, good(map[string]any{"sid": "x14", "aud": "other"}), key), []int{401}},
		{"exp huge", raw(hs, good(map[string]any{"sid": "x15", "exp": 1e300}), key), []int{401}},
		{"typ not JWT", raw(map[string]any{"alg": "HS256", "typ": "evil"}, good(map[string]any{"sid": "x16"}), key), []int{401}},
		{"CR LF in sub", raw(hs, good(map[string]any{"sid": "x17", "sub": "a\r\nSet-Cookie: x=1"}), key), []int{401}},
		{"NUL in acct", raw(hs, good(map[string]any{"sid": "x18", "acct": "ac\x00me"}), key), []int{401}},
		{"NUL in sid", raw(hs, good(map[string]any{"sid": "x19\x00"}), key), []int{401}},
		{"three segments of garbage", "a.b.c", []int{401}},
		{"1 MB of dots", strings.Repeat(".", 1<<20), []int{401, 431}},
	}
	before := snapshot(t, srv)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := g.Do(t, "GET", "/", c.bearer, nil)
			if !slices.Contains(c.codes, r.StatusCode) {
				t.Fatalf("status %d, want one of %v; body %s", r.StatusCode, c.codes, r.Body)
			}
			if r.StatusCode == 401 && !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("challenge %q", r.Header.Get("WWW-Authenticate"))
			}
			t.Logf("%s: %d", c.name, r.StatusCode)
		})
	}

	// Admin API: bad values, bodies and fields.
	admin := []struct {
		name, body string
		codes      []int
	}{
		{"idle -5", `{"idle_minutes":-5}`, []int{422}},
		{"idle 0", `{"idle_minutes":0}`, []int{422}},
		{"idle 1.5", `{"idle_minutes":1.5}`, []int{422}},
		{`idle "30"`, `{"idle_minutes":"30"}`, []int{400, 422}},
		{"idle 1e18", `{"idle_minutes":1e18}`, []int{422}},
		{"unknown field", `{"idle_minutes":30,"admin":true}`, []int{400}},
		{"deeply nested", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), []int{400}},
		{"oversized", `{"idle_minutes":30,"x":"` + strings.Repeat("a", 70<<10) + `"}`, []int{413}},
		{"not an object", `[1,2,3]`, []int{400}},
	}
	for _, c := range admin {
		t.Run("admin "+c.name, func(t *testing.T) {
			r := g.AdminDo(t, "PATCH", "/session_guard/accounts/acme/policy", []byte(c.body))
			if !slices.Contains(c.codes, r.StatusCode) {
				t.Fatalf("status %d, want one of %v; body %.200s", r.StatusCode, c.codes, r.Body)
			}
		})
	}
	r := g.AdminDo(t, "PATCH", "/session_guard/accounts/acme/policy", []byte(`{"idle_minutes":30}`), "Content-Type", "text/plain")
	wantCode(t, r, 415)

	after := snapshot(t, srv)
	if len(after) != len(before) {
		t.Errorf("store keys: %d before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("key %q changed", k)
		}
	}
	// Owner endpoints: a role that only looks like owner is refused (an
	// array holding "owner" exactly is an owner, per the contract).
	for _, role := range []any{"Owner", []string{"Owner", "owner "}, "owner ", []any{"owner", 1}, map[string]any{"owner": true}} {
		tok := raw(hs, good(map[string]any{"sid": fmt.Sprintf("role-%v", role), "role": role}), key)
		r := g.Do(t, "PATCH", "/.session/account/policy", tok, strings.NewReader(`{"idle_minutes":60}`), "Content-Type", "application/json")
		if r.StatusCode != 403 && r.StatusCode != 401 {
			t.Errorf("role %#v: status %d, want 403 (or 401 for a non-string role)", role, r.StatusCode)
		}
	}
	// A refused owner changed no policy.
	r = g.AdminDo(t, "GET", "/session_guard/accounts/acme/policy", nil)
	if !strings.Contains(string(r.Body), `"idle_minutes":30`) {
		t.Errorf("policy after refused owner calls: %s", r.Body)
	}
	t.Logf("FIGURE hostile: %d token cases, %d admin cases, store keys before %d after %d", len(cases), len(admin)+1, len(before), len(after))
}

// TestAccountIDsDoNotCollide revokes accounts whose ids contain the
// characters of Redis hash tags and glob patterns, and look-alikes:
// sessions of every other account stay valid.
func TestAccountIDsDoNotCollide(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 500ms"), site, t0)
	ids := []string{"acme", "acme*", "*", "a{cme}", "{acme}", "acme:x", "acme}", "аcme" /* Cyrillic а */, "ａcme" /* fullwidth */, "ACME"}
	toks := map[string]string{}
	for _, id := range ids {
		toks[id] = mint(t, g.Clock.Now().Add(-time.Second), "sess-"+id, id, nil)
		wantCode(t, g.Do(t, "GET", "/", toks[id], nil), 200)
	}
	for i, victim := range ids {
		r := g.AdminDo(t, "POST", "/session_guard/accounts/"+urlPath(victim)+"/revoke", []byte(`{"scope":"all"}`))
		wantCode(t, r, 200)
		if !strings.Contains(string(r.Body), `"revoked":1`) {
			t.Fatalf("revoke %q: %s", victim, r.Body)
		}
		for j, id := range ids {
			r := g.Do(t, "GET", "/", toks[id], nil)
			if j <= i {
				wantError(t, r, 401, "session_revoked")
			} else if r.StatusCode != 200 {
				t.Fatalf("revoking %q ended %q: %d %s", victim, id, r.StatusCode, r.Body)
			}
		}
	}
}

// TestHostileTokenPlaces: a token in both the header and the cookie, or
// a duplicated cookie, is 400 invalid_request and changes nothing.
func TestHostileTokenPlaces(t *testing.T) {
	srv := testredis.Start(t)
	twoPlaces := strings.Replace(site, "session_guard {", "session_guard {\n\t\ttoken header Authorization Bearer\n\t\ttoken cookie sg", 1)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 500ms"), twoPlaces, t0)
	tok := mint(t, g.Clock.Now(), "place-1", "acme", nil)
	other := mint(t, g.Clock.Now(), "place-2", "acme", nil)
	before := snapshot(t, srv)
	for name, r := range map[string]*gatewaytest.Response{
		"header and cookie":  g.Do(t, "GET", "/", tok, nil, "Cookie", "sg="+tok),
		"duplicate cookie":   g.Do(t, "GET", "/", "", nil, "Cookie", "sg="+tok+"; sg="+other),
		"two Cookie headers": g.Do(t, "GET", "/", "", nil, "Cookie", "sg="+tok, "Cookie", "sg="+other),
	} {
		if r.StatusCode != 400 || !strings.Contains(string(r.Body), `"invalid_request"`) {
			t.Errorf("%s: %d %s, want 400 invalid_request", name, r.StatusCode, r.Body)
		}
	}
	after := snapshot(t, srv)
	if len(after) != len(before) {
		t.Fatalf("store keys: %d before, %d after", len(before), len(after))
	}
	wantCode(t, g.Do(t, "GET", "/", "", nil, "Cookie", "sg="+tok), 200)
}
