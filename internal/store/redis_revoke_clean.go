package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
)

// RevocationCleaner is implemented by stores whose revocations of whole
// accounts end the sessions at once but record them later. Redis
// implements it (redis_revoke.go).
type RevocationCleaner interface {
	// CleanRevoked records up to max sessions that such revocations
	// ended, with their events, and returns how many it looked at: less
	// than max when nothing is left.
	CleanRevoked(ctx context.Context, cfg *policy.Config, max int) (int, error)
	// RevokedQueued receives a value after a revocation through this
	// store left sessions to record.
	RevokedQueued() <-chan struct{}
}

// RevokedQueued implements RevocationCleaner.
func (r *Redis) RevokedQueued() <-chan struct{} { return r.queued }

var _ RevocationCleaner = (*Redis)(nil)

// cleanBatch is how many queued sessions one cleaning script records.
const cleanBatch = 25

// luaRevokeClean records queued sessions of an account's revocation.
//
// KEYS: 1 the queue, 2 pol, 3 the event stream, 4 dl, 5 rv, 6 ord, then
// the declared keys (see declare): the session keys of the queued
// members and the indexes of their users. ARGV: 1 now ("" = Redis TIME),
// 2..8 policy config, 9 the event stream's MAXLEN, 10.. the declared
// names. Returns {recorded, revoked events,
// idle events, absolute events, outbox full 0/1}, or asks for keys.
const luaRevokeClean = luaPrelude + luaEventLib + luaGenEnd + `
evinit(KEYS[3], ARGV[9])
readgen(KEYS[5])
ORD = KEYS[6]
declare(7, 10)
local now = clock(ARGV[1])
local cfg = readcfg(2)
local ovi, ova = readov(KEYS[2])
-- read first: the records, and the users whose index genend needs
local recs = {}
for _, m in ipairs(DM) do
  recs[m] = load(SK[m])
  if recs[m] and recs[m].gen then want(nil, recs[m].u) end
end
local nd = needed()
if nd then return nd end
local n = 0
for _, m in ipairs(DM) do
  redis.call('ZREM', KEYS[1], m)
  local r = recs[m]
  if r and r.gen then
    genend(SK[m], KEYS[4], m, r, inforce(cfg, r, ovi, ova))
    n = n + 1
  end
end
return {n, EVN.revoked, EVN.idle, EVN.absolute, EVN.full}
`

var scriptRevokeClean = redis.NewScript(luaRevokeClean)

// CleanRevoked implements RevocationCleaner: per account with queues
// (the least recently queued first), per queue a read of up to
// cleanBatch members and one script that records them, until max
// sessions or no queue is left. Gateways may clean the same queue at
// once: recording is conditional.
func (r *Redis) CleanRevoked(ctx context.Context, cfg *policy.Config, max int) (int, error) {
	accts, err := r.client.ZRangeWithScores(ctx, revokedQueues(r.prefix), 0, 9).Result()
	if err != nil {
		return 0, unavailable("clean revoked", err)
	}
	done := 0
	for _, a := range accts {
		n, err := r.cleanAccount(ctx, a, cfg, max-done)
		done += n
		if err != nil || done >= max {
			return done, err
		}
	}
	return done, nil
}

// queueGrace is how long an account stays listed with no queue: a
// revocation lists it just before its script makes the queue.
const queueGrace = time.Minute

// cleanAccount records up to max sessions of the queues of the account
// of a (esc(account) -> when last queued), oldest queue first, and drops
// what it emptied.
func (r *Redis) cleanAccount(ctx context.Context, a redis.Z, cfg *policy.Config, max int) (int, error) {
	esc, _ := a.Member.(string)
	k := escapedKeys(r.prefix, esc)
	done := 0
	for done < max {
		ids, err := r.client.ZRange(ctx, k.revokedQueues(), 0, 0).Result()
		if err != nil {
			return done, unavailable("clean revoked", err)
		}
		if len(ids) == 0 {
			if r.resultNow().Before(time.UnixMilli(int64(a.Score)).Add(queueGrace)) {
				return done, nil
			}
			return done, r.unlistAccount(ctx, a)
		}
		n, err := r.cleanStep(ctx, esc, ids[0], cfg, min(cleanBatch, max-done))
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// unlistAccount takes the account of a off the accounts with queues,
// unless a revocation listed it again since.
func (r *Redis) unlistAccount(ctx context.Context, a redis.Z) error {
	err := scriptDueSet.Run(ctx, r.client, []string{revokedQueues(r.prefix)}, a.Member,
		strconv.FormatFloat(a.Score, 'f', -1, 64), "-1").Err()
	if err != nil {
		return unavailable("clean revoked", err)
	}
	return nil
}

// cleanStep records up to batch members of the account's queue id, or
// drops the queue from the account's list when it is empty (a queue is
// never added to).
func (r *Redis) cleanStep(ctx context.Context, esc, id string, cfg *policy.Config, batch int) (int, error) {
	k := escapedKeys(r.prefix, esc)
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	members, err := r.client.ZRange(tctx, k.revokedQueue(id), 0, int64(batch-1)).Result()
	if err != nil {
		return 0, unavailable("clean revoked", err)
	}
	if len(members) == 0 {
		if err := r.client.ZRem(tctx, k.revokedQueues(), id).Err(); err != nil {
			return 0, unavailable("clean revoked", err)
		}
		return 0, nil
	}
	keys := []string{k.revokedQueue(id), k.override(), k.events(), k.deadlines(), k.revocation(), k.order()}
	args := append([]any{r.nowArg()}, cfgArgs(cfg)...)
	args = append(args, r.ev.maxArg())
	users, err := usersOf(tctx, r.client, k, members) // every queued record's index is needed
	if err != nil {
		return 0, unavailable("clean revoked", err)
	}
	raw, err := runDeclared(tctx, r.client, scriptRevokeClean, k, keys, args, declared{members: members, users: users})
	if err != nil {
		return 0, unavailable("clean revoked", err)
	}
	v, ok := replyInts(asSlice(raw), 5)
	if !ok || len(asSlice(raw)) != 5 {
		return 0, unavailable("clean revoked", fmt.Errorf("unexpected reply of %d values", len(v)))
	}
	acct, _ := keyUnescape(esc)
	r.ev.wrote(r, acct, evCounts{revoked: v[1], idle: v[2], absolute: v[3], full: v[4]})
	return len(members), nil
}
