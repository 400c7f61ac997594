package token

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer serves a mutable JWKS and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	keys   []map[string]any
	status int
	body   []byte        // when set, served instead of keys
	block  chan struct{} // when set, requests wait for it to be closed
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		block := s.block
		s.mu.Unlock()
		if block != nil {
			<-block
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		if s.body != nil {
			w.Write(s.body)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func TestJWKS(t *testing.T) {
	k := testKeys(t)
	clock := &fakeClock{t: testNow}
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
	v, err := New(Config{
		Algorithms:  []string{"RS256", "PS256", "ES256", "EdDSA"},
		JWKSURL:     srv.URL,
		JWKSRefresh: time.Hour, // no routine refresh during the test
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("New fetched the JWKS %d times", n)
	}
	ctx := context.Background()
	rsTok := func(key any, kid string) string {
		h := map[string]any{"kid": kid}
		if kid == "" {
			h = nil
		}
		return mint(t, jwt.SigningMethodRS256, key, h, claims(map[string]any{"exp": testNow.Add(24 * time.Hour).Unix()}))
	}
	step := func(name, tok string, wantErr error, wantHits int64) {
		t.Helper()
		_, err := v.Verify(ctx, tok)
		switch {
		case wantErr == nil && err != nil:
			t.Errorf("%s: Verify: %v", name, err)
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Errorf("%s: Verify error = %v, want %v", name, err, wantErr)
		}
		if wantErr != ErrKeyUnavailable && errors.Is(err, ErrKeyUnavailable) {
			t.Errorf("%s: Verify error = %v, want no ErrKeyUnavailable", name, err)
		}
		if got := srv.hits.Load(); got != wantHits {
			t.Errorf("%s: %d JWKS requests, want %d", name, got, wantHits)
		}
	}

	step("first use fetches", rsTok(k.rsa, "k1"), nil, 1)
	step("cached", rsTok(k.rsa, "k1"), nil, 1)
	step("no kid tries all keys", rsTok(k.rsa, ""), nil, 1)

	// The IdP rotates in k2: an unknown kid refetches at once, at most
	// once per second.
	srv.set(func(s *jwksServer) {
		s.keys = append(s.keys, jwkOf(&k.rsa2.PublicKey, "k2"), jwkOf(&k.ec.PublicKey, "ec1"), jwkOf(k.edPublic, "ed1"))
	})
	step("unknown kid within 1s of a fetch", rsTok(k.rsa2, "k2"), ErrInvalid, 1)
	clock.Advance(time.Second)
	step("unknown kid refetches", rsTok(k.rsa2, "k2"), nil, 2)
	step("ES256 from JWKS", mint(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "ec1"}, claims(nil)), nil, 2)
	step("EdDSA from JWKS", mint(t, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "ed1"}, claims(nil)), nil, 2)
	step("kid of another key type", mint(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "k1"}, claims(nil)), ErrInvalid, 2)
	step("right kid, wrong key", rsTok(k.rsa2, "k1"), ErrInvalid, 2)

	step("unknown kid, rate limited", rsTok(k.rsa, "k3"), ErrInvalid, 2)
	clock.Advance(time.Second)
	step("path kid refetches once", rsTok(k.rsa, "../../etc/passwd"), ErrInvalid, 3)
	for range 5 {
		step("path kid rate limited", rsTok(k.rsa, "../../etc/passwd"), ErrInvalid, 3)
	}
	_, err = v.Verify(ctx, rsTok(k.rsa, "k3"))
	var m *Mismatch
	if !errors.As(err, &m) || m.Field != "kid" || m.Received != "k3" || m.Expected != "k1 k2 ec1 ed1" {
		t.Errorf("unknown kid error = %#v, want a kid Mismatch listing the set", err)
	}

	// An outage keeps the old keys; an unknown kid is then 503, not 401.
	srv.set(func(s *jwksServer) { s.status = http.StatusInternalServerError })
	clock.Advance(time.Second)
	step("outage, unknown kid", rsTok(k.rsa, "k9"), ErrKeyUnavailable, 4)
	step("outage keeps old keys", rsTok(k.rsa2, "k2"), nil, 4)
	clock.Advance(time.Second)
	srv.set(func(s *jwksServer) { s.status = http.StatusOK })
	step("recovered", rsTok(k.rsa, "k9"), ErrInvalid, 5)
}

