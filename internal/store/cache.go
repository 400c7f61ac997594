package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
)

// Cached is the Redis store with a per-gateway session cache in front
// of Touch: a repeat request of an active session inside the touch
// interval is answered from memory, with no Redis round trip, while
// keeping the guarantee that a revocation which returned 2xx is enforced
// on the next request on every gateway.
//
// How (PERFORMANCE.md has the argument):
//
//   - Every gateway holds a lease in Redis (cacheLease, renewed every
//     quarter lease) and a pub/sub subscription. It answers from its
//     cache only while its lease is valid by its own clock, and only
//     after its subscription has proved alive since the last renewal.
//   - Revoke and SetOverride, through any Cached (also one whose cache
//     is off), publish an invalidation of the account and wait until
//     every gateway with a live lease has acknowledged it or its lease
//     has run out, before they return.
//   - A dropped subscription or a lapsed lease empties the cache before
//     the gateway answers from it again.
//   - Fills are stamped before their Redis read (cacheTable), so a fill
//     that raced with an invalidation is never used.
//
// With Size 0 nothing is cached and no lease is held, but revocations
// still reach the gateways that cache.
type Cached struct {
	*Redis
	table   *cacheTable // nil: cache off
	opts    CacheOptions
	id      string // this gateway's lease name
	channel string
	leases  string // key of the lease set
	bg      redis.UniversalClient

	clock  func() time.Time // the lease clock: local, monotonic
	base   time.Time        // clock reading at construction
	valid  atomic.Int64     // ns after base until which the cache may answer
	offset atomic.Int64     // Redis TIME minus the local clock, ns
	skew   atomic.Int64     // how far offset may be off, ns

	hits, misses atomic.Uint64
}

// CacheOptions configures a Cached store.
type CacheOptions struct {
	// Size is how many sessions the cache holds; 0 turns caching off.
	Size int
	// Lease is how long a gateway's lease lasts; it bounds how long a
	// revocation waits for a gateway that does not answer. Default 2s.
	Lease time.Duration
	// Clock is the local clock the lease is timed by. Default time.Now;
	// it must be monotonic real time (tests slow it down, never stop it).
	Clock func() time.Time
	// Background is the client for the lease, the subscription and the
	// acknowledgements; default the store's. A client of its own keeps
	// them apart from the requests' pool: its failed dials during an
	// outage do not trip the pool's dial circuit breaker, and an
	// exhausted pool does not delay a renewal.
	Background redis.UniversalClient
}

// DefaultCacheSize is the cache size the Caddy module uses.
const DefaultCacheSize = 100_000

// DefaultCacheLease is CacheOptions.Lease when unset.
const DefaultCacheLease = 2 * time.Second

var (
	_ Store       = (*Cached)(nil)
	_ OpaqueStore = (*Cached)(nil)
	_ SecretStore = (*Cached)(nil)
	_ Invalidator = (*Cached)(nil)
)

// Invalidator is implemented by stores whose gateways cache sessions:
// Invalidate makes every gateway forget what it cached of an account
// and returns once they all have (or their leases ran out). The store's
// own Revoke and SetOverride do it; an operation that ends sessions by
// other means (e.g. a session limit evicting the oldest session at
// creation) must call it before it answers.
type Invalidator interface {
	Invalidate(ctx context.Context, account string) error
}

