package caddymodule_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/testredis"
)

// benchAlg is one signing algorithm of BenchmarkHandler.
type benchAlg struct {
	name   string
	method jwt.SigningMethod
	sign   any // private key or HMAC secret
	public any // nil for HMAC
}

func benchAlgs(b *testing.B) []benchAlg {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return []benchAlg{
		{"HS256", jwt.SigningMethodHS256, []byte(secret), nil},
		{"RS256", jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
		{"ES256", jwt.SigningMethodES256, ecKey, &ecKey.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, edPub},
	}
}

// benchWriter is a ResponseWriter that keeps only the status.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkHandler measures the request path of a valid session, token
// extraction to the upstream call, through ServeHTTP of a provisioned
// handler, for the memory and the Redis store and each JWT algorithm,
// over 1000 sessions that already exist (the steady state). The
// upstream is a no-op; there is no network but Redis on loopback.
//
//	go test -run '^$' -bench Handler -benchmem ./caddymodule/
func BenchmarkHandler(b *testing.B) {
	algs := benchAlgs(b)
	for _, st := range []string{"memory", "redis"} {
		b.Run(st, func(b *testing.B) {
			storeJSON := `{"type":"memory"}`
			if st == "redis" {
				srv := testredis.Start(b)
				storeJSON = fmt.Sprintf(`{"type":"redis","addresses":[%q]}`, srv.Addr())
			}
			cfg := fmt.Sprintf(`{"admin":{"disabled":true},"logging":{"logs":{"default":{"level":"ERROR"}}},"apps":{"session_guard":{"store":%s}}}`, storeJSON)
			if err := caddy.Load([]byte(cfg), true); err != nil {
				b.Fatalf("loading caddy: %v", err)
			}
			b.Cleanup(func() { _ = caddy.Stop() })
			for _, alg := range algs {
				b.Run(alg.name, func(b *testing.B) { benchHandler(b, alg) })
			}
		})
	}
}

func benchHandler(b *testing.B, alg benchAlg) {
	jwtCfg := map[string]any{"algorithms": []string{alg.name}}
	if alg.public == nil {
		jwtCfg["secret"] = secret
	} else {
		der, err := x509.MarshalPKIXPublicKey(alg.public)
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "key.pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			b.Fatal(err)
		}
		jwtCfg["public_key"] = path
	}
	raw, err := json.Marshal(map[string]any{"jwt": jwtCfg})
	if err != nil {
		b.Fatal(err)
	}
	mod, err := caddy.ActiveContext().LoadModuleByID("http.handlers.session_guard", raw)
	if err != nil {
		b.Fatalf("provisioning the handler: %v", err)
	}
	h := mod.(caddyhttp.MiddlewareHandler)

	now := time.Now()
	const sessions = 1000
	reqs := make([]*http.Request, sessions)
	for i := range reqs {
		tok, err := jwt.NewWithClaims(alg.method, jwt.MapClaims{
			"sid": fmt.Sprintf("bench-session-%d", i), "sub": fmt.Sprintf("user-%d", i),
			"acct": fmt.Sprintf("acct-%d", i%10), "role": "member",
			"iat": now.Unix(), "auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}).SignedString(alg.sign)
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/items", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("User-Agent", "bench")
		ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
		reqs[i] = r.WithContext(ctx)
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w := &benchWriter{h: http.Header{}}
	serve := func(r *http.Request) {
		clear(w.h)
		w.status = 0
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatalf("ServeHTTP: %v", err)
		}
		if w.status != http.StatusOK || w.h.Get("Session-Expires-In") == "" {
			b.Fatalf("status %d, headers %v: the session was not accepted", w.status, w.h)
		}
	}
	for _, r := range reqs { // create the sessions: measure the steady state
		serve(r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(reqs[i%sessions])
	}
}
