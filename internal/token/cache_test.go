package token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/testclock"
)

func hsToken(t testing.TB, payload string) string {
	return mint(t, jwt.SigningMethodHS256, testSecret, nil, payload)
}

// TestCacheServesVerifiedTokens: a token seen again is answered from the
// cache, without verifying the signature again, and callers get a copy.
func TestCacheServesVerifiedTokens(t *testing.T) {
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	tok := hsToken(t, claims(map[string]any{"role": "owner"}))
	id1, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if v.cache.len() != 1 {
		t.Fatalf("cache has %d entries after one verified token, want 1", v.cache.len())
	}
	id1.Role = "mutated"

	// Swap the secret: only a cache hit can still accept the token.
	v.secret = []byte("another secret, another secret, another")
	id2, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("cached token: %v", err)
	}
	if id2.Role != "owner" || id2.SessionID != "s1" || !id2.ExpiresAt.Equal(testNow.Add(time.Hour)) {
		t.Fatalf("cached identity = %+v (a caller's change leaked into the cache?)", id2)
	}
	// A token never verified still goes through the (now failing) check.
	if _, err := v.Verify(context.Background(), hsToken(t, claims(map[string]any{"sid": "s2"}))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new token with the wrong secret: err = %v, want ErrInvalid", err)
	}
	// A tampered copy of the cached token differs in its hash.
	if _, err := v.Verify(context.Background(), tok[:len(tok)-2]+"AA"); err == nil {
		t.Fatal("tampered token accepted")
	}
}

// TestCacheNeverPastExp: an entry is not used at or after exp, whatever
// the leeway; the token then gets the ordinary expiry check.
func TestCacheNeverPastExp(t *testing.T) {
	clock := testclock.New(testNow)
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(10 * time.Second)
	tok := hsToken(t, claims(map[string]any{"exp": exp.Unix()}))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clock.Set(exp.Add(-time.Nanosecond))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("just before exp: %v", err)
	}
	clock.Set(exp)
	_, err = v.Verify(context.Background(), tok)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at exp: err = %v, want expired", err)
	}
	if v.cache.len() != 0 {
		t.Fatalf("expired entry kept: %d entries", v.cache.len())
	}
}

// TestCacheRespectsNbf: an entry is not used when the clock is before the
// token's nbf (minus leeway), e.g. after the clock was set back.
func TestCacheRespectsNbf(t *testing.T) {
	clock := testclock.New(testNow)
	leeway := 5 * time.Second
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: clock.Now, Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	nbf := testNow.Add(-time.Second)
	tok := hsToken(t, claims(map[string]any{"nbf": nbf.Unix()}))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clock.Set(nbf.Add(-leeway))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("at nbf - leeway: %v", err)
	}
	clock.Set(nbf.Add(-leeway - time.Second))
	_, err = v.Verify(context.Background(), tok)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not valid yet") {
		t.Fatalf("before nbf - leeway: err = %v, want not valid yet", err)
	}
}

// TestCacheRespectsIat: an entry is not used when the clock is before the
// token's iat (minus leeway), so that the cache cannot accept a token the
// verifier would reject as issued in the future; with both nbf and iat
// the later one counts.
func TestCacheRespectsIat(t *testing.T) {
	for _, tc := range []struct {
		name string
		nbf  time.Duration // relative to iat; 0: no nbf
	}{
		{name: "iat only"},
		{name: "nbf before iat", nbf: -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(testNow)
			leeway := 5 * time.Second
			v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: clock.Now, Leeway: leeway})
			if err != nil {
				t.Fatal(err)
			}
			iat := testNow.Add(-time.Second)
			over := map[string]any{"iat": iat.Unix()}
			if tc.nbf != 0 {
				over["nbf"] = iat.Add(tc.nbf).Unix()
			}
			tok := hsToken(t, claims(over))
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			if v.cache.len() != 1 {
				t.Fatalf("cache has %d entries, want 1", v.cache.len())
			}
			clock.Set(iat.Add(-leeway))
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("at iat - leeway: %v", err)
			}
			clock.Set(iat.Add(-leeway - time.Second))
			id, ok := v.cache.get(sha256.Sum256([]byte(tok)), clock.Now())
			if ok || id != nil {
				t.Fatalf("cache served the token before iat - leeway: %+v", id)
			}
			_, err = v.Verify(context.Background(), tok)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "issued in the future") {
				t.Fatalf("before iat - leeway: err = %v, want issued in the future", err)
			}
		})
	}
}

