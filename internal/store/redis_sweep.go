package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
)

// The Redis store's sweep of expiries no request observes. The touch and
// revoke scripts keep, per account, the live sessions' next deadlines in
// <prefix>:{<acct>}:dl; the gateway that creates a session lowers the
// account's score in <prefix>:{~due} to that session's first deadline
// (deadlines otherwise only move later, so the score stays a lower
// bound). A sweep takes the due accounts and, per account, the due
// members of dl: never a scan of all sessions.

var _ ExpirySweeper = (*Redis)(nil)

// Sweep bounds: accounts per sweep; sessions per script, and scripts
// per account and sweep.
const (
	sweepAccounts = 100
	sweepSessions = 50
	sweepSteps    = 4
)

// luaSweep ends an account's sessions whose deadline has passed, with
// their events; ending is conditional (x still empty), so two gateways
// sweeping at once end each once.
//
// KEYS: 1 dl, 2 pol, 3 the event stream, 4 rv (redis_revoke.go), 5
// ord, then the declared keys (see declare): the session keys of the
// due members the gateway read from dl, and the indexes of the users of
// those a revocation of the account ended. ARGV: 1 now ("" = Redis
// TIME), 2..8 policy config, 9 the stream's MAXLEN, 10.. the declared
// names. A member no longer due is left alone.
// Returns {ended, idle events, absolute events, outbox full 0/1, the
// earliest deadline left or -1}, or asks for keys.
const luaSweep = luaPrelude + luaEventLib + luaGenEnd + `
local dl, polkey = KEYS[1], KEYS[2]
evinit(KEYS[3], ARGV[9])
readgen(KEYS[4])
ORD = KEYS[5]
declare(6, 10)
local now = clock(ARGV[1])
local cfg = readcfg(2)
local ovi, ova = readov(polkey)
-- read first: the due records, and the users whose index genend needs
local due, recs = {}, {}
for _, m in ipairs(DM) do
  local s = tonumber(redis.call('ZSCORE', dl, m))
  if s and s <= now then
    due[#due + 1] = m
    recs[m] = load(SK[m])
    if recs[m] and recs[m].gen then want(nil, recs[m].u) end
  end
end
local nd = needed()
if nd then return nd end
local ended = 0
for _, m in ipairs(due) do
  local key, r = SK[m], recs[m]
  if r and r.gen then
    genend(key, dl, m, r, inforce(cfg, r, ovi, ova))
  elseif r and r.x == '' then
    local pi, pa = inforce(cfg, r, ovi, ova)
    local st = state(r, now, pi, pa)
    if st ~= '' then
      evend(r, m, now, pi, pa)
      redis.call('HSET', key, 'x', st)
      ended = ended + 1
      r.x = st
    end
    evdeadline(dl, m, r, pi, pa) -- a live one is re-scored (apply immediately)
  else
    redis.call('ZREM', dl, m) -- ended or gone
  end
end
local first = redis.call('ZRANGE', dl, 0, 0, 'WITHSCORES')
local nxt = -1
if #first > 0 then nxt = tonumber(first[2]) end
return {ended, EVN.idle, EVN.absolute, EVN.full, nxt}
`

// luaDueSet moves an account's due score to ARGV 3 (or removes it when
// -1), unless a creation lowered it since the sweep read ARGV 2.
// KEYS: 1 the due zset. ARGV: 1 member, 2 score read, 3 next.
const luaDueSet = `
local s = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not s or s ~= tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[3]) < 0 then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
`

var (
	scriptSweep  = redis.NewScript(luaSweep)
	scriptDueSet = redis.NewScript(luaDueSet)
)

// SweepExpired implements ExpirySweeper: up to sweepAccounts due
// accounts, up to sweepSessions sessions each.
func (r *Redis) SweepExpired(ctx context.Context, cfg *policy.Config) (int, error) {
	if r.ev.max.Load() == 0 {
		return 0, nil
	}
	now := r.nowArg()
	upTo := now
	if upTo == "" { // Redis TIME decides in the script; the gateway's clock picks the accounts
		upTo = timeMillis(time.Now())
	}
	due, err := r.client.ZRangeByScoreWithScores(ctx, dueAccounts(r.prefix), &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: sweepAccounts}).Result()
	if err != nil {
		return 0, unavailable("sweep", err)
	}
	total := 0
	for _, z := range due {
		esc, _ := z.Member.(string)
		n, err := r.sweepAccount(ctx, esc, z.Score, now, upTo, cfg)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// sweepAccount sweeps the members of one account due by upTo (the
// script checks them against its own now), up to sweepSteps scripts of
// sweepSessions, and moves its due score on.
func (r *Redis) sweepAccount(ctx context.Context, esc string, score float64, now, upTo string, cfg *policy.Config) (int, error) {
	k := escapedKeys(r.prefix, esc)
	total, next := 0, int64(-1)
	for range sweepSteps {
		n, nxt, more, err := r.sweepStep(ctx, k, esc, now, upTo, cfg)
		total, next = total+n, nxt
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
	}
	// the earliest deadline left: still due when more were due than swept
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	err := scriptDueSet.Run(tctx, r.client, []string{dueAccounts(r.prefix)}, esc,
		strconv.FormatFloat(score, 'f', -1, 64), strconv.FormatInt(next, 10)).Err()
	if err != nil {
		return total, unavailable("sweep", err)
	}
	return total, nil
}

// sweepStep runs luaSweep on up to sweepSessions due members: it returns
// how many it ended, the earliest deadline left (-1: none) and whether
// a full batch was due.
func (r *Redis) sweepStep(ctx context.Context, k redisKeys, esc, now, upTo string, cfg *policy.Config) (int, int64, bool, error) {
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	due, err := r.client.ZRangeByScore(tctx, k.deadlines(), &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: sweepSessions}).Result()
	if err != nil {
		return 0, -1, false, unavailable("sweep", err)
	}
	keys := []string{k.deadlines(), k.override(), k.events(), k.revocation(), k.order()}
	args := append([]any{now}, cfgArgs(cfg)...)
	args = append(args, r.ev.maxArg())
	raw, err := runDeclared(tctx, r.client, scriptSweep, k, keys, args, declared{members: due})
	if err != nil {
		return 0, -1, false, unavailable("sweep", err)
	}
	v, ok := replyInts(asSlice(raw), 5)
	if !ok || len(asSlice(raw)) != 5 {
		return 0, -1, false, unavailable("sweep", fmt.Errorf("unexpected reply of %d values", len(v)))
	}
	acct, _ := keyUnescape(esc)
	r.ev.wrote(r, acct, evCounts{idle: v[1], absolute: v[2], full: v[3]})
	return int(v[0]), v[4], len(due) == sweepSessions, nil
}
