package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// maxJWKSBytes bounds the size of a JWKS response body.
	maxJWKSBytes = 1 << 20

	// maxJWKSKeys bounds the number of usable keys in a JWKS.
	maxJWKSKeys = 100

	// jwksRetryInterval is the minimum interval between a JWKS fetch and a
	// fetch caused by an unknown kid or by a failed fetch.
	jwksRetryInterval = 30 * time.Second
)

// jwk is a verification key from a JWKS.
type jwk struct {
	key crypto.PublicKey
	alg string // the key's "alg" parameter; empty when unset
}

// jwksCache fetches a JWKS lazily and caches its keys by kid.
type jwksCache struct {
	url     string
	client  *http.Client
	refresh time.Duration
	retry   time.Duration
	now     func() time.Time

	// sem serializes fetches; unlike a mutex, waiting for it honors the
	// caller's context.
	sem chan struct{}

	mu        sync.RWMutex
	keys      map[string][]jwk // by kid; keys without kid are under ""
	fetched   time.Time        // time of the last successful fetch
	attempted time.Time        // time of the last fetch attempt
	err       error            // error of the last attempt; nil after a success
}

func newJWKSCache(url string, client *http.Client, refresh time.Duration, now func() time.Time) *jwksCache {
	if client == nil {
		client = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if refresh <= 0 {
		refresh = DefaultJWKSRefresh
	}
	return &jwksCache{
		url:     url,
		client:  client,
		refresh: refresh,
		retry:   min(refresh, jwksRetryInterval),
		now:     now,
		sem:     make(chan struct{}, 1),
	}
}

// lookup returns the cached keys with the given kid, or all cached keys
// when kid is empty, fetching the JWKS first when the cache is empty or
// stale or, rate limited, when kid is unknown. The returned error is that
// of the last fetch attempt; callers only need it when no key matches.
func (c *jwksCache) lookup(ctx context.Context, kid string) ([]jwk, error) {
	if need, have := c.shouldFetch(kid); need {
		// A caller that already has a usable, merely stale, key does not
		// wait for a fetch in progress.
		if err := c.update(ctx, kid, !have); err != nil && !have {
			return nil, err
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if kid != "" {
		return c.keys[kid], c.err
	}
	var out []jwk
	for _, ks := range c.keys {
		out = append(out, ks...)
	}
	return out, c.err
}

// shouldFetch reports whether a fetch is needed to look up kid and allowed
// by the rate limits, and whether the cache already holds keys for kid.
func (c *jwksCache) shouldFetch(kid string) (need, have bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if kid != "" {
		_, have = c.keys[kid]
	} else {
		have = len(c.keys) > 0
	}
	now := c.now()
	if !c.attempted.IsZero() {
		since := now.Sub(c.attempted)
		if since >= 0 && since < c.retry {
			return false, have
		}
	}
	switch {
	case c.fetched.IsZero():
		need = true
	case now.Sub(c.fetched) >= c.refresh || now.Before(c.fetched):
		need = true
	default:
		need = !have
	}
	return need, have
}

// update fetches the JWKS unless another caller did while this one waited.
// When wait is false and another fetch is in progress, it returns at once.
// A failed fetch keeps the previous keys. update only returns an error when
// ctx ended before the fetch could complete; such an attempt is not
// recorded, so a client that hangs up cannot delay the next fetch.
func (c *jwksCache) update(ctx context.Context, kid string, wait bool) error {
	if wait {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w: waiting for jwks: %w", ErrInvalid, ErrKeyUnavailable, ctx.Err())
		}
	} else {
		select {
		case c.sem <- struct{}{}:
		default:
			return nil
		}
	}
	defer func() { <-c.sem }()
	if need, _ := c.shouldFetch(kid); !need {
		return nil
	}
	started := c.now()
	keys, err := c.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w: fetching jwks: %w", ErrInvalid, ErrKeyUnavailable, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempted = started
	if err != nil {
		c.err = fmt.Errorf("fetching jwks: %w", err)
		return nil
	}
	c.keys, c.fetched, c.err = keys, started, nil
	return nil
}

// fetch downloads and parses the JWKS.
func (c *jwksCache) fetch(ctx context.Context) (map[string][]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("response is larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// rawJWK holds the JWK parameters this package reads.
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS parses a JWK Set. Keys that are not for signatures, of an
// unsupported type or invalid are skipped; a set without any usable key is
// an error.
func parseJWKS(body []byte) (map[string][]jwk, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding jwks: %w", err)
	}
	keys := make(map[string][]jwk)
	n := 0
	for _, raw := range doc.Keys {
		var k rawJWK
		if err := json.Unmarshal(raw, &k); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if len(k.KeyOps) > 0 && !slices.Contains(k.KeyOps, "verify") {
			continue
		}
		if len(k.Kid) > maxKIDLength {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			continue
		}
		if k.Alg != "" {
			a, ok := algorithms[k.Alg]
			if !ok || !a.accepts(key) {
				continue
			}
		}
		if n++; n > maxJWKSKeys {
			return nil, fmt.Errorf("jwks has more than %d keys", maxJWKSKeys)
		}
		keys[k.Kid] = append(keys[k.Kid], jwk{key: key, alg: k.Alg})
	}
	if n == 0 {
		return nil, errors.New("jwks has no usable signing keys")
	}
	return keys, nil
}

// publicKey builds the public key described by k: RSA (n, e), EC (crv
// P-256, P-384 or P-521, x, y) or OKP (crv Ed25519, x).
func (k rawJWK) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64(k.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("invalid RSA modulus")
		}
		e, err := b64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("invalid RSA exponent")
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() > 1<<31-1 {
			return nil, errors.New("invalid RSA exponent")
		}
		return checkPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())})
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, errors.New("unsupported EC curve")
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("invalid EC point")
		}
		point := make([]byte, 0, 1+2*size)
		point = append(point, 4)
		point = append(point, x...)
		point = append(point, y...)
		return ecdsa.ParseUncompressedPublicKey(curve, point)
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, errors.New("unsupported OKP curve")
		}
		x, err := b64(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("invalid Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported key type")
}

// b64 decodes unpadded base64url, tolerating trailing padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