// NewCached returns the cache in front of r. It does no network I/O;
// Run holds the lease and the subscription.
func NewCached(r *Redis, opts CacheOptions) (*Cached, error) {
	if opts.Size < 0 {
		return nil, errors.New("cache size must not be negative")
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultCacheLease
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Background == nil {
		opts.Background = r.client
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	c := &Cached{
		Redis:   r,
		opts:    opts,
		id:      hex.EncodeToString(id[:]),
		channel: r.prefix + ":gw:inv",
		leases:  r.prefix + ":{" + keyEscape("~gw") + "}:leases",
		clock:   opts.Clock,
		base:    opts.Clock(),
		bg:      opts.Background,
	}
	if opts.Size > 0 {
		c.table = newCacheTable(opts.Size)
	}
	return c, nil
}

// Touch implements Store: from the cache when it can answer exactly as
// Redis would without writing, else from Redis, remembering an active
// answer.
func (c *Cached) Touch(ctx context.Context, req *TouchRequest) (TouchResult, error) {
	if c.table == nil || req.Policy == nil || ctx.Err() != nil {
		res, err := c.Redis.Touch(ctx, req)
		if err == nil {
			err = c.evicted(ctx, req.Account, res.Evicted)
		}
		return res, err
	}
	if now, skew, ok := c.sessionNow(); ok {
		if res, ok := c.table.answer(req, now, skew); ok {
			c.hits.Add(1)
			return res, nil
		}
	}
	c.misses.Add(1)
	st := c.table.stamp(req.Account)
	res, err := c.Redis.Touch(ctx, req)
	if err == nil {
		err = c.evicted(ctx, req.Account, res.Evicted)
	}
	switch {
	case err == nil:
		c.table.fill(req, &res, st)
	case errors.Is(err, ErrUnavailable) && ctx.Err() == nil:
		c.valid.Store(0) // Redis is down: answer no session from memory either
	}
	return res, err
}

// Bind implements OpaqueStore: a login that evicted sessions of its user
// answers once every gateway has forgotten them.
func (c *Cached) Bind(ctx context.Context, req *TouchRequest) (OpaqueResult, error) {
	res, err := c.Redis.Bind(ctx, req)
	if err == nil {
		err = c.evicted(ctx, req.Account, res.Evicted)
	}
	return res, err
}

// evicted invalidates account on every gateway when a new session
// evicted others (a session limit), so that none of them answers an
// evicted session from its cache after the creation returned.
func (c *Cached) evicted(ctx context.Context, account string, hashes []string) error {
	if len(hashes) == 0 {
		return nil
	}
	return c.Invalidate(ctx, account)
}

// sessionNow is the store's time for a cached answer and how far it may
// be off; ok is false when the cache may not answer now.
func (c *Cached) sessionNow() (time.Time, time.Duration, bool) {
	local := c.clock()
	if c.since(local) >= c.valid.Load() {
		return time.Time{}, 0, false
	}
	if c.now != nil {
		return c.now(), 0, true
	}
	return local.Add(time.Duration(c.offset.Load())), time.Duration(c.skew.Load()), true
}

// since is t as nanoseconds after base, on the monotonic clock.
func (c *Cached) since(t time.Time) int64 { return int64(t.Sub(c.base)) }

// Serving reports whether the cache may answer now.
func (c *Cached) Serving() bool {
	_, _, ok := c.sessionNow()
	return ok && c.table != nil
}

// CacheStats reports how many touches the cache answered and how many
// went to Redis.
func (c *Cached) CacheStats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// Revoke implements Store: the revocation, then the invalidation of the
// account on every gateway.
func (c *Cached) Revoke(ctx context.Context, req RevokeRequest) (int, error) {
	n, err := c.Redis.Revoke(ctx, req)
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return n, err
	}
	// Not replicated: the master has the revocation, so no cache may
	// keep answering from before it, though the caller is told 503.
	if ierr := c.Invalidate(ctx, req.Account); ierr != nil {
		return 0, ierr
	}
	return n, err
}

// SetOverride implements Store: under apply immediately an override
// changes the policy in force of live sessions, so every gateway forgets
// the account's sessions before it returns.
func (c *Cached) SetOverride(ctx context.Context, account string, ov policy.Override) (policy.Override, error) {
	old, err := c.Redis.SetOverride(ctx, account, ov)
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return old, err
	}
	// not replicated: as in Revoke
	if ierr := c.Invalidate(ctx, account); ierr != nil {
		return policy.Override{}, ierr
	}
	return old, err
}
