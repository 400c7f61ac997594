package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// Opaque-cookie lookups through the pointer. The pointer of a session
// hash and the account's keys are in different slots (on Redis Cluster;
// everywhere, a script is given only keys it declares), so a lookup
// through the pointer takes two round trips: HMGET of the pointer, then
// the touch script in the account's slot. Each gateway therefore
// remembers, for a short while, which account and user the pointer of a
// hash named (pointerCache), and goes straight to the account's slot:
// one round trip.
//
// The remembered account is only a hint. The touch script finds the
// session record by the hash inside that account's keys; it answers
// "unbound" when there is none, and then the lookup forgets the hint,
// reads the pointer and runs the script once more in the account it
// names. A record under the hinted account is always the hash's current
// session: a bind that moves a hash to another account deletes the
// record under the account the pointer named before (pointHash), before
// it moves the pointer. A revoked or expired session keeps its record
// (or loses it) exactly as without the hint, so the hint never lets a
// revoked or unbound session through. The remembered user only names
// the index the script is given; a record of another user asks for its
// own (redis_declare.go), one round trip more.

// Pointer cache bounds: entries live pointerCacheTTL, at most
// pointerCacheSize of them (least recently used go first). About 100
// bytes each with short account ids (10 MB at the cap); account ids of
// the maximum 256 bytes make it about 40-50 MB.
const (
	pointerCacheTTL  = time.Minute
	pointerCacheSize = 100_000
)

// pointerCache is a bounded LRU map from session hash to account and user with a
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
	pointed
	expires time.Time
}

// pointed is what the pointer of a hash names: account and user.
type pointed struct{ account, user string }

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

// get returns the account and user remembered for hash, if any and fresh.
func (c *pointerCache) get(hash string) (pointed, bool) {
	e, ok := c.cache().Get(hash)
	if !ok {
		return pointed{}, false
	}
	if !time.Now().Before(e.expires) {
		c.lru.Remove(hash)
		return pointed{}, false
	}
	return e.pointed, true
}

// put remembers that hash is bound to p.account, for p.user.
func (c *pointerCache) put(hash string, p pointed) {
	l := c.cache() // sets c.ttl
	l.Add(hash, pointerEntry{pointed: p, expires: time.Now().Add(c.ttl)})
}

// forget drops what is remembered for hash.
func (c *pointerCache) forget(hash string) { c.cache().Remove(hash) }

// len is the number of entries, fresh or not.
func (c *pointerCache) len() int { return c.cache().Len() }

// luaOpaquePoint writes the pointer of a hash, the second step of a
// bind, unless it names another account whose record of the hash may
// still exist: then it writes nothing and returns {0, that account}.
//
// KEYS: 1 pointer. ARGV: 1 account, 2 key base, 3 pointer ttl ms, 4
// user, 5... the accounts whose record of the hash is deleted.
// Returns {1} when it wrote the pointer.
const luaOpaquePoint = `
local old = redis.call('HGET', KEYS[1], 'a')
if old and old ~= ARGV[1] then
  local gone = false
  for i = 5, #ARGV do gone = gone or ARGV[i] == old end
  if not gone then return {0, old} end
end
redis.call('DEL', KEYS[1])
-- b: what gateways that read the account's keys from the pointer use
redis.call('HSET', KEYS[1], 'a', ARGV[1], 'u', ARGV[4], 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1}
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

// lookupPointed runs a Lookup: in the remembered account, one round
// trip; else (or when that account has no record of the hash) through
// the pointer, two. A nil reply means unbound.
func (r *Redis) lookupPointed(ctx context.Context, req *TouchRequest, passive, m string) ([]any, error) {
	if p, ok := r.ptrs.get(req.SessionHash); ok {
		reply, err := r.lookupIn(ctx, req, p.account, []string{p.user}, passive, m)
		if err != nil || !unboundReply(reply) {
			return reply, err
		}
		// the hint is stale: the hash was moved, or its record is gone
		r.ptrs.forget(req.SessionHash)
	}
	v, err := r.client.HMGet(ctx, r.opaqueKey(req.SessionHash), "a", "u").Result()
	if err != nil {
		return nil, err
	}
	if len(v) != 2 || v[0] == nil {
		return nil, nil
	}
	var users []string
	if v[1] != nil { // a pointer written before pointers named the user has none
		users = []string{asString(v[1])}
	}
	return r.lookupIn(ctx, req, asString(v[0]), users, passive, m)
}

// lookupIn runs luaOpaqueLookup in the slot of account acct, with the
// indexes of users, and remembers the account and the record's user of
// a bound hash.
func (r *Redis) lookupIn(ctx context.Context, req *TouchRequest, acct string, users []string, passive, m string) ([]any, error) {
	k := r.keys(acct)
	keys := []string{k.session(req.SessionHash), k.override(), k.events(), k.revocation(), k.deadlines(), k.order()}
	args := []any{r.nowArg()}
	args = append(args, cfgArgs(req.Policy)...)
	args = append(args, passive, m, acct, req.touchIntervalArg(), r.ev.maxArg())
	run := func(kk []string, aa []any) (any, error) {
		return r.batch.run(ctx, scriptOpaqueLookup, kk, aa...).Result()
	}
	v, err := runDeclaredBy(run, nil, k, keys, args, declared{users: users})
	if err != nil {
		return nil, err
	}
	reply, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	if len(reply) > 8 && !unboundReply(reply) {
		r.ptrs.put(req.SessionHash, pointed{account: acct, user: asString(reply[8])})
	}
	return reply, nil
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

// errHashMoving: concurrent binds kept moving the hash between accounts.
var errHashMoving = errors.New("the hash kept moving to other accounts")

// pointHash is the second step of a Bind, after the record is written:
// it points the hash at its account. When the pointer names another
// account, the record there is deleted FIRST, and the pointer is moved
// only once every account it named is known to hold no record:
// otherwise a gateway still remembering the old account would reach the
// old session through it (a record under a remembered account must
// always be the hash's current session). On any error this gateway
// forgets its hint. Round trips: one, or three for a move to another
// account.
func (r *Redis) pointHash(ctx context.Context, req *TouchRequest, base string, pttl int64) (err error) {
	defer func() {
		if err != nil {
			r.ptrs.forget(req.SessionHash)
		}
	}()
	args := []any{req.Account, base, pttl, req.User}
	for range needRounds {
		v, err := scriptOpaquePoint.Run(ctx, r.client, []string{r.opaqueKey(req.SessionHash)}, args...).Slice()
		if err != nil {
			return err
		}
		if len(v) < 2 {
			r.ptrs.put(req.SessionHash, pointed{account: req.Account, user: req.User})
			return nil
		}
		old := asString(v[1])
		k := r.keys(old)
		if err := scriptOpaqueUnbind.Run(ctx, r.client, []string{k.session(req.SessionHash)}).Err(); err != nil {
			return err
		}
		args = append(args, old)
	}
	return errHashMoving
}
