package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/session"
)

func TestVerify(t *testing.T) {
	k := testKeys(t)
	hs := Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow}
	rs := Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey}, Now: fixedNow}
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	hs256 := func(payload string) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, jwt.SigningMethodHS256, testSecret, nil, payload) }
	}
	hsHeader := func(header map[string]any, payload string) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, jwt.SigningMethodHS256, testSecret, header, payload) }
	}
	raw := func(s string) func(t *testing.T) string { return func(*testing.T) string { return s } }
	attackerJWK := jwkOf(&k.rsa2.PublicKey, "")
	delete(attackerJWK, "kid")

	tests := []struct {
		name    string
		cfg     Config
		token   func(t *testing.T) string
		wantErr error  // nil: must verify
		wantMsg string // substring of the error message
		check   func(t *testing.T, id *Identity)
	}{
		// Algorithms.
		{name: "HS256", cfg: hs, token: hs256(claims(nil)), check: func(t *testing.T, id *Identity) {
			if id.SessionID != "s1" || id.UserID != "u1" || id.AccountID != "a1" || id.Role != "" || id.Roles != nil {
				t.Errorf("identity = %+v", id)
			}
			if !id.ExpiresAt.Equal(testNow.Add(time.Hour)) || !id.LoginAt.Equal(testNow.Add(-time.Minute)) {
				t.Errorf("times = %v %v", id.ExpiresAt, id.LoginAt)
			}
			if id.Idle != 0 || id.Absolute != 0 {
				t.Errorf("timeouts = %v %v", id.Idle, id.Absolute)
			}
		}},
		{name: "HS384", cfg: with(hs, func(c *Config) { c.Algorithms = []string{"HS384"} }),
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodHS384, testSecret, nil, claims(nil)) }},
		{name: "HS512", cfg: with(hs, func(c *Config) { c.Algorithms = []string{"HS512"} }),
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodHS512, testSecret, nil, claims(nil)) }},
		{name: "RS256", cfg: rs,
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodRS256, k.rsa, nil, claims(nil)) }},
		{name: "PS256", cfg: with(rs, func(c *Config) { c.Algorithms = []string{"PS256"} }),
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodPS256, k.rsa, nil, claims(nil)) }},
		{name: "ES256", cfg: Config{Algorithms: []string{"ES256"}, PublicKeys: []crypto.PublicKey{&k.ec.PublicKey}, Now: fixedNow},
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodES256, k.ec, nil, claims(nil)) }},
		{name: "EdDSA", cfg: Config{Algorithms: []string{"EdDSA"}, PublicKeys: []crypto.PublicKey{k.edPublic}, Now: fixedNow},
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodEdDSA, k.ed, nil, claims(nil)) }},
		{name: "several static keys, second matches",
			cfg:   Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&k.rsa2.PublicKey, &k.rsa.PublicKey}, Now: fixedNow},
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodRS256, k.rsa, nil, claims(nil)) }},
		{name: "mixed key types, ES256", cfg: Config{Algorithms: []string{"RS256", "ES256", "ES384"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec384.PublicKey, &k.ec.PublicKey}, Now: fixedNow},
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodES256, k.ec, nil, claims(nil)) }},
		{name: "mixed key types, ES384", cfg: Config{Algorithms: []string{"RS256", "ES256", "ES384"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec384.PublicKey, &k.ec.PublicKey}, Now: fixedNow},
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodES384, k.ec384, nil, claims(nil)) }},
		{name: "mixed key types, RS256", cfg: Config{Algorithms: []string{"RS256", "ES256", "ES384"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec384.PublicKey, &k.ec.PublicKey}, Now: fixedNow},
			token: func(t *testing.T) string { return mint(t, jwt.SigningMethodRS256, k.rsa, nil, claims(nil)) }},
		{name: "alg none", cfg: hs, token: raw(unsigned(`{"alg":"none","typ":"JWT"}`, claims(nil), []byte("x"))),
			wantErr: ErrInvalid, wantMsg: "unsigned"},
		{name: "alg None", cfg: hs, token: raw(unsigned(`{"alg":"None"}`, claims(nil), []byte("x"))),
			wantErr: ErrInvalid, wantMsg: "unsigned"},
		{name: "alg none with empty signature", cfg: hs, token: raw(unsigned(`{"alg":"none"}`, claims(nil), nil)),
			wantErr: ErrMalformed},
		{name: "missing alg", cfg: hs, token: hsHeader(map[string]any{"alg": nil}, claims(nil)),
			wantErr: ErrInvalid, wantMsg: "no algorithm"},
		{name: "alg not a string", cfg: hs, token: raw(unsigned(`{"alg":["HS256"]}`, claims(nil), []byte("x"))),
			wantErr: ErrInvalid, wantMsg: "no algorithm"},
		{name: "alg not in allowlist", cfg: hs,
			token:   func(t *testing.T) string { return mint(t, jwt.SigningMethodHS384, testSecret, nil, claims(nil)) },
			wantErr: ErrInvalid, wantMsg: "algorithm is not allowed"},
		{name: "RS256 to HS256 confusion, RS256 only", cfg: rs,
			token:   func(t *testing.T) string { return mint(t, jwt.SigningMethodHS256, k.rsaPEM, nil, claims(nil)) },
			wantErr: ErrInvalid, wantMsg: "algorithm is not allowed"},
		{name: "RS256 to HS256 confusion, both allowed",
			cfg:     Config{Algorithms: []string{"RS256", "HS256"}, Secret: testSecret, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey}, Now: fixedNow},
			token:   func(t *testing.T) string { return mint(t, jwt.SigningMethodHS256, k.rsaPEM, nil, claims(nil)) },
			wantErr: ErrInvalid, wantMsg: "signature is invalid"},
		{name: "embedded jwk header is ignored", cfg: rs,
			token: func(t *testing.T) string {
				return mint(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"jwk": attackerJWK, "jku": "https://evil.example/jwks", "x5u": "https://evil.example/x5u"}, claims(nil))
			},
			wantErr: ErrInvalid, wantMsg: "signature is invalid"},

		// Integrity.
		{name: "tampered payload", cfg: hs, token: func(t *testing.T) string {
			tok := mint(t, jwt.SigningMethodHS256, testSecret, nil, claims(nil))
			parts := strings.Split(tok, ".")
			parts[1] = b64url([]byte(claims(map[string]any{"sub": "admin"})))
			return strings.Join(parts, ".")
		}, wantErr: ErrInvalid, wantMsg: "signature is invalid"},
		{name: "tampered signature", cfg: rs, token: func(t *testing.T) string {
			tok := mint(t, jwt.SigningMethodRS256, k.rsa, nil, claims(nil))
			i := strings.LastIndexByte(tok, '.') + 1
			c := byte('A')
			if tok[i] == 'A' {
				c = 'B'
			}
			return tok[:i] + string(c) + tok[i+1:]
		}, wantErr: ErrInvalid, wantMsg: "signature is invalid"},
		{name: "non-canonical base64 signature", cfg: hs, token: func(t *testing.T) string {
			tok := mint(t, jwt.SigningMethodHS256, testSecret, nil, claims(nil))
			// HS256 signatures are 43 chars; the last one carries 2 unused bits.
			last := tok[len(tok)-1]
			alt := map[byte]byte{'A': 'B', 'E': 'F', 'I': 'J', 'M': 'N', 'Q': 'R', 'U': 'V', 'Y': 'Z', 'c': 'd', 'g': 'h', 'k': 'l', 'o': 'p', 's': 't', 'w': 'x', '0': '1', '4': '5', '8': '9'}[last]
			return tok[:len(tok)-1] + string(alt)
		}, wantErr: ErrMalformed},

		// exp.
		{name: "exp missing", cfg: hs, token: hs256(claims(map[string]any{"exp": nil})),
			wantErr: ErrInvalid, wantMsg: "no exp claim"},
		{name: "exp as string", cfg: hs, token: hs256(claims(map[string]any{"exp": "9999999999"})),
			wantErr: ErrInvalid, wantMsg: "exp claim is not a number"},
		{name: "exp null", cfg: hs, token: hs256(claims(map[string]any{"exp": json.RawMessage("null")})),
			wantErr: ErrInvalid, wantMsg: "exp claim is not a number"},
		{name: "exp float in the past", cfg: hs, token: hs256(claims(map[string]any{"exp": json.RawMessage("1.5e9")})),
			wantErr: ErrInvalid, wantMsg: "expired"},
		{name: "exp float valid", cfg: with(hs, func(c *Config) { c.Now = func() time.Time { return time.Unix(1_400_000_000, 0) } }),
			token: hs256(claims(map[string]any{"exp": json.RawMessage("1.5e9"), "iat": 1_399_999_000})),
			check: func(t *testing.T, id *Identity) {
				if !id.ExpiresAt.Equal(time.Unix(1_500_000_000, 0)) {
					t.Errorf("ExpiresAt = %v", id.ExpiresAt)
				}
			}},
		{name: "exp fractional", cfg: hs, token: hs256(claims(map[string]any{"exp": json.RawMessage("1700003600.25")}))},
		{name: "exp huge", cfg: hs, token: hs256(claims(map[string]any{"exp": json.RawMessage("1e300")})),
			wantErr: ErrInvalid, wantMsg: "exp claim is out of range"},
		{name: "exp overflowing float64", cfg: hs, token: hs256(claims(map[string]any{"exp": json.RawMessage("1e400")})),
			wantErr: ErrInvalid, wantMsg: "exp claim is not a number"},
		{name: "exp just past int64 seconds", cfg: hs, token: hs256(claims(map[string]any{"exp": json.RawMessage("9223372036854775808")})),
			wantErr: ErrInvalid, wantMsg: "out of range"},
		{name: "exp negative", cfg: hs, token: hs256(claims(map[string]any{"exp": -1})),
			wantErr: ErrInvalid, wantMsg: "exp claim is out of range"},
		{name: "expired", cfg: hs, token: hs256(claims(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()})),
			wantErr: ErrInvalid, wantMsg: "token is expired"},
		{name: "expired at exactly now", cfg: hs, token: hs256(claims(map[string]any{"exp": testNow.Unix()})),
			wantErr: ErrInvalid, wantMsg: "token is expired"},
		{name: "expired within leeway", cfg: with(hs, func(c *Config) { c.Leeway = 30 * time.Second }),
			token: hs256(claims(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()}))},
		{name: "expired beyond leeway", cfg: with(hs, func(c *Config) { c.Leeway = 5 * time.Second }),
			token:   hs256(claims(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()})),
			wantErr: ErrInvalid, wantMsg: "token is expired"},

		// nbf, iss, aud, typ, header.
		{name: "nbf in the future", cfg: hs, token: hs256(claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()})),
			wantErr: ErrInvalid, wantMsg: "not valid yet"},
		{name: "nbf within leeway", cfg: with(hs, func(c *Config) { c.Leeway = 2 * time.Minute }),
			token: hs256(claims(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}))},
		{name: "nbf as string", cfg: hs, token: hs256(claims(map[string]any{"nbf": "0"})),
			wantErr: ErrInvalid, wantMsg: "nbf claim is not a number"},
		{name: "iat in the future", cfg: hs, token: hs256(claims(map[string]any{"iat": testNow.Add(time.Minute).Unix()})),
			wantErr: ErrInvalid, wantMsg: "issued in the future"},
		{name: "iat one second in the future", cfg: hs, token: hs256(claims(map[string]any{"iat": testNow.Add(time.Second).Unix()})),
			wantErr: ErrInvalid, wantMsg: "issued in the future"},
		{name: "iat in the future with auth_time", cfg: hs,
			token:   hs256(claims(map[string]any{"auth_time": testNow.Add(-time.Hour).Unix(), "iat": testNow.Add(time.Hour).Unix()})),
			wantErr: ErrInvalid, wantMsg: "issued in the future"},
		{name: "iat fractionally in the future", cfg: hs, token: hs256(claims(map[string]any{"iat": json.RawMessage("1700000000.5")})),
			wantErr: ErrInvalid, wantMsg: "issued in the future"},
		{name: "auth_time in the future", cfg: hs, token: hs256(claims(map[string]any{"auth_time": testNow.Add(10 * time.Minute).Unix()})),
			wantErr: ErrInvalid, wantMsg: "login time claim is in the future"},
		{name: "auth_time one second in the future", cfg: hs, token: hs256(claims(map[string]any{"auth_time": testNow.Add(time.Second).Unix()})),
			wantErr: ErrInvalid, wantMsg: "login time claim is in the future"},
		{name: "iat exactly now", cfg: hs, token: hs256(claims(map[string]any{"iat": testNow.Unix()}))},
		{name: "auth_time within leeway", cfg: with(hs, func(c *Config) { c.Leeway = 2 * time.Minute }),
			token: hs256(claims(map[string]any{"auth_time": testNow.Add(2 * time.Minute).Unix()}))},
		{name: "auth_time beyond leeway", cfg: with(hs, func(c *Config) { c.Leeway = 2 * time.Minute }),
			token:   hs256(claims(map[string]any{"auth_time": testNow.Add(2*time.Minute + time.Second).Unix()})),
			wantErr: ErrInvalid, wantMsg: "login time claim is in the future"},
		{name: "iat within leeway", cfg: with(hs, func(c *Config) { c.Leeway = 2 * time.Minute }),
			token: hs256(claims(map[string]any{"iat": testNow.Add(2 * time.Minute).Unix()}))},
		{name: "iat beyond leeway", cfg: with(hs, func(c *Config) { c.Leeway = 2 * time.Minute }),
			token:   hs256(claims(map[string]any{"iat": testNow.Add(2*time.Minute + time.Second).Unix()})),
			wantErr: ErrInvalid, wantMsg: "issued in the future"},
		{name: "iat as string", cfg: hs, token: hs256(claims(map[string]any{"auth_time": testNow.Unix(), "iat": "0"})),
			wantErr: ErrInvalid, wantMsg: "iat claim is not a number"},
		{name: "right iss", cfg: with(hs, func(c *Config) { c.Issuer = "https://idp" }),
			token: hs256(claims(map[string]any{"iss": "https://idp"}))},
		{name: "wrong iss", cfg: with(hs, func(c *Config) { c.Issuer = "https://idp" }),
			token: hs256(claims(map[string]any{"iss": "https://evil"})), wantErr: ErrInvalid, wantMsg: "issuer"},
		{name: "missing iss", cfg: with(hs, func(c *Config) { c.Issuer = "https://idp" }),
			token: hs256(claims(nil)), wantErr: ErrInvalid, wantMsg: "no iss claim"},
		{name: "iss not a string", cfg: with(hs, func(c *Config) { c.Issuer = "https://idp" }),
			token: hs256(claims(map[string]any{"iss": []string{"https://idp"}})), wantErr: ErrInvalid, wantMsg: "iss claim is not a string"},
		{name: "right aud in array", cfg: with(hs, func(c *Config) { c.Audience = "app" }),
			token: hs256(claims(map[string]any{"aud": []string{"other", "app"}}))},
		{name: "wrong aud", cfg: with(hs, func(c *Config) { c.Audience = "app" }),
			token: hs256(claims(map[string]any{"aud": "other"})), wantErr: ErrInvalid, wantMsg: "audience"},
		{name: "missing aud", cfg: with(hs, func(c *Config) { c.Audience = "app" }),
			token: hs256(claims(nil)), wantErr: ErrInvalid, wantMsg: "no aud claim"},
		{name: "aud with a number", cfg: with(hs, func(c *Config) { c.Audience = "app" }),
			token: hs256(claims(map[string]any{"aud": []any{"app", 1}})), wantErr: ErrInvalid, wantMsg: "aud claim"},
		{name: "typ JWE", cfg: hs, token: hsHeader(map[string]any{"typ": "JWE"}, claims(nil)),
			wantErr: ErrInvalid, wantMsg: "type"},
		{name: "typ number", cfg: hs, token: hsHeader(map[string]any{"typ": 1}, claims(nil)),
			wantErr: ErrInvalid, wantMsg: "type"},
		{name: "typ at+jwt", cfg: hs, token: hsHeader(map[string]any{"typ": "at+JWT"}, claims(nil))},
		{name: "typ application/jwt", cfg: hs, token: hsHeader(map[string]any{"typ": "application/jwt"}, claims(nil))},
		{name: "typ absent", cfg: hs, token: hsHeader(map[string]any{"typ": nil}, claims(nil))},
		{name: "crit header", cfg: hs, token: hsHeader(map[string]any{"crit": []string{"b64"}, "b64": false}, claims(nil)),
			wantErr: ErrInvalid, wantMsg: "critical"},
		{name: "kid not a string", cfg: hs, token: hsHeader(map[string]any{"kid": 7}, claims(nil)),
			wantErr: ErrInvalid, wantMsg: "kid"},
		{name: "kid too long", cfg: hs, token: hsHeader(map[string]any{"kid": strings.Repeat("k", 300)}, claims(nil)),
			wantErr: ErrInvalid, wantMsg: "kid"},
		{name: "kid path with static keys", cfg: rs,
			token: func(t *testing.T) string {
				return mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "../../etc/passwd"}, claims(nil))
			}},

		// Shape.
		{name: "empty", cfg: hs, token: raw(""), wantErr: ErrMalformed},
		{name: "1 MB of dots", cfg: hs, token: raw(strings.Repeat(".", 1<<20)), wantErr: ErrMalformed, wantMsg: "longer than 8192"},
		{name: "max length", cfg: with(hs, func(c *Config) { c.MaxLength = 100 }), token: hs256(claims(nil)),
			wantErr: ErrMalformed, wantMsg: "longer than 100"},
		{name: "two segments", cfg: hs, token: raw("abcd.abcd"), wantErr: ErrMalformed},
		{name: "four segments", cfg: hs, token: raw("abcd.abcd.abcd.abcd"), wantErr: ErrMalformed},
		{name: "empty segment", cfg: hs, token: raw("abcd..abcd"), wantErr: ErrMalformed},
		{name: "padding", cfg: hs, token: raw("abc=.abcd.abcd"), wantErr: ErrMalformed},
		{name: "standard base64", cfg: hs, token: raw("ab+/.abcd.abcd"), wantErr: ErrMalformed},
		{name: "impossible segment length", cfg: hs, token: raw("abcde.abcd.abcd"), wantErr: ErrMalformed},
		{name: "header not JSON", cfg: hs, token: raw(unsigned("not json", claims(nil), []byte("x"))), wantErr: ErrMalformed},
		{name: "payload not JSON", cfg: hs, token: hs256("not json"), wantErr: ErrMalformed},
		{name: "payload array", cfg: hs, token: hs256("[1,2]"), wantErr: ErrMalformed},
		{name: "payload null", cfg: hs, token: hs256("null"), wantErr: ErrInvalid},

		// sessionguard claims.
		{name: "missing sid", cfg: hs, token: hs256(claims(map[string]any{"sid": nil})),
			wantErr: ErrInvalid, wantMsg: `token has no session claim "sid"`},
		{name: "empty sid", cfg: hs, token: hs256(claims(map[string]any{"sid": ""})),
			wantErr: ErrInvalid, wantMsg: `token has no session claim "sid"`},
		{name: "sid not a string", cfg: hs, token: hs256(claims(map[string]any{"sid": 12})),
			wantErr: ErrInvalid, wantMsg: `session claim "sid" is not a string`},
		{name: "missing sub", cfg: hs, token: hs256(claims(map[string]any{"sub": nil})),
			wantErr: ErrInvalid, wantMsg: `token has no user claim "sub"`},
		{name: "custom claim names", cfg: with(hs, func(c *Config) {
			c.Claims = ClaimMap{Session: "session_id", User: "uid", Account: "tenant", Role: "r", Name: "n", Email: "e", Login: "login"}
		}), token: hs256(claims(map[string]any{"sid": nil, "sub": nil, "session_id": "S", "uid": "U", "tenant": "T", "r": "admin", "n": "Ann", "e": "a@x", "login": testNow.Add(-time.Hour).Unix()})),
			check: func(t *testing.T, id *Identity) {
				want := Identity{SessionID: "S", SessionHash: session.HashID("S"), UserID: "U", AccountID: "T", Roles: []string{"admin"}, Role: "admin", Name: "Ann", Email: "a@x",
					LoginAt: testNow.Add(-time.Hour), ExpiresAt: testNow.Add(time.Hour), IssuedAt: testNow.Add(-time.Minute)}
				if !reflect.DeepEqual(*id, want) {
					t.Errorf("identity = %+v, want %+v", id, want)
				}
			}},
		{name: "role as array", cfg: hs, token: hs256(claims(map[string]any{"role": []string{"member", "owner"}})),
			check: func(t *testing.T, id *Identity) {
				if id.Role != "member, owner" || !slices.Equal(id.Roles, []string{"member", "owner"}) {
					t.Errorf("Role = %q, Roles = %q", id.Role, id.Roles)
				}
				if !id.HasRole(map[string]struct{}{"owner": {}}) || id.HasRole(map[string]struct{}{"member, owner": {}}) {
					t.Errorf("HasRole on %q", id.Roles)
				}
			}},
		{name: "role array with a non-string", cfg: hs, token: hs256(claims(map[string]any{"role": []any{"owner", 1}})),
			check: func(t *testing.T, id *Identity) {
				if id.Role != "" || id.Roles != nil {
					t.Errorf("Role = %q, want none", id.Role)
				}
			}},
		{name: "role as object", cfg: hs, token: hs256(claims(map[string]any{"role": map[string]any{"owner": true}})),
			check: func(t *testing.T, id *Identity) {
				if id.Role != "" {
					t.Errorf("Role = %q, want none", id.Role)
				}
			}},
		{name: "LF in role array", cfg: hs, token: hs256(claims(map[string]any{"role": []string{"a", "b\n"}})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "role as string", cfg: hs, token: hs256(claims(map[string]any{"role": "owner", "name": "Ann", "email": "ann@example.com"})),
			check: func(t *testing.T, id *Identity) {
				if id.Role != "owner" || id.Name != "Ann" || id.Email != "ann@example.com" {
					t.Errorf("identity = %+v", id)
				}
			}},
		{name: "name not a string", cfg: hs, token: hs256(claims(map[string]any{"name": map[string]any{"first": "Ann"}})),
			check: func(t *testing.T, id *Identity) {
				if id.Name != "" {
					t.Errorf("Name = %q", id.Name)
				}
			}},
		{name: "CR in sid", cfg: hs, token: hs256(claims(map[string]any{"sid": "s1\rx"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "LF in sub", cfg: hs, token: hs256(claims(map[string]any{"sub": "u1\nSet-Cookie: x"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "NUL in account", cfg: hs, token: hs256(claims(map[string]any{"acct": "a\x00b"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "LF in role", cfg: hs, token: hs256(claims(map[string]any{"role": "admin\n"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "CR in name", cfg: hs, token: hs256(claims(map[string]any{"name": "Ann\r"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "LF in email", cfg: hs, token: hs256(claims(map[string]any{"email": "a@x\n"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "SOH in sub", cfg: hs, token: hs256(claims(map[string]any{"sub": "al\u0001ice"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "ESC in account", cfg: hs, token: hs256(claims(map[string]any{"acct": "ac\u001b[31mme"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "DEL in role", cfg: hs, token: hs256(claims(map[string]any{"role": "own\u007fer"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "VT in name", cfg: hs, token: hs256(claims(map[string]any{"name": "Ann\u000b"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "TAB in email", cfg: hs, token: hs256(claims(map[string]any{"email": "a@x\t"})), wantErr: ErrInvalid, wantMsg: "forbidden character"},
		{name: "sid too long", cfg: hs, token: hs256(claims(map[string]any{"sid": strings.Repeat("s", 257)})), wantErr: ErrInvalid, wantMsg: "longer than 256"},
		{name: "sid of 256 bytes", cfg: hs, token: hs256(claims(map[string]any{"sid": strings.Repeat("s", 256)}))},
		{name: "account missing", cfg: hs, token: hs256(claims(map[string]any{"acct": nil})),
			wantErr: ErrInvalid, wantMsg: `token has no account claim "acct"`},
		{name: "account empty", cfg: hs, token: hs256(claims(map[string]any{"acct": ""})),
			wantErr: ErrInvalid, wantMsg: `token has no account claim "acct"`},
		{name: "account null", cfg: hs, token: hs256(claims(map[string]any{"acct": json.RawMessage("null")})),
			wantErr: ErrInvalid, wantMsg: `token has no account claim "acct"`},
		{name: "account not a string", cfg: hs, token: hs256(claims(map[string]any{"acct": 7})),
			wantErr: ErrInvalid, wantMsg: `account claim "acct" is not a string`},
		{name: "default_account", cfg: with(hs, func(c *Config) { c.Claims.DefaultAccount = "solo" }), token: hs256(claims(map[string]any{"acct": nil})),
			check: func(t *testing.T, id *Identity) {
				if id.AccountID != "solo" {
					t.Errorf("AccountID = %q", id.AccountID)
				}
			}},
		{name: "default_account, empty claim", cfg: with(hs, func(c *Config) { c.Claims.DefaultAccount = "solo" }), token: hs256(claims(map[string]any{"acct": ""})),
			wantErr: ErrInvalid, wantMsg: `token has no account claim "acct"`},
		{name: "account opaque", cfg: hs, token: hs256(claims(map[string]any{"acct": "{a}:*ü"})),
			check: func(t *testing.T, id *Identity) {
				if id.AccountID != "{a}:*ü" {
					t.Errorf("AccountID = %q", id.AccountID)
				}
			}},
		{name: "account not a string", cfg: hs, token: hs256(claims(map[string]any{"acct": 42})),
			wantErr: ErrInvalid, wantMsg: `account claim "acct" is not a string`},
		{name: "auth_time preferred", cfg: hs, token: hs256(claims(map[string]any{"auth_time": testNow.Add(-time.Hour).Unix()})),
			check: func(t *testing.T, id *Identity) {
				if !id.LoginAt.Equal(testNow.Add(-time.Hour)) {
					t.Errorf("LoginAt = %v", id.LoginAt)
				}
			}},
		{name: "login falls back to iat", cfg: hs, token: hs256(claims(nil)),
			check: func(t *testing.T, id *Identity) {
				if !id.LoginAt.Equal(testNow.Add(-time.Minute)) {
					t.Errorf("LoginAt = %v", id.LoginAt)
				}
			}},
		{name: "no login time", cfg: hs, token: hs256(claims(map[string]any{"iat": nil})),
			wantErr: ErrInvalid, wantMsg: "no login time"},
		{name: "auth_time as string", cfg: hs, token: hs256(claims(map[string]any{"auth_time": "1700000000"})),
			wantErr: ErrInvalid, wantMsg: "auth_time claim is not a number"},
		{name: "iat huge", cfg: hs, token: hs256(claims(map[string]any{"iat": json.RawMessage("1e300")})),
			wantErr: ErrInvalid, wantMsg: "iat claim is out of range"},
		{name: "idle and absolute mapped", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Idle: "idle", Absolute: "abs"} }),
			token: hs256(claims(map[string]any{"idle": 900, "abs": json.RawMessage("86400.0")})),
			check: func(t *testing.T, id *Identity) {
				if id.Idle != 15*time.Minute || id.Absolute != 24*time.Hour {
					t.Errorf("timeouts = %v %v", id.Idle, id.Absolute)
				}
			}},
		{name: "idle mapped but absent", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Idle: "idle", Absolute: "abs"} }),
			token: hs256(claims(nil)),
			check: func(t *testing.T, id *Identity) {
				if id.Idle != 0 || id.Absolute != 0 {
					t.Errorf("timeouts = %v %v", id.Idle, id.Absolute)
				}
			}},
		{name: "idle not mapped", cfg: hs, token: hs256(claims(map[string]any{"idle": 900})),
			check: func(t *testing.T, id *Identity) {
				if id.Idle != 0 {
					t.Errorf("Idle = %v", id.Idle)
				}
			}},
		{name: "idle fractional", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Idle: "idle"} }),
			token: hs256(claims(map[string]any{"idle": 1.5})), wantErr: ErrInvalid, wantMsg: "whole number"},
		{name: "idle zero", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Idle: "idle"} }),
			token: hs256(claims(map[string]any{"idle": 0})), wantErr: ErrInvalid, wantMsg: "not positive"},
		{name: "absolute negative", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Absolute: "abs"} }),
			token: hs256(claims(map[string]any{"abs": -60})), wantErr: ErrInvalid, wantMsg: "not positive"},
		{name: "absolute absurd", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Absolute: "abs"} }),
			token: hs256(claims(map[string]any{"abs": json.RawMessage("1e300")})), wantErr: ErrInvalid, wantMsg: "too large"},
		{name: "absolute eleven years", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Absolute: "abs"} }),
			token: hs256(claims(map[string]any{"abs": 11 * 365 * 24 * 3600})), wantErr: ErrInvalid, wantMsg: "too large"},
		{name: "idle as string", cfg: with(hs, func(c *Config) { c.Claims = ClaimMap{Idle: "idle"} }),
			token: hs256(claims(map[string]any{"idle": "900"})), wantErr: ErrInvalid, wantMsg: "not a number"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tok := tt.token(t)
			id, err := v.Verify(context.Background(), tok)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tt.check != nil {
					tt.check(t, id)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded, want %v", tt.wantErr)
			}
			if id != nil {
				t.Errorf("Verify returned an identity with error %v", err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Verify error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if len(tok) > 8 && strings.Contains(err.Error(), tok) {
				t.Errorf("error message contains the token")
			}
			for _, seg := range strings.Split(tok, ".") {
				if len(seg) > 8 && strings.Contains(err.Error(), seg) {
					t.Errorf("error message contains a token segment")
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	k := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: must succeed
	}{
		{"no algorithms", Config{Secret: testSecret}, "no algorithms"},
		{"none", Config{Algorithms: []string{"none"}}, "not allowed"},
		{"NONE", Config{Algorithms: []string{"HS256", "NONE"}, Secret: testSecret}, "not allowed"},
		{"unsupported", Config{Algorithms: []string{"HS257"}, Secret: testSecret}, "unsupported"},
		{"wrong case", Config{Algorithms: []string{"hs256"}, Secret: testSecret}, "unsupported"},
		{"HS256 without secret", Config{Algorithms: []string{"HS256"}}, "needs a secret"},
		{"short secret", Config{Algorithms: []string{"HS256"}, Secret: []byte("short")}, "at least 32"},
		{"HS256 with a public key only", Config{Algorithms: []string{"HS256", "RS256"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey}}, "needs a secret"},
		{"RS256 without key", Config{Algorithms: []string{"RS256"}, Secret: testSecret}, "needs an RSA public key"},
		{"RS256 with an EC key", Config{Algorithms: []string{"RS256", "ES256"}, PublicKeys: []crypto.PublicKey{&k.ec.PublicKey}}, "needs an RSA public key"},
		{"ES256 with a P-384 key", Config{Algorithms: []string{"ES256", "ES384"}, PublicKeys: []crypto.PublicKey{&k.ec384.PublicKey}}, "ES256 needs an ECDSA public key on P-256"},
		{"ES384 with a P-384 key", Config{Algorithms: []string{"ES384"}, PublicKeys: []crypto.PublicKey{&k.ec384.PublicKey}}, ""},
		{"EdDSA without key", Config{Algorithms: []string{"EdDSA"}}, "needs an Ed25519"},
		{"EdDSA key pointer", Config{Algorithms: []string{"EdDSA"}, PublicKeys: []crypto.PublicKey{&k.edPublic}}, ""},
		{"unusable key", Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec.PublicKey}}, "cannot verify any"},
		{"private key", Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{k.rsa}}, "unsupported public key type"},
		{"small RSA key", Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&small.PublicKey}}, "at least 2048"},
		{"JWKS only", Config{Algorithms: []string{"RS256", "ES256", "EdDSA", "PS512"}, JWKSURL: "https://idp.example/.well-known/jwks.json"}, ""},
		{"JWKS bad scheme", Config{Algorithms: []string{"RS256"}, JWKSURL: "file:///etc/passwd"}, "http or https"},
		{"JWKS relative", Config{Algorithms: []string{"RS256"}, JWKSURL: "/jwks.json"}, "http or https"},
		{"negative leeway", Config{Algorithms: []string{"HS256"}, Secret: testSecret, Leeway: -time.Second}, "negative leeway"},
		{"negative refresh", Config{Algorithms: []string{"RS256"}, JWKSURL: "https://idp.example/jwks", JWKSRefresh: -time.Second}, "negative"},
		{"negative max length", Config{Algorithms: []string{"HS256"}, Secret: testSecret, MaxLength: -1}, "negative"},
		{"everything", Config{
			Algorithms: []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256"},
			Secret:     testSecret, JWKSURL: "http://127.0.0.1:1/jwks",
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: secret, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, jwt.SigningMethodHS256, testSecret, nil, claims(nil))
	secret[0] ^= 0xff
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify after mutating the caller's secret: %v", err)
	}
}

func TestAlgorithmAccepts(t *testing.T) {
	k := testKeys(t)
	keys := map[string]crypto.PublicKey{
		"rsa": &k.rsa.PublicKey, "p256": &k.ec.PublicKey, "p384": &k.ec384.PublicKey, "ed": k.edPublic, "secret": testSecret,
	}
	want := map[string]string{
		"HS256": "", "RS256": "rsa", "PS512": "rsa", "ES256": "p256", "ES384": "p384", "ES512": "", "EdDSA": "ed",
	}
	for alg, wantKey := range want {
		for name, key := range keys {
			if got := algorithms[alg].accepts(key); got != (name == wantKey) {
				t.Errorf("%s accepts %s = %v", alg, name, got)
			}
		}
	}
}

func TestClaimMapWithDefaults(t *testing.T) {
	got := ClaimMap{Role: "roles", Idle: "idle"}.WithDefaults()
	want := ClaimMap{Session: "sid", User: "sub", Account: "acct", Role: "roles", Login: "auth_time", Name: "name", Email: "email", Idle: "idle"}
	if got != want {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
}

func TestLoadPublicKeys(t *testing.T) {
	k := testKeys(t)
	pkixPEM := func(key any) []byte {
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec.PublicKey, k.ec)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})

	var all []byte
	all = append(all, "# keys\n"...)
	all = append(all, pkixPEM(&k.rsa.PublicKey)...)
	all = append(all, pkixPEM(&k.ec.PublicKey)...)
	all = append(all, pkixPEM(k.edPublic)...)
	all = append(all, pkcs1...)
	all = append(all, cert...)
	keys, err := LoadPublicKeys(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("got %d keys, want 5", len(keys))
	}
	if _, ok := keys[0].(*rsa.PublicKey); !ok {
		t.Errorf("key 0 is %T", keys[0])
	}
	if _, ok := keys[1].(*ecdsa.PublicKey); !ok {
		t.Errorf("key 1 is %T", keys[1])
	}
	if _, ok := keys[2].(ed25519.PublicKey); !ok {
		t.Errorf("key 2 is %T", keys[2])
	}
	if k3, ok := keys[3].(*rsa.PublicKey); !ok || !k3.Equal(&k.rsa.PublicKey) {
		t.Errorf("key 3 is %T", keys[3])
	}
	if k4, ok := keys[4].(*ecdsa.PublicKey); !ok || !k4.Equal(&k.ec.PublicKey) {
		t.Errorf("key 4 is %T", keys[4])
	}

	// The loaded keys work with New.
	if _, err := New(Config{Algorithms: []string{"RS256", "ES256", "EdDSA"}, PublicKeys: keys}); err != nil {
		t.Fatalf("New with loaded keys: %v", err)
	}

	for name, in := range map[string][]byte{
		"empty":       nil,
		"garbage":     []byte("not pem"),
		"private key": append(pkixPEM(&k.rsa.PublicKey), priv...),
		"bad DER":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := LoadPublicKeys(in); err == nil {
			t.Errorf("%s: LoadPublicKeys succeeded", name)
		}
	}
}
