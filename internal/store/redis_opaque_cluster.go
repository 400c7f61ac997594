package store

import (
	"context"
	"errors"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// Opaque-cookie lookups on Redis Cluster. The pointer of a session hash
// and the account's keys are in different slots, so a lookup through
// the pointer takes two round trips: HGET of the pointer, then the touch
// script in the account's slot. Each gateway therefore remembers, for a
// short while, which account the pointer of a hash named (pointerCache),
// and goes straight to the account's slot: one round trip.
//
// The remembered account is only a hint. The touch script finds the
// session record by the hash inside that account's keys; it answers
// "unbound" when there is none, and then the lookup forgets the hint,
// reads the pointer and runs the script once more in the account it
// names. A record under the hinted account is always the hash's current
// session: a bind that moves a hash to another account deletes the
// record under the account the pointer named before (pointCluster),
// before it moves the pointer. A revoked or expired session keeps its
// record (or loses it) exactly as without the hint, so the hint never
// lets a revoked or unbound session through.

// Pointer cache bounds: entries live pointerCacheTTL, at most
// pointerCacheSize of them (least recently used go first). About 100
// bytes each with short account ids (10 MB at the cap); account ids of
// the maximum 256 bytes make it about 40-50 MB.
const (
	pointerCacheTTL  = time.Minute
	pointerCacheSize = 100_000
)

// pointerCache is a bounded LRU map from session hash to account with a
// TTL per entry. The zero value is ready to use; it is safe for
// concurrent use. (golang-lru's expirable cache would start a goroutine
// per cache that never exits, one per config load; the TTL is checked
// on get instead.)
type pointerCache struct {
	once sync.Once
	lru  *lru.Cache[string, pointerEntry]

	// size and ttl override the defaults when non-zero (tests).
	size int
	ttl  time.Duration
}

type pointerEntry struct {
	account string
	expires time.Time
}

// cache returns the LRU, made on first use.
func (c *pointerCache) cache() *lru.Cache[string, pointerEntry] {
	c.once.Do(func() {
		if c.size <= 0 {
			c.size = pointerCacheSize
		}
		if c.ttl <= 0 {
			c.ttl = pointerCacheTTL
		}
		c.lru, _ = lru.New[string, pointerEntry](c.size) // errors only for size <= 0
	})
	return c.lru
}

// get returns the account remembered for hash, if any and fresh.
func (c *pointerCache) get(hash string) (string, bool) {
	e, ok := c.cache().Get(hash)
	if !ok {
		return "", false
	}
	if !time.Now().Before(e.expires) {
		c.lru.Remove(hash)
		return "", false
	}
	return e.account, true
}

// put remembers that hash is bound to account.
func (c *pointerCache) put(hash, account string) {
	l := c.cache() // sets c.ttl
	l.Add(hash, pointerEntry{account: account, expires: time.Now().Add(c.ttl)})
}

// forget drops what is remembered for hash.
func (c *pointerCache) forget(hash string) { c.cache().Remove(hash) }

// len is the number of entries, fresh or not.
func (c *pointerCache) len() int { return c.cache().Len() }

// luaOpaquePoint writes the pointer of a hash on Redis Cluster, the
// second step of a bind, and returns the account it named before (false
// when none).
//
// KEYS: 1 pointer. ARGV: 1 account, 2 key base, 3 pointer ttl ms.
const luaOpaquePoint = `
local old = redis.call('HGET', KEYS[1], 'a')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'a', ARGV[1], 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return old
`

// luaOpaqueUnbind deletes the record of a hash in an account it has
// moved away from. KEYS: 1 session.
const luaOpaqueUnbind = `
redis.call('DEL', KEYS[1])
return 0
`

var (
	scriptOpaquePoint  = redis.NewScript(luaOpaquePoint)
	scriptOpaqueUnbind = redis.NewScript(luaOpaqueUnbind)
)

// lookupCluster runs a Lookup on Redis Cluster: in the remembered
// account, one round trip; else (or when that account has no record of
// the hash) through the pointer, two. A nil reply means unbound.
func (r *Redis) lookupCluster(ctx context.Context, req *TouchRequest, passive, m string) ([]any, error) {
	if acct, ok := r.ptrs.get(req.SessionHash); ok {
		reply, err := r.lookupIn(ctx, req, acct, passive, m)
		if err != nil || !unboundReply(reply) {
			return reply, err
		}
		// the hint is stale: the hash was moved, or its record is gone
		r.ptrs.forget(req.SessionHash)
	}
	acct, err := r.client.HGet(ctx, r.opaqueKey(req.SessionHash), "a").Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	reply, err := r.lookupIn(ctx, req, acct, passive, m)
	if err == nil && !unboundReply(reply) {
		r.ptrs.put(req.SessionHash, acct)
	}
	return reply, err
}

// lookupIn runs luaOpaqueLookupIn in the slot of account acct.
func (r *Redis) lookupIn(ctx context.Context, req *TouchRequest, acct, passive, m string) ([]any, error) {
	k := r.keys(acct)
	args := []any{r.nowArg(), k.sessionPrefix()}
	args = append(args, cfgArgs(req.Policy)...)
	args = append(args, passive, m, acct, req.touchIntervalArg(), r.ev.maxArg())
	return r.batch.run(ctx, scriptOpaqueLookupIn, []string{k.session(req.SessionHash), k.override()}, args...).Slice()
}

// unboundReply reports whether a lookup script answered "unbound"
// (status code 4).
func unboundReply(reply []any) bool {
	if len(reply) == 0 {
		return false
	}
	code, ok := asInt(reply[0])
	return ok && code == 4
}

// pointCluster is the second step of a Bind on Redis Cluster,
// after the record is written: it points the hash at its account. When
// the hash was bound to another account before, the record there is
// deleted FIRST, and the pointer is not moved if that fails: otherwise a
// gateway still remembering the old account would reach the old session
// through it (a record under a remembered account must always be the
// hash's current session). The pointer script returns the account it
// replaced; if a concurrent bind moved the hash in between, that
// account's record is deleted too. On any error this gateway forgets its
// hint. Round trips: two for a first bind, three or four for a rebind to
// another account.
func (r *Redis) pointCluster(ctx context.Context, req *TouchRequest, base string, pttl int64) (err error) {
	defer func() {
		if err != nil {
			r.ptrs.forget(req.SessionHash)
		}
	}()
	unbind := func(acct string) error {
		k := r.keys(acct)
		err := scriptOpaqueUnbind.Run(ctx, r.client, []string{k.session(req.SessionHash)}).Err()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	}
	prev, err := r.client.HGet(ctx, r.opaqueKey(req.SessionHash), "a").Result()
	switch {
	case errors.Is(err, redis.Nil):
		prev = ""
	case err != nil:
		return err
	case prev != req.Account:
		if err := unbind(prev); err != nil {
			return err
		}
	}
	old, err := scriptOpaquePoint.Run(ctx, r.client, []string{r.opaqueKey(req.SessionHash)}, req.Account, base, pttl).Text()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if err == nil && old != req.Account && old != prev {
		if err := unbind(old); err != nil {
			return err
		}
	}
	r.ptrs.put(req.SessionHash, req.Account)
	return nil
}
