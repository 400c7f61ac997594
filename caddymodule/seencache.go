package caddymodule

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// seenCache remembers, for seenTTL and at most seenSize of them (least
// recently used go first), the sessions whose back-channel index entry
// this gateway wrote. The zero value is ready to use and safe for
// concurrent use. (golang-lru's expirable cache would start a goroutine
// per cache, one per config load; the TTL is checked on lookup.)
type seenCache struct {
	once sync.Once
	lru  *lru.Cache[indexKey, time.Time]
}

// indexKey is what an index entry is written for: a session and the
// sid and sub of its token.
type indexKey struct{ account, hash, sid, sub string }

const (
	seenTTL  = 5 * time.Minute
	seenSize = 100_000
)

func (c *seenCache) cache() *lru.Cache[indexKey, time.Time] {
	c.once.Do(func() {
		c.lru, _ = lru.New[indexKey, time.Time](seenSize) // errors only for size <= 0
	})
	return c.lru
}

// seen reports whether key was added less than seenTTL before now.
func (c *seenCache) seen(key indexKey, now time.Time) bool {
	at, ok := c.cache().Get(key)
	return ok && now.Sub(at) < seenTTL && !now.Before(at)
}

// add remembers key as indexed at now.
func (c *seenCache) add(key indexKey, now time.Time) { c.cache().Add(key, now) }
