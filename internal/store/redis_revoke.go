package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Revocation in the Redis store. Ending one session or the sessions of
// one user is one script over those sessions. Ending a whole account
// (scopes all and others) reads no session at all: each account keeps a
// revocation generation in <prefix>:{<acct>}:rv (a hash: n the
// generation a new record is stamped with, in its field g; g the
// generation below which records are revoked; t<g> and b<g> when and by
// whom generation g began, which is when the records stamped g-1
// ended). The
// revocation raises both, so every script that loads a record of the
// account treats a lower-stamped live one as revoked (record in
// redis_scripts.go). Its count is the account's deadline index dl above
// now (the live sessions, as of their last write), and dl itself is
// renamed to the revocation's queue <prefix>:{<acct>}:rq:<g>; the
// session kept by scope others is stamped with the new generation and
// put back. A background loop on every gateway (CleanRevoked) then
// records the queued sessions in bounded steps, with their events, and
// takes them off the per-user indexes; any script that meets such a
// record first records it itself (genend in redis_events.go).

// luaRevokeSessions ends one session (scope session), or is one step of
// ending the sessions of one user (scope user). The first step only
// sets the user's cutoff, so that no session of an earlier login is
// created after the walk has read past its place; each next step ends
// the sessions that logged in at or before it among the members of the
// user's index (redis_limit.go) that one ZSCAN of about revokeBatch
// returned to the gateway, so no step grows with the user, until the
// ZSCAN's cursor is "0"; the revocation answers after the last step. A session that logs in during the walk with a
// later login is left alone; one with an earlier login is refused by
// the cutoff when it is first seen.
//
// KEYS: 1 rv, 2 pol, 3 uc and 4 us (of ARGV user; unused unless scope
// user), 5 the event stream, 6 the deadline index, 7 ord, then the
// declared keys (see declare): the session keys of the candidates and
// the indexes of their users. ARGV: 1 now ("" = Redis TIME), 2..8
// policy config, 9 scope, 10 user, 11 by, 12 the event stream's MAXLEN
// (0 = no events), 13 the cutoff ("" on the first step), 14.. the
// declared names; the members are the candidates
// (scope session: the one to end; the first that exists wins).
//
// Returns {count of live sessions ended, revoked events, idle events,
// absolute events, outbox full 0/1, cutoff}, or asks for keys before it
// writes.
const luaRevokeSessions = luaPrelude + luaPresent + luaEventLib + luaGenEnd + `
local polkey, uckey, dl = KEYS[2], KEYS[3], KEYS[6]
evinit(KEYS[5], ARGV[12])
readgen(KEYS[1])
local scope, user = ARGV[9], ARGV[10]
ORD = KEYS[7]
if scope == 'user' then UK[user] = KEYS[4] end
declare(8, 14)
local now = clock(ARGV[1])
local cfg = readcfg(2)
local ovi, ova = readov(polkey)

local members = DM
if scope == 'session' then
  members = {}
  for _, m in ipairs(DM) do
    if present(SK[m], now) then
      members = {m}
      break
    end
  end
end
-- read first: the records, and the users whose index an end needs
local recs, whys = {}, {}
for _, m in ipairs(members) do
  recs[m], whys[m] = load(SK[m])
  if recs[m] then want(nil, recs[m].u) end
end
local nd = needed()
if nd then return nd end

local cut = now
if scope == 'user' then
  cut = tonumber(ARGV[13])
  if not cut then -- the first step
    cut = now
    if cfg.amax > 0 then
      redis.call('SET', uckey, int(now), 'PX', int(math.min(cfg.amax, TTL_CAP)))
    else
      redis.call('DEL', uckey)
    end
  end
end

local n = 0
for _, m in ipairs(members) do
  local key, r, why = SK[m], recs[m], whys[m]
  if r and now < r.rt then
    local pi, pa = inforce(cfg, r, ovi, ova)
    if r.gen then
      genend(key, dl, m, r, pi, pa) -- the account's revocation ended it
    elseif scope ~= 'user' or (r.u == user and r.c <= cut) then
      local st = state(r, now, pi, pa)
      if st == '' then n = n + 1 end
      if r.x == '' then
        -- event: revoked when live, else the expiry it reached unobserved
        if st == '' then emit('session.revoked', now, m, r.u, ARGV[11]) else evend(r, m, now, pi, pa) end
        redis.call('HSET', key, 'x', 'revoked', 'xe', int(now))
        unlist(m, r.u)
        evdeadline(dl, m, nil)
      end
    end
  elseif why == 'missing' then
    unlist(m)
  end
end
return {n, EVN.revoked, EVN.idle, EVN.absolute, EVN.full, int(cut)}
`

