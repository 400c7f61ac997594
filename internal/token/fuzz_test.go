package token

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func FuzzExtract(f *testing.F) {
	f.Add("Bearer aaaa.bbbb.cccc", "", "")
	f.Add("", "sg=aaaa.bbbb.cccc", "")
	f.Add("Bearer a", "sg=b", "sg=c")
	f.Add("bearer  x", "sg=\"x\"; sg=", "a=b")
	f.Add("Basic x", ";;;=;sg", "sg=\x00")
	f.Add("Bearer", "", "")
	sources := []Source{
		{Kind: SourceHeader, Name: "Authorization", Scheme: "Bearer"},
		{Kind: SourceCookie, Name: "sg"},
	}
	f.Fuzz(func(t *testing.T, authz, cookie1, cookie2 string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		for _, c := range []string{cookie1, cookie2} {
			if c != "" {
				r.Header.Add("Cookie", c)
			}
		}
		tok, err := Extract(r, sources, 64)
		if err != nil {
			if tok != "" {
				t.Fatalf("token %q returned with error %v", tok, err)
			}
			if !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if tok == "" || len(tok) > 64 || strings.ContainsFunc(tok, isSpaceOrControl) {
			t.Fatalf("bad token %q", tok)
		}
	})
}

func FuzzVerify(f *testing.F) {
	k := testKeys(f)
	f.Add(mint(f, jwt.SigningMethodHS256, testSecret, nil, claims(nil)))
	f.Add(mint(f, jwt.SigningMethodHS256, testSecret, nil, claims(map[string]any{"exp": "1"})))
	f.Add(mint(f, jwt.SigningMethodHS256, testSecret, map[string]any{"kid": "../x", "crit": []string{"b64"}}, claims(nil)))
	f.Add(mint(f, jwt.SigningMethodHS256, testSecret, nil, `{"sid":"s","sub":"u","exp":1e300,"iat":-1e400,"idle":1e20}`))
	f.Add(mint(f, jwt.SigningMethodHS256, testSecret, nil, `{"sid":"s","sub":"u","exp":1800000000,"iat":1,"idle":"x","abs":0.5,"aud":[1]}`))
	f.Add(mint(f, jwt.SigningMethodHS256, testSecret, nil, `null`))
	f.Add(mint(f, jwt.SigningMethodRS256, k.rsa, nil, claims(nil)))
	f.Add(mint(f, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "k1"}, claims(nil)))
	f.Add(unsigned(`{"alg":"none"}`, claims(nil), nil))
	f.Add(unsigned(`{"alg":"HS256","typ":{}}`, claims(nil), []byte("sig")))
	f.Add("....")
	f.Add("a.b.c")
	f.Add("")

	v, err := New(Config{
		Algorithms: []string{"HS256", "RS256", "ES256"},
		Secret:     testSecret,
		PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey, &k.ec.PublicKey},
		Claims:     ClaimMap{Idle: "idle", Absolute: "abs"},
		Now:        fixedNow,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err != nil {
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
				t.Fatalf("error contains the token: %v", err)
			}
			return
		}
		if id == nil || id.SessionID == "" || id.UserID == "" || id.AccountID == "" {
			t.Fatalf("bad identity %+v", id)
		}
	})
}
