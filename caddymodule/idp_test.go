package caddymodule_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// With the provider unreachable the config still loads (Provision never
// needs the network), and requests get 503 with Retry-After.
func TestDiscoveryProviderDown(t *testing.T) {
	dead := gatewaytest.FreePorts(t, 1)[0]
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery http://127.0.0.1:%d/realms/main
		}
	}
	reverse_proxy {UPSTREAM}
}`, dead)
	gw := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, t0)
	tok, err := devtoken.Mint([]byte(secret), devtoken.Claims{Session: "s1", User: "alice", Account: "acme", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	r := gw.Do(t, http.MethodGet, "/", tok, nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("provider down: status %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
}

// reauth is what a login redirect for an ended session adds: the IdP must
// authenticate again (JWT mode; an opaque cookie app logs in itself).
func (e *env) reauth() string {
	if e.mode == modeOpaque {
		return ""
	}
	return "&reauth=1"
}

// Session generations through Caddy: a silent re-issue (same sid and
// login time) after idle expiry starts a new session; after logout it
// does not, and a navigation is sent to log in again with reauth=1; a
// fresh login does.
func TestSessionGenerations(t *testing.T) {
	each(t, "", func(t *testing.T, e *env) {
		login := e.Clock.Now()
		tok := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: login})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		e.Clock.Advance(16 * time.Minute) // strict: idle 15m
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 401)
		reissued := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: login})
		wantCode(t, e.Do(t, "GET", "/", reissued, nil), 200)

		wantCode(t, e.Do(t, "POST", "/.session/logout", reissued, nil), 200)
		e.Clock.Advance(time.Minute)
		silent := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: login})
		wantCode(t, e.Do(t, "GET", "/", silent, nil), 401)
		r := e.Do(t, "GET", "/", silent, nil, "Accept", "text/html")
		wantCode(t, r, 302)
		wantHeader(t, r, "Location", "/login?reason=session_revoked&reauth=1")
		fresh := e.mint(t, devtoken.Claims{Session: "sso", LoginAt: e.Clock.Now()})
		wantCode(t, e.Do(t, "GET", "/", fresh, nil), 200)
	})
}

// provider is an in-process OpenID provider stand-in: discovery and JWKS
// over HTTP, keys added and algorithms switched at run time, and an
// outage switch.
type provider struct {
	*httptest.Server
	mu   sync.Mutex
	keys map[string]any // kid -> private key
	algs []string
	down bool
}

func newProvider(t *testing.T) *provider {
	p := &provider{keys: map[string]any{}, algs: []string{"RS256"}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "jwks_uri": p.URL + "/jwks", "id_token_signing_alg_values_supported": p.algs})
		case "/jwks":
			set := jwkset.NewMemoryStorage()
			for kid, k := range p.keys {
				jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
				if err != nil {
					t.Error(err)
				}
				set.KeyWrite(r.Context(), jwk)
			}
			b, _ := set.JSONPublic(r.Context())
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// sign returns an ID-token-like JWT from the provider, signed with kid.
func (p *provider) sign(t *testing.T, m jwt.SigningMethod, kid, sid string, now time.Time) string {
	p.mu.Lock()
	key := p.keys[kid]
	p.mu.Unlock()
	tok := jwt.NewWithClaims(m, jwt.MapClaims{"iss": p.URL, "sub": "alice", "sid": sid, "acct": "acme",
		"iat": now.Unix(), "auth_time": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Through Caddy, with discovery: a key added at the provider is accepted
// within 2 s, a switch to ES256 is picked up from the discovery document,
// and an outage is 503 + Retry-After until the provider is back.
func TestProviderRotationDiscoveryOutage(t *testing.T) {
	p := newProvider(t)
	rsa1, _ := rsa.GenerateKey(rand.Reader, 2048)
	p.set(func(p *provider) { p.keys["r1"] = rsa1 })
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery %s
		}
	}
	reverse_proxy {UPSTREAM}
}`, p.URL)
	gw := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, time.Now())
	now := func() time.Time { return gw.Clock.Now() }
	wantCode(t, gw.Do(t, "GET", "/", p.sign(t, jwt.SigningMethodRS256, "r1", "a", now()), nil), 200)

	rsa2, _ := rsa.GenerateKey(rand.Reader, 2048)
	p.set(func(p *provider) { p.keys["r2"] = rsa2 })
	start := time.Now()
	for {
		r := gw.Do(t, "GET", "/", p.sign(t, jwt.SigningMethodRS256, "r2", "b", now()), nil)
		if r.StatusCode == 200 {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("rotated key refused for 2 s: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
		gw.Clock.Advance(100 * time.Millisecond) // the gateway's clock, which paces refetches
	}
	t.Logf("rotated key accepted after %s", time.Since(start).Round(time.Millisecond))

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.set(func(p *provider) { p.keys["e1"] = ec; p.algs = []string{"ES256", "RS256"} })
	gw.Clock.Advance(1100 * time.Millisecond) // past the refetch limit of the last fetch
	wantCode(t, gw.Do(t, "GET", "/", p.sign(t, jwt.SigningMethodES256, "e1", "c", now()), nil), 200)

	p.set(func(p *provider) { p.down = true })
	rsa3, _ := rsa.GenerateKey(rand.Reader, 2048)
	p.set(func(p *provider) { p.keys["r3"] = rsa3 })
	gw.Clock.Advance(1100 * time.Millisecond)
	r := gw.Do(t, "GET", "/", p.sign(t, jwt.SigningMethodRS256, "r3", "d", now()), nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("provider down, new key: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	wantCode(t, gw.Do(t, "GET", "/", p.sign(t, jwt.SigningMethodRS256, "r1", "e", now()), nil), 200) // cached key
	p.set(func(p *provider) { p.down = false })
	gw.Clock.Advance(1100 * time.Millisecond)
	wantCode(t, gw.Do(t, "GET", "/", p.sign(t, jwt.SigningMethodRS256, "r3", "d", now()), nil), 200)
}
