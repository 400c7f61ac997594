package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The lease and the subscription of a caching gateway.
//
// Run goes through periods. A period is one pub/sub subscription; it
// ends when the subscription reports an error, resubscribes on its own
// (messages may have been missed in between) or stops answering pings.
// Within a period, a heartbeat every quarter lease:
//
//  1. renews the lease (luaRenew: expiry = Redis TIME + lease), sent at
//     local time s, and takes the Redis clock offset from its reply;
//  2. pings the subscription and waits for the pong: every invalidation
//     published before the renewal ran was delivered before that pong
//     and applied (receive handles messages in order);
//  3. lets the cache answer until s + lease - margin by the local clock,
//     which ends before the lease does in Redis. When the previous
//     validity had already run out (a new period, a stopped process, a
//     failed renewal), the cache is emptied first.
//
// So a gateway answers from its cache only while a lease it holds is
// live in Redis, and an invalidation whose publisher saw that lease is
// either applied here or waited out by the publisher (cache_notify.go).

// luaRenew renews a lease and drops those that ended.
//
// KEYS: 1 lease set. ARGV: 1 lease name, 2 lease ms.
// Returns Redis TIME {seconds, microseconds}.
const luaRenew = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local d = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
redis.call('ZADD', KEYS[1], string.format('%d', now + d), ARGV[1])
redis.call('PEXPIRE', KEYS[1], string.format('%d', d + 60000))
return t
`

var scriptRenew = redis.NewScript(luaRenew)

// Run holds the lease and the subscription until ctx ends, and gives
// the lease up then. The cache answers only while Run runs well; with
// the cache off Run returns at once.
func (c *Cached) Run(ctx context.Context) {
	if c.table == nil {
		return
	}
	defer c.down()
	wait := c.opts.Lease / 20
	for ctx.Err() == nil {
		if c.period(ctx) {
			wait = c.opts.Lease / 20
		} else {
			// Redis is down or refusing: back off, so that this loop
			// does not trip go-redis's dial circuit breaker for the
			// requests
			wait = min(2*wait, c.opts.Lease/2)
		}
		c.down()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// down stops cached answers at once and, if they were allowed, gives
// the lease up, so that invalidations stop waiting for this gateway.
func (c *Cached) down() {
	if c.valid.Swap(0) == 0 {
		return // not serving: the lease, if any, runs out on its own
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_ = c.bg.ZRem(ctx, c.leases, c.id).Err()
}

// period runs one subscription until it fails; it reports whether a
// heartbeat succeeded in it.
func (c *Cached) period(ctx context.Context) (served bool) {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps := c.bg.Subscribe(pctx, c.channel)
	defer func() { _ = ps.Close() }()
	pongs := make(chan string, 4)
	lost := make(chan struct{})
	go func() {
		defer close(lost)
		c.receive(pctx, ps, pongs)
	}()
	tick := time.NewTicker(c.opts.Lease / 4)
	defer tick.Stop()
	for c.heartbeat(pctx, ps, pongs, lost) {
		served = served || c.valid.Load() != 0
		select {
		case <-pctx.Done():
			return served
		case <-lost:
			return served
		case <-tick.C:
		}
	}
	return served
}

// receive handles the messages of one subscription in order until it
// fails or resubscribes.
func (c *Cached) receive(ctx context.Context, ps *redis.PubSub, pongs chan<- string) {
	subscribed := false
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" || subscribed {
				return // go-redis reconnected: messages may be lost
			}
			subscribed = true
		case *redis.Message:
			c.onInvalidation(m.Payload)
		case *redis.Pong:
			select {
			case pongs <- m.Payload:
			default:
			}
		}
	}
}

// heartbeat renews the lease and proves the subscription alive; it
// returns false when the period is over. A failed renewal keeps the
// period: the validity then runs out on its own.
func (c *Cached) heartbeat(ctx context.Context, ps *redis.PubSub, pongs <-chan string, lost <-chan struct{}) bool {
	start := c.clock()
	if err := c.renew(ctx, start); err != nil {
		// Redis is not answering: stop answering for it at once, as a
		// gateway without a cache would. The period goes on.
		c.valid.Store(0)
		return ctx.Err() == nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	if err := ps.Ping(ctx, nonce); err != nil {
		return false
	}
	timer := time.NewTimer(c.opts.Lease / 4)
	defer timer.Stop()
	for {
		select {
		case p := <-pongs:
			if p == nonce {
				c.extend(start)
				return true
			}
		case <-lost:
			return false
		case <-timer.C:
			return false // the subscription does not answer
		case <-ctx.Done():
			return false
		}
	}
}

// renew renews the lease, sent at local time start, and updates the
// Redis clock offset: Redis read its TIME between start and the reply.
func (c *Cached) renew(ctx context.Context, start time.Time) error {
	tctx, cancel := c.withTimeout(ctx)
	defer cancel()
	v, err := scriptRenew.Run(tctx, c.bg, []string{c.leases}, c.id, c.opts.Lease.Milliseconds()).Int64Slice()
	end := c.clock()
	if err != nil {
		return err
	}
	if len(v) != 2 {
		return fmt.Errorf("unexpected renewal reply of %d values", len(v))
	}
	half := end.Sub(start) / 2
	redisNow := time.Unix(v[0], v[1]*1000)
	c.offset.Store(int64(redisNow.Sub(start.Add(half))))
	// Redis's millisecond clock: the scripts floor TIME to milliseconds
	c.skew.Store(int64(half + time.Millisecond))
	return nil
}

// extend lets the cache answer until start + lease - margin, emptying
// it first when its validity had run out. margin covers the local clock
// running a little slower than Redis's.
func (c *Cached) extend(start time.Time) {
	margin := c.opts.Lease / 10
	if c.valid.Load() <= c.since(c.clock()) {
		c.table.clear()
	}
	c.valid.Store(c.since(start.Add(c.opts.Lease - margin)))
}