// luaRevokeAccount ends every session of the account (scope all) or
// every one but the first candidate present (scope others) without
// reading them; see the top of this file.
//
// KEYS: 1 pol, 2 cut, 3 ord, 4 dl, 5 rv, 6 rqs (the account's queues
// left to record), 7 a new queue, 8.. the session keys of the
// candidates. ARGV: 1 now ("" = Redis TIME), 2..8 policy config, 9
// scope, 10 by, 11 the new queue's id, 12.. the candidates' index
// members.
//
// Returns the count of live sessions ended.
const luaRevokeAccount = luaPrelude + luaPresent + `
local polkey, cutkey, ord, dl, rv = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
readgen(rv)
local now = clock(ARGV[1])
local cfg = readcfg(2)
local d = TTL_CAP -- how long a cutoff or a queue must be kept
if cfg.amax > 0 then d = math.min(cfg.amax + 60000, TTL_CAP) end

-- the cutoff refuses tokens that logged in before it and were not seen
local cut = now
local old = tonumber(redis.call('GET', cutkey))
if old and old > cut then cut = old end
if cfg.amax > 0 then
  redis.call('SET', cutkey, int(cut), 'PX', int(math.min(cfg.amax, TTL_CAP)))
else
  redis.call('SET', cutkey, int(cut))
end

-- the session others keeps (nothing to keep when it has ended already)
local keep, kkey, kr, kd, klive = nil, nil, nil, nil, false
if ARGV[9] == 'others' then
  for i = 12, #ARGV do
    local key = KEYS[i - 4]
    if present(key, now) then
      local r = load(key)
      if r and r.x == '' then
        local pi, pa = inforce(cfg, r, readov(polkey))
        keep, kkey, kr, kd = ARGV[i], key, r, math.min(r.l + pi, r.c + pa)
        klive = state(r, now, pi, pa) == ''
      end
      break
    end
  end
end

-- the new generation, with the time and author of this revocation (the
-- end of the records it ends), kept for the last 1000
local g = GEN.n + 1
redis.call('HSET', rv, 'n', g, 'g', g, 't' .. int(g), int(cut), 'b' .. int(g), ARGV[10])
redis.call('HDEL', rv, 't' .. int(g - 1000), 'b' .. int(g - 1000))
local n = redis.call('ZCOUNT', dl, '(' .. int(now), '+inf')
if redis.call('EXISTS', dl) == 1 then
  redis.call('RENAME', dl, KEYS[7])
  redis.call('PEXPIRE', KEYS[7], int(d))
  redis.call('ZADD', KEYS[6], int(now), ARGV[11])
  extendindex(KEYS[6], d)
end
redis.call('UNLINK', ord)
if keep then
  if klive then n = n - 1 end
  redis.call('HSET', kkey, 'g', g)
  redis.call('ZADD', dl, int(kd), keep)
  redis.call('ZADD', ord, int(kr.c), keep)
  extendindex(dl, ttl(kr.rt, now))
  extendindex(ord, ttl(kr.rt, now))
end
if n < 0 then n = 0 end
return n
`

// luaPresent is whether a session key holds a record whose retention
// has not passed at now (one that has is absent, as in the memory
// store, though Redis may not have expired it yet).
const luaPresent = `
local function present(key, now)
  if redis.call('EXISTS', key) == 0 then return false end
  local rt = tonumber(redis.call('HGET', key, 'rt'))
  return not rt or now < rt
end
`

var (
	scriptRevokeSessions = redis.NewScript(luaRevokeSessions)
	scriptRevokeAccount  = redis.NewScript(luaRevokeAccount)
)

