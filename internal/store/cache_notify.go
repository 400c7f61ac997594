package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Invalidations. A message on the channel is "<nonce> <account>": every
// gateway that receives it outdates the account's cached sessions and
// then pushes its lease name onto the list <prefix>:{~gw}:ack:<nonce>,
// which the invalidating gateway pops (BLPOP) until every lease that was
// live when it published has answered or run out.

// luaPublish publishes an invalidation and lists the live leases, at one
// Redis time, atomically: a lease registered after this script belongs
// to a gateway that subscribed, and emptied its cache, after the write
// being announced.
//
// KEYS: 1 lease set. ARGV: 1 channel, 2 message.
// Returns {now ms, lease, expiry ms, lease, expiry ms, ...}.
const luaPublish = `
if redis.replicate_commands then redis.replicate_commands() end
redis.call('PUBLISH', ARGV[1], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf', 'WITHSCORES')) do
  out[#out + 1] = v
end
return out
`

var scriptPublish = redis.NewScript(luaPublish)

// ackTTL is how long an ack list outlives its last push.
const ackTTL = time.Minute

func (c *Cached) ackKey(nonce string) string {
	return c.prefix + ":{" + keyEscape("~gw") + "}:ack:" + nonce
}

// Invalidate implements Invalidator: it outdates the account's cached
// sessions here at once, announces the invalidation and waits until
// every gateway holding a live lease has acknowledged it, or its lease
// has run out.
func (c *Cached) Invalidate(ctx context.Context, account string) error {
	if c.table != nil {
		c.table.invalidate(account)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	tctx, cancel := c.withTimeout(ctx)
	v, err := scriptPublish.Run(tctx, c.client, []string{c.leases}, c.channel, nonce+" "+account).Slice()
	cancel()
	if err != nil {
		return unavailable("invalidate", err)
	}
	pending, err := c.leaseDeadlines(v, c.clock())
	if err != nil {
		return unavailable("invalidate", err)
	}
	return c.awaitAcks(ctx, c.ackKey(nonce), pending)
}

// leaseDeadlines turns luaPublish's reply, received at local time recv,
// into each lease's end by the local clock. The lease ends in Redis at
// expiry; recv is no earlier than the script's now, so recv + (expiry -
// now) is no earlier than that end.
func (c *Cached) leaseDeadlines(v []any, recv time.Time) (map[string]time.Time, error) {
	if len(v) < 1 || len(v)%2 != 1 {
		return nil, fmt.Errorf("unexpected reply of %d values", len(v))
	}
	now, ok := asInt(v[0])
	if !ok {
		return nil, errors.New("unexpected reply: bad time")
	}
	out := make(map[string]time.Time, len(v)/2)
	for i := 1; i+1 < len(v); i += 2 {
		exp, err := strconv.ParseFloat(asString(v[i+1]), 64)
		if err != nil {
			return nil, fmt.Errorf("unexpected lease expiry %q", asString(v[i+1]))
		}
		out[asString(v[i])] = recv.Add(millisDur(int64(exp) - now + 1))
	}
	return out, nil
}

// awaitAcks pops acks from key until every pending lease has answered
// or ended. When Redis cannot be asked any more it waits out the leases:
// after their ends no gateway answers from a cache that predates the
// invalidation.
func (c *Cached) awaitAcks(ctx context.Context, key string, pending map[string]time.Time) error {
	for {
		now := c.clock()
		var last time.Time
		wait := time.Duration(-1)
		for id, end := range pending {
			if !now.Before(end) {
				delete(pending, id)
				continue
			}
			if d := end.Sub(now); wait < 0 || d < wait {
				wait = d
			}
			if end.After(last) {
				last = end
			}
		}
		if len(pending) == 0 {
			return nil
		}
		id, err := c.popAck(ctx, key, wait)
		switch {
		case err == nil:
			delete(pending, id)
		case errors.Is(err, redis.Nil): // a lease may have ended: look again
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return sleepUntil(ctx, c.clock, last)
		}
	}
}

// popAck waits up to wait (at least a millisecond: BLPOP reads 0 as for
// ever) for the next ack.
func (c *Cached) popAck(ctx context.Context, key string, wait time.Duration) (string, error) {
	wait = max(wait, time.Millisecond)
	tctx, cancel := context.WithTimeout(ctx, wait+c.timeout)
	defer cancel()
	v, err := c.client.Do(tctx, "BLPOP", key, strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)).StringSlice()
	if err != nil {
		return "", err
	}
	if len(v) != 2 {
		return "", fmt.Errorf("unexpected BLPOP reply of %d values", len(v))
	}
	return v[1], nil
}

// sleepUntil waits until clock reads t or ctx ends.
func sleepUntil(ctx context.Context, clock func() time.Time, t time.Time) error {
	for {
		d := t.Sub(clock())
		if d <= 0 {
			return nil
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// onInvalidation applies a message of the channel, then acknowledges it.
func (c *Cached) onInvalidation(payload string) {
	nonce, account, ok := strings.Cut(payload, " ")
	if !ok || nonce == "" {
		return
	}
	c.table.invalidate(account)
	go c.ack(nonce)
}

func (c *Cached) ack(nonce string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	key := c.ackKey(nonce)
	pipe := c.bg.Pipeline()
	pipe.RPush(ctx, key, c.id)
	pipe.PExpire(ctx, key, ackTTL)
	_, _ = pipe.Exec(ctx) // unacknowledged, the invalidating gateway waits out the lease
}