func TestJWKSKeyFiltering(t *testing.T) {
	k := testKeys(t)
	enc := jwkOf(&k.rsa.PublicKey, "enc")
	enc["use"] = "enc"
	ops := jwkOf(&k.rsa.PublicKey, "ops")
	ops["key_ops"] = []string{"encrypt"}
	bound := jwkOf(&k.rsa.PublicKey, "bound")
	bound["alg"] = "RS256"
	wrongAlg := jwkOf(&k.rsa.PublicKey, "wrongalg")
	wrongAlg["alg"] = "ES256"
	sig := jwkOf(&k.rsa.PublicKey, "sig")
	sig["use"] = "sig"

	srv := newJWKSServer(t, enc, ops, bound, wrongAlg, sig,
		map[string]any{"kty": "oct", "kid": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
	)
	v, err := New(Config{Algorithms: []string{"RS256", "PS256", "ES256", "HS256"}, Secret: testSecret, JWKSURL: srv.URL, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	for _, tt := range []struct {
		kid    string
		method jwt.SigningMethod
		key    any
		ok     bool
	}{
		{"enc", jwt.SigningMethodRS256, k.rsa, false},
		{"ops", jwt.SigningMethodRS256, k.rsa, false},
		{"bound", jwt.SigningMethodRS256, k.rsa, true},
		{"bound", jwt.SigningMethodPS256, k.rsa, false},
		{"wrongalg", jwt.SigningMethodRS256, k.rsa, false},
		{"sig", jwt.SigningMethodPS256, k.rsa, true},
		{"oct", jwt.SigningMethodHS256, []byte("secret"), false},
		{"oct", jwt.SigningMethodHS256, testSecret, true}, // HS tokens only ever use Config.Secret
	} {
		tok := mint(t, tt.method, tt.key, map[string]any{"kid": tt.kid}, claims(nil))
		_, err := v.Verify(context.Background(), tok)
		if tt.ok != (err == nil) {
			t.Errorf("kid %s %s: Verify error = %v, want ok=%v", tt.kid, tt.method.Alg(), err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalid) || errors.Is(err, ErrKeyUnavailable)) {
			t.Errorf("kid %s: error = %v", tt.kid, err)
		}
	}
}

// A set with a malformed key is refused whole by jwkset; the keys fetched
// before stay in use.
func TestJWKSMalformedSet(t *testing.T) {
	k := testKeys(t)
	clock := &fakeClock{t: testNow}
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
	v, err := New(Config{Algorithms: []string{"RS256", "ES256"}, JWKSURL: srv.URL, JWKSRefresh: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	good := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims(nil))
	if _, err := v.Verify(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	offCurve := jwkOf(&k.ec.PublicKey, "bad")
	offCurve["y"] = offCurve["x"]
	badCurve := jwkOf(&k.ec.PublicKey, "bad")
	badCurve["crv"] = "P-384"
	tok := mint(t, jwt.SigningMethodES256, k.ec, map[string]any{"kid": "bad"}, claims(nil))
	for name, bad := range map[string]map[string]any{"off curve": offCurve, "wrong curve": badCurve} {
		srv.set(func(s *jwksServer) { s.keys = []map[string]any{s.keys[0], bad} })
		clock.Advance(time.Second)
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrKeyUnavailable) {
			t.Errorf("%s: %v, want ErrKeyUnavailable", name, err)
		}
		if _, err := v.Verify(context.Background(), good); err != nil {
			t.Errorf("%s: old key after a refused set: %v", name, err)
		}
	}
}

func TestJWKSUnavailable(t *testing.T) {
	k := testKeys(t)
	tok := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims(nil))
	huge := []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	for name, setup := range map[string]func(s *jwksServer){
		"status 500":   func(s *jwksServer) { s.status = http.StatusInternalServerError },
		"not JSON":     func(s *jwksServer) { s.body = []byte("<html>") },
		"no keys":      func(s *jwksServer) { s.keys = nil },
		"too large":    func(s *jwksServer) { s.body = huge },
		"only enc key": func(s *jwksServer) { s.keys[0]["use"] = "enc" },
	} {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
			srv.set(setup)
			v, err := New(Config{Algorithms: []string{"RS256"}, JWKSURL: srv.URL, Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), tok)
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrKeyUnavailable) {
				t.Fatalf("Verify error = %v, want ErrInvalid and ErrKeyUnavailable", err)
			}
			// Failed fetches are rate limited too.
			v.Verify(context.Background(), tok)
			if n := srv.hits.Load(); n != 1 {
				t.Errorf("%d JWKS requests, want 1", n)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		v, err := New(Config{Algorithms: []string{"RS256"}, JWKSURL: url, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), tok)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrKeyUnavailable) {
			t.Fatalf("Verify error = %v", err)
		}
	})

	t.Run("canceled context is not recorded", func(t *testing.T) {
		srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
		v, err := New(Config{Algorithms: []string{"RS256"}, JWKSURL: srv.URL, Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrKeyUnavailable) {
			t.Fatalf("Verify with canceled context: %v", err)
		}
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify after a canceled fetch: %v", err)
		}
	})
}

func TestJWKSWithStaticKeys(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
	v, err := New(Config{
		Algorithms: []string{"RS256"},
		PublicKeys: []crypto.PublicKey{&k.rsa2.PublicKey},
		JWKSURL:    srv.URL,
		Now:        fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"JWKS kid":               mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims(nil)),
		"static key without kid": mint(t, jwt.SigningMethodRS256, k.rsa2, nil, claims(nil)),
		"static key, other kid":  mint(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"kid": "static"}, claims(nil)),
		"JWKS key without kid":   mint(t, jwt.SigningMethodRS256, k.rsa, nil, claims(nil)),
	} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A kid found in the JWKS pins the key: the static key is not tried.
	tok := mint(t, jwt.SigningMethodRS256, k.rsa2, map[string]any{"kid": "k1"}, claims(nil))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("static key under a JWKS kid: %v", err)
	}
}

