package token

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestClaimPaths(t *testing.T) {
	payload := claims(map[string]any{
		"sid": nil, "acct": nil, "role": nil,
		"ext":                        map[string]any{"acct": "acme", "deep": map[string]any{"sid": "S9"}},
		"realm_access":               map[string]any{"roles": []string{"offline_access", "owner"}},
		"https://example.com/roles":  []string{"admin"},
		"a~b":                        map[string]any{"c/d": "x"},
		"list":                       []any{"zero", map[string]any{"id": "one"}},
		"auth_time":                  testNow.Add(-time.Hour).Unix(),
		"https://example.com/tenant": "t1",
	})
	tok := mint(t, jwt.SigningMethodHS256, testSecret, nil, payload)
	verify := func(m ClaimMap) (*Identity, error) {
		v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow, Claims: m, CacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		return v.Verify(context.Background(), tok)
	}
	for _, tt := range []struct {
		m                      ClaimMap
		session, account, role string
	}{
		{ClaimMap{Session: "ext.deep.sid", Account: "ext.acct", Role: "realm_access.roles"}, "S9", "acme", "offline_access, owner"},
		{ClaimMap{Session: "/ext/deep/sid", Account: "/https:~1~1example.com~1tenant", Role: "/https:~1~1example.com~1roles"}, "S9", "t1", "admin"},
		{ClaimMap{Session: "/a~0b/c~1d", Account: "list.1.id", Role: "/list/0"}, "x", "one", "zero"},
		{ClaimMap{Session: "sid nope sub+auth_time", Account: "ext.acct"}, "u1+" + itoa(testNow.Add(-time.Hour).Unix()), "acme", ""},
		{ClaimMap{Session: "sid ext.deep.sid", Account: "ext.acct"}, "S9", "acme", ""},
	} {
		id, err := verify(tt.m)
		if err != nil {
			t.Errorf("%+v: %v", tt.m, err)
			continue
		}
		if id.SessionID != tt.session || id.AccountID != tt.account || id.Role != tt.role {
			t.Errorf("%+v: session %q account %q role %q; want %q %q %q", tt.m, id.SessionID, id.AccountID, id.Role, tt.session, tt.account, tt.role)
		}
	}
	for _, tt := range []struct {
		m   ClaimMap
		msg string
	}{
		{ClaimMap{Account: "ext.acct"}, `token has no session claim "sid"`},
		{ClaimMap{Session: "sid sid2+auth_time", Account: "ext.acct"}, `token has no session claim "sid" or "sid2+auth_time"`},
		{ClaimMap{Session: "ext", Account: "ext.acct"}, `session claim "ext" is not a string`},
		{ClaimMap{Session: "ext.deep.sid", Account: "ext.nope"}, `token has no account claim "ext.nope"`},
		{ClaimMap{Session: "ext.deep.sid", Account: "ext.acct.more"}, `token has no account claim "ext.acct.more"`},
		{ClaimMap{Session: "/list/01", Account: "ext.acct"}, `token has no session claim "/list/01"`},
		{ClaimMap{Session: "ext.deep.sid", Account: "ext"}, `account claim "ext" is not a string`},
	} {
		_, err := verify(tt.m)
		if !errors.Is(err, ErrInvalid) || err.Error() != "invalid token: "+tt.msg {
			t.Errorf("%+v: error %v, want %q", tt.m, err, tt.msg)
		}
	}
}

func TestMismatchMessages(t *testing.T) {
	cfg := Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow, Issuer: "https://idp.example", Audience: "app"}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]any{"iss": "https://idp.example", "aud": "app"}
	with := func(k string, val any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = val
		return m
	}
	for _, tt := range []struct {
		tok                       string
		field, expected, received string
		msg                       string
	}{
		{mint(t, jwt.SigningMethodHS256, testSecret, nil, claims(with("iss", "https://other.example"))), "iss", "https://idp.example", "https://other.example", "issuer is not accepted"},
		{mint(t, jwt.SigningMethodHS256, testSecret, nil, claims(with("aud", []string{"x", "y"}))), "aud", "app", "x y", "audience is not accepted"},
		{mint(t, jwt.SigningMethodHS384, testSecret, nil, claims(ok)), "alg", "HS256", "HS384", "algorithm is not allowed"},
	} {
		_, err := v.Verify(context.Background(), tt.tok)
		var m *Mismatch
		if !errors.As(err, &m) || m.Field != tt.field || m.Expected != tt.expected || m.Received != tt.received {
			t.Errorf("%s: %#v", tt.field, err)
			continue
		}
		if err.Error() != "invalid token: "+tt.msg || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: message %q", tt.field, err)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