// Revoke implements Store: one script for a session or a whole account,
// one per revokeBatch of the user's sessions for a user, all on one
// connection to the master and then one wait for replicas
// (redis_wait.go), the answer after it. A revocation of the whole
// account queues its sessions for CleanRevoked before it runs, so that a
// gateway that stops between the two leaves work for the others, not a
// lost queue.
func (r *Redis) Revoke(ctx context.Context, req RevokeRequest) (int, error) {
	if err := checkRevoke(ctx, &req); err != nil {
		return 0, err
	}
	if req.Scope == ScopeAll || req.Scope == ScopeOthers {
		return r.revokeAccount(ctx, &req)
	}
	st := revokeStep{}
	total := 0
	var stepErr error
	err := r.onMaster(ctx, r.keys(req.Account).revocation(), func(sc redis.Cmdable) error {
		for st.Cursor != "0" {
			if stepErr = ctx.Err(); stepErr != nil {
				return stepErr
			}
			n, err := r.revokeStep(ctx, sc, &req, &st)
			if stepErr = err; err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	switch {
	case stepErr != nil:
		return 0, stepErr
	case err != nil:
		return 0, unavailable("revoke", err)
	}
	return total, nil
}

// revokeBatch is about how many members of a user's index one step of a
// revocation of the user examines.
const revokeBatch = 50

// revokeStep is where a revocation walking a user's index is: Cursor
// and Cut are "" before the first step, Cursor "0" when done.
type revokeStep struct{ Cursor, Cut string }

// revokeStep runs one step of luaRevokeSessions on sc and advances st.
func (r *Redis) revokeStep(ctx context.Context, sc redis.Cmdable, req *RevokeRequest, st *revokeStep) (int, error) {
	k := r.keys(req.Account)
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	var d declared
	next := ""
	if req.Scope != ScopeUser || st.Cut != "" {
		var err error
		if d, next, err = r.revokeCandidates(tctx, sc, k, req, st.Cursor); err != nil {
			return 0, unavailable("revoke", err)
		}
	} // else the user's cutoff first: a login the walk's reads miss is refused after it
	keys := []string{k.revocation(), k.override(), k.userCutoff(req.User), k.userIndex(req.User), k.events(), k.deadlines(), k.order()}
	args := append([]any{r.nowArg()}, cfgArgs(req.Policy)...)
	args = append(args, string(req.Scope), req.User, revokedBy(req.By), r.ev.maxArg(), st.Cut)
	raw, err := runDeclared(tctx, sc, scriptRevokeSessions, k, keys, args, d)
	if err != nil {
		return 0, unavailable("revoke", err)
	}
	v := asSlice(raw)
	if len(v) != 6 {
		return 0, unavailable("revoke", fmt.Errorf("unexpected reply of %d values", len(v)))
	}
	n, ok := replyInts(v, 5)
	cut, okCut := asInt(v[5])
	if !ok || !okCut {
		return 0, unavailable("revoke", fmt.Errorf("unexpected reply %v", v))
	}
	r.ev.wrote(r, req.Account, evCounts{revoked: n[1], idle: n[2], absolute: n[3], full: n[4]})
	st.Cursor, st.Cut = next, strconv.FormatInt(cut, 10)
	return int(n[0]), nil
}

// revokeCandidates are the sessions one step looks at and the cursor
// after it: for scope user the next ZSCAN of the user's index, for
// scope session the request's hashes and its user's index.
func (r *Redis) revokeCandidates(ctx context.Context, sc redis.Cmdable, k redisKeys, req *RevokeRequest, cursor string) (declared, string, error) {
	if req.Scope != ScopeUser {
		var d declared
		for _, h := range req.Sessions {
			d.members = append(d.members, member(h))
		}
		if req.User != "" { // usually the sessions' user; the script asks for another
			d.users = []string{req.User}
		}
		return d, "0", nil
	}
	c, _ := strconv.ParseUint(cursor, 10, 64)
	members, next, err := sc.ZScan(ctx, k.userIndex(req.User), c, "", revokeBatch).Result()
	if err != nil {
		return declared{}, "", err
	}
	var d declared
	for i := 0; i < len(members); i += 2 { // member, score
		d.members = append(d.members, members[i])
	}
	return d, strconv.FormatUint(next, 10), nil
}

// candidates appends the session keys of hashes to keys and their index
// members to args.
func (r *Redis) candidates(k redisKeys, hashes []string, keys []string, args []any) ([]string, []any) {
	for _, h := range hashes {
		keys = append(keys, k.session(h))
		args = append(args, member(h))
	}
	return keys, args
}

// listQueued adds account to the accounts with queues to record. On
// Cluster that set lives on another shard than the account, which the
// revocation's own wait does not cover: there it waits for that
// shard's replicas too.
func (r *Redis) listQueued(ctx context.Context, account string) error {
	tctx, cancel := r.withRevokeTimeout(ctx)
	defer cancel()
	entry := redis.Z{Score: float64(r.resultNow().UnixMilli()), Member: keyEscape(account)}
	if _, cluster := r.client.(*redis.ClusterClient); !cluster {
		return r.client.ZAdd(tctx, revokedQueues(r.prefix), entry).Err()
	}
	return r.onMaster(tctx, revokedQueues(r.prefix), func(c redis.Cmdable) error {
		return c.ZAdd(tctx, revokedQueues(r.prefix), entry).Err()
	})
}

// revokeAccount registers the account with the queues to clean, then
// runs luaRevokeAccount with a new queue. The entry comes first, so that
// a gateway that stops between the two leaves no queue unknown; an entry
// with no queue left is dropped by CleanRevoked.
func (r *Redis) revokeAccount(ctx context.Context, req *RevokeRequest) (int, error) {
	k := r.keys(req.Account)
	if err := r.listQueued(ctx, req.Account); err != nil {
		return 0, unavailable("revoke", err)
	}
	tctx, cancel := r.withRevokeTimeout(ctx)
	defer cancel()
	id := rand.Text()
	keys := []string{k.override(), k.cutoff(), k.order(), k.deadlines(), k.revocation(), k.revokedQueues(), k.revokedQueue(id)}
	args := append([]any{r.nowArg()}, cfgArgs(req.Policy)...)
	args = append(args, string(req.Scope), revokedBy(req.By), id)
	keys, args = r.candidates(k, req.Sessions, keys, args)
	n, err := r.runReplicated(tctx, scriptRevokeAccount, keys, args...).Int64()
	if err == nil || errors.Is(err, ErrNotReplicated) {
		select {
		case r.queued <- struct{}{}:
		default:
		}
	}
	if err != nil {
		return 0, unavailable("revoke", err)
	}
	return int(n), nil
}
