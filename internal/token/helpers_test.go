package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock of the tests.
var testNow = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return testNow }

var testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

type testKeySet struct {
	rsa      *rsa.PrivateKey
	rsa2     *rsa.PrivateKey // attacker / second key
	ec       *ecdsa.PrivateKey
	ec384    *ecdsa.PrivateKey
	ed       ed25519.PrivateKey
	rsaPEM   []byte // PKIX PEM of rsa.Public()
	edPublic ed25519.PublicKey
}

var (
	keysOnce sync.Once
	tk       testKeySet
)

// testKeys generates the test keys once per test binary.
func testKeys(t testing.TB) *testKeySet {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		tk.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		tk.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		tk.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tk.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		tk.edPublic, tk.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		der, err := x509.MarshalPKIXPublicKey(&tk.rsa.PublicKey)
		must(err)
		tk.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	return &tk
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// claims returns a JSON payload: the valid defaults overridden by over. A
// nil value deletes a claim; a json.RawMessage is inserted verbatim.
func claims(over map[string]any) string {
	m := map[string]any{
		"sid":  "s1",
		"sub":  "u1",
		"acct": "a1",
		"iat":  testNow.Add(-time.Minute).Unix(),
		"exp":  testNow.Add(time.Hour).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// mint signs payload with method and key. header entries override the
// default {"alg": method, "typ": "JWT"}; a nil value deletes an entry.
func mint(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, payload string) string {
	t.Helper()
	h := map[string]any{"alg": method.Alg(), "typ": "JWT"}
	for k, v := range header {
		if v == nil {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	hb, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	ss := b64url(hb) + "." + b64url([]byte(payload))
	sig, err := method.Sign(ss, key)
	if err != nil {
		t.Fatal(err)
	}
	return ss + "." + b64url(sig)
}

// unsigned builds a token with an arbitrary header and signature.
func unsigned(header, payload string, sig []byte) string {
	return b64url([]byte(header)) + "." + b64url([]byte(payload)) + "." + b64url(sig)
}

// jwkOf returns the JWK of a public key with the given kid.
func jwkOf(key any, kid string) map[string]any {
	m := map[string]any{"kid": kid}
	switch k := key.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64url(k.N.Bytes())
		m["e"] = b64url(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		b, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		size := (len(b) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		m["x"] = b64url(b[1 : 1+size])
		m["y"] = b64url(b[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64url(k)
	default:
		panic("unsupported key")
	}
	return m
}
