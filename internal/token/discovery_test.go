package token

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// opServer serves a discovery document and a JWKS.
type opServer struct {
	*httptest.Server
	jwks *jwksServer
	mu   sync.Mutex
	algs []string
	down bool
	hits int
}

func newOPServer(t *testing.T, algs []string, keys ...map[string]any) *opServer {
	op := &opServer{jwks: newJWKSServer(t, keys...), algs: algs}
	op.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		op.hits++
		if op.down || r.URL.Path != "/.well-known/openid-configuration" {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                op.URL,
			"jwks_uri":                              op.jwks.URL,
			"id_token_signing_alg_values_supported": op.algs,
		})
	}))
	t.Cleanup(op.Close)
	return op
}

func (op *opServer) set(f func(*opServer)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func TestDiscovery(t *testing.T) {
	k := testKeys(t)
	clock := &fakeClock{t: testNow}
	op := newOPServer(t, []string{"RS256", "HS256", "none"}, jwkOf(&k.rsa.PublicKey, "r1"), jwkOf(&k.ec.PublicKey, "e1"))
	op.set(func(op *opServer) { op.down = true })
	v, err := New(Config{Discovery: op.URL + "/", Secret: testSecret, Now: clock.Now, JWKSRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	iss := func(s string) map[string]any { return map[string]any{"iss": s} }
	rs := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "r1"}, claims(iss(op.URL)))
	es := mint(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "e1"}, claims(iss(op.URL)))
	hs := mint(t, jwt.SigningMethodHS256, testSecret, nil, claims(iss(op.URL)))
	ctx := context.Background()

	if _, err := v.Verify(ctx, rs); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("provider down: %v, want ErrKeyUnavailable", err)
	}
	op.set(func(op *opServer) { op.down = false })
	if _, err := v.Verify(ctx, rs); !errors.Is(err, ErrKeyUnavailable) {
		t.Errorf("within 1s of a failed fetch: %v, want ErrKeyUnavailable", err)
	}
	clock.Advance(time.Second)
	if _, err := v.Verify(ctx, rs); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// HS256 is in the document but never taken from it; none neither.
	if _, err := v.Verify(ctx, hs); !errors.Is(err, ErrInvalid) {
		t.Errorf("HS256 from discovery: %v", err)
	}
	// The issuer comes from the document.
	other := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "r1"}, claims(iss("https://evil.example")))
	var m *Mismatch
	if _, err := v.Verify(ctx, other); !errors.As(err, &m) || m.Field != "iss" || m.Expected != op.URL || m.Received != "https://evil.example" {
		t.Errorf("other issuer: %#v", err)
	}
	// The provider moves to ES256: an alg not yet allowed refetches the
	// document (at most once a second).
	if _, err := v.Verify(ctx, es); !errors.As(err, &m) || m.Field != "alg" || m.Expected != "RS256" || m.Received != "ES256" {
		t.Errorf("ES256 before the switch: %#v", err)
	}
	op.set(func(op *opServer) { op.algs = []string{"ES256", "RS256"} })
	if _, err := v.Verify(ctx, es); err == nil {
		t.Errorf("ES256 accepted within 1s of the last fetch")
	}
	clock.Advance(time.Second)
	if _, err := v.Verify(ctx, es); err != nil {
		t.Errorf("ES256 after the switch: %v", err)
	}
	if op.jwks.hits.Load() != 1 {
		t.Errorf("%d JWKS fetches, want 1 (same jwks_uri, same cache)", op.jwks.hits.Load())
	}
}

func TestDiscoveryIntersect(t *testing.T) {
	for _, tt := range []struct {
		configured, discovered, want []string
	}{
		{nil, nil, []string{"RS256"}},
		{nil, []string{"RS256", "ES256", "HS256", "none", "XX1"}, []string{"RS256", "ES256"}},
		{[]string{"ES256"}, []string{"RS256", "ES256"}, []string{"ES256"}},
		{[]string{"PS256"}, []string{"RS256"}, nil},
		{[]string{"HS256", "RS256"}, []string{"RS256"}, []string{"HS256", "RS256"}},
	} {
		if got := intersect(tt.configured, tt.discovered); !slices.Equal(got, tt.want) {
			t.Errorf("intersect(%v, %v) = %v, want %v", tt.configured, tt.discovered, got, tt.want)
		}
	}
}