// TestCacheMaxAge: an entry is re-verified after cacheMaxAge even when the
// token lives longer, so a rotated-out key stops working.
func TestCacheMaxAge(t *testing.T) {
	clock := testclock.New(testNow)
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := hsToken(t, claims(nil)) // exp = testNow + 1h
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	v.secret = []byte("another secret, another secret, another")
	clock.Set(testNow.Add(cacheMaxAge - time.Second))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("within max age: %v", err)
	}
	clock.Set(testNow.Add(cacheMaxAge))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("after max age with a changed key: err = %v, want ErrInvalid", err)
	}
}

// TestCacheBounded: the cache never holds more than CacheSize entries,
// and failed verifications are never cached.
func TestCacheBounded(t *testing.T) {
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow, CacheSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := v.Verify(context.Background(), hsToken(t, claims(map[string]any{"sid": fmt.Sprint("s", i)}))); err != nil {
			t.Fatal(err)
		}
		if n := v.cache.len(); n > 3 {
			t.Fatalf("cache has %d entries, bound is 3", n)
		}
	}
	bad := mint(t, jwt.SigningMethodHS256, []byte("wrong secret, wrong secret, wrong"), nil, claims(map[string]any{"sid": "bad"}))
	before := v.cache.len()
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(context.Background(), bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad signature: err = %v", err)
		}
	}
	expired := hsToken(t, claims(map[string]any{"sid": "old", "exp": testNow.Add(-time.Second).Unix()}))
	if _, err := v.Verify(context.Background(), expired); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired: err = %v", err)
	}
	if v.cache.len() > before {
		t.Fatal("a rejected token was cached")
	}

	off, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	if off.cache != nil {
		t.Fatal("CacheSize -1 did not disable the cache")
	}
}

// TestCacheConcurrent exercises the cache from many goroutines (run with
// -race).
func TestCacheConcurrent(t *testing.T) {
	v, err := New(Config{Algorithms: []string{"HS256"}, Secret: testSecret, Now: fixedNow, CacheSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	toks := make([]string, 32)
	for i := range toks {
		toks[i] = hsToken(t, claims(map[string]any{"sid": fmt.Sprint("s", i)}))
	}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				id, err := v.Verify(context.Background(), toks[(g*7+i)%len(toks)])
				if err == nil && id.SessionID != fmt.Sprint("s", (g*7+i)%len(toks)) {
					err = fmt.Errorf("got session %q", id.SessionID)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkVerify measures Verify per algorithm with the verified-token
// cache on (the default) and off, over 1000 distinct tokens.
func BenchmarkVerify(b *testing.B) {
	k := testKeys(b)
	algs := []struct {
		name   string
		method jwt.SigningMethod
		sign   any
		cfg    Config
	}{
		{"HS256", jwt.SigningMethodHS256, testSecret, Config{Algorithms: []string{"HS256"}, Secret: testSecret}},
		{"RS256", jwt.SigningMethodRS256, k.rsa, Config{Algorithms: []string{"RS256"}, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey}}},
		{"ES256", jwt.SigningMethodES256, k.ec, Config{Algorithms: []string{"ES256"}, PublicKeys: []crypto.PublicKey{&k.ec.PublicKey}}},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, Config{Algorithms: []string{"EdDSA"}, PublicKeys: []crypto.PublicKey{k.edPublic}}},
	}
	for _, a := range algs {
		toks := make([]string, 1000)
		for i := range toks {
			toks[i] = mint(b, a.method, a.sign, nil, claims(map[string]any{"sid": fmt.Sprint("s", i), "acct": "acme", "role": "member"}))
		}
		for _, mode := range []struct {
			name string
			size int
		}{{"cache", 0}, {"nocache", -1}} {
			b.Run(a.name+"/"+mode.name, func(b *testing.B) {
				cfg := a.cfg
				cfg.Now, cfg.CacheSize = fixedNow, mode.size
				v, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				for _, tok := range toks { // warm the cache
					if _, err := v.Verify(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := v.Verify(context.Background(), toks[i%len(toks)]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
