package token

import (
	"crypto/sha256"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

const (
	// DefaultCacheSize is the default value of Config.CacheSize.
	DefaultCacheSize = 10000

	// cacheMaxAge bounds how long a verified token is served from the
	// cache, whatever its exp, so that a key removed from a JWKS stops
	// being honoured within this time (the JWKS refresh default).
	cacheMaxAge = DefaultJWKSRefresh
)

// verifiedCache remembers the identities of tokens that passed
// verification, keyed by the SHA-256 of the raw token, so that a token
// seen again skips signature verification and claim parsing. It holds at
// most max entries, the least recently used going first. It never
// returns an entry past the token's exp (or before its nbf or iat, minus
// the leeway) by the verifier's clock. It is safe for concurrent use.
// (golang-lru's expirable cache would start a goroutine per cache that
// never exits, one per config load; the validity window is checked here
// on the verifier's clock instead.)
type verifiedCache struct {
	lru *lru.Cache[[sha256.Size]byte, cacheEntry]
}

// cacheEntry is one verified token.
type cacheEntry struct {
	ident     Identity
	notBefore time.Time // the later of nbf and iat, minus leeway; zero when the token has neither
	notAfter  time.Time // the earlier of exp and the verification time plus cacheMaxAge
}

// newVerifiedCache returns a cache of at most max entries, or nil when
// max is not positive (caching disabled).
func newVerifiedCache(max int) *verifiedCache {
	if max <= 0 {
		return nil
	}
	c, _ := lru.New[[sha256.Size]byte, cacheEntry](max) // errors only for max <= 0
	return &verifiedCache{lru: c}
}

// get returns a copy of the identity verified for the token whose hash is
// key, if it is cached and now is within its validity window. An entry
// whose window has ended is removed.
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) (*Identity, bool) {
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	if !now.Before(e.notAfter) {
		c.lru.Remove(key)
		return nil, false
	}
	if !e.notBefore.IsZero() && now.Before(e.notBefore) {
		return nil, false // clock went back before nbf or iat: verify again
	}
	id := e.ident
	return &id, true
}

// put records a verified identity. notBefore is the later of the token's
// nbf and iat, minus the leeway (zero without either); the entry is never
// served at or after exp nor after now plus cacheMaxAge.
func (c *verifiedCache) put(key [sha256.Size]byte, id *Identity, notBefore, now time.Time) {
	notAfter := id.ExpiresAt
	if limit := now.Add(cacheMaxAge); limit.Before(notAfter) {
		notAfter = limit
	}
	if !now.Before(notAfter) {
		return
	}
	c.lru.Add(key, cacheEntry{ident: *id, notBefore: notBefore, notAfter: notAfter})
}

// len returns the number of entries, for tests.
func (c *verifiedCache) len() int { return c.lru.Len() }