// The routine refresh runs in the background at JWKSRefresh and stops
// with Close.
func TestJWKSBackgroundRefresh(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"), jwkOf(&k.rsa2.PublicKey, "k2"))
	v, err := New(Config{Algorithms: []string{"RS256"}, JWKSURL: srv.URL, JWKSRefresh: 20 * time.Millisecond, Now: fixedNow, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims(nil))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *jwksServer) { s.keys = s.keys[1:] }) // k1 withdrawn
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := v.Verify(context.Background(), tok); errors.Is(err, ErrInvalid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("withdrawn key still accepted after 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	v.Close()
	time.Sleep(30 * time.Millisecond) // a refresh already started may finish
	n := srv.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if got := srv.hits.Load(); got != n {
		t.Errorf("%d JWKS requests after Close", got-n)
	}
}

func TestJWKSMaxAge(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                          0,
		"no-cache":                  0,
		"public, max-age=600":       10 * time.Minute,
		`max-age="30"`:              30 * time.Second,
		"MAX-AGE=86400000":          maxMaxAge,
		"max-age=-1, s-maxage=1000": 0,
	} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %s, want %s", cc, got, want)
		}
	}
	s := &jwksSource{}
	for age, want := range map[time.Duration]time.Duration{
		0:              DefaultJWKSRefresh,
		time.Second:    minMaxAge,
		time.Hour:      time.Hour,
		48 * time.Hour: maxMaxAge,
	} {
		if got := s.routine(&jwksState{maxAge: age}); got != want {
			t.Errorf("max-age %s: refresh every %s, want %s", age, got, want)
		}
	}
	s.fixed = 2 * time.Minute
	if got := s.routine(&jwksState{maxAge: time.Hour}); got != 2*time.Minute {
		t.Errorf("jwks_refresh does not override max-age: %s", got)
	}
}

// The routine refresh follows the response's Cache-Control max-age.
func TestJWKSFollowsMaxAge(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
	srv.Config.Handler = maxAgeHandler{srv.Config.Handler}
	v, err := New(Config{Algorithms: []string{"RS256"}, JWKSURL: srv.URL, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	tok := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims(nil))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	st := v.static.jwks.cur.Load()
	if st.maxAge != 900*time.Second || v.static.jwks.interval() != 15*time.Minute {
		t.Errorf("max-age %s, interval %s; want 15m", st.maxAge, v.static.jwks.interval())
	}
}

type maxAgeHandler struct{ next http.Handler }

func (h maxAgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=900")
	h.next.ServeHTTP(w, r)
}

func TestJWKSConcurrent(t *testing.T) {
	k := testKeys(t)
	srv := newJWKSServer(t, jwkOf(&k.rsa.PublicKey, "k1"))
	v, err := New(Config{Algorithms: []string{"RS256"}, JWKSURL: srv.URL, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	good := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, claims(nil))
	unknown := mint(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "nope"}, claims(nil))
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			tok := good
			if i%2 == 1 {
				tok = unknown
			}
			_, err := v.Verify(context.Background(), tok)
			if (err == nil) != (tok == good) {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("%d JWKS requests, want 1", n)
	}
}
