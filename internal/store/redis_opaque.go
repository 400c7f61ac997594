package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// Opaque-cookie sessions in Redis. Their records are ordinary session
// records in their account's slot (so that listing, revocation and
// policy work on them unchanged); a pointer key in the slot of the
// session hash remembers the account:
//
//	<prefix>:{~<hash>}:o         hash   a account, b key base of the account
//	<prefix>:{~secret}:<name>    string a gateway secret (SecretStore)
//
// '~' is escaped by keyEscape, so no account's hash tag starts with it.
//
// On a single node or with Sentinel, a lookup and a bind are one script
// each, one round trip: the script reads the pointer and reaches the
// account's keys through the key base. Redis Cluster refuses keys of two
// slots in one script, so there a lookup reads the pointer first and a
// bind writes it after the record: two round trips, each atomic, and the
// record is written before the pointer that makes it reachable. A
// gateway remembers the account of the hashes it looked up or bound, so
// that a repeated lookup on Cluster is one round trip too (see
// redis_opaque_cluster.go).

// luaOpaqueLib is luaTouch without creation, for a session found
// through its pointer.
const luaOpaqueLib = luaPrelude + luaEventLib + luaGenEnd + `
local function unbound(now)
  return {4, 0, now, 0, 0, now, now, '', '', '', '', ''}
end

local function opaquetouch(key, polkey, sp, m, now, cfg, passive, acct, interval, evmax)
  -- events (redis_events.go): the account's stream and deadline index
  -- share the slot of its declared keys
  local base = string.sub(sp, 1, -3)
  evinit(base .. 'ev', evmax)
  readgen(base .. 'rv')
  local ovi, ova
  if cfg.immediately then ovi, ova = readov(polkey) end
  local r, why = load(key)
  if r and r.gen then genend(key, sp, base .. 'dl', m, r, inforce(cfg, r, ovi, ova)) end
  if not r then
    if why == 'corrupt' then return {3, 0, now, 0, 0, now, now, acct, '', '', '', ''} end
    return unbound(now)
  end
  if now >= r.rt then
    if r.x == '' then -- event
      local ovi, ova = readov(polkey)
      evend(r, m, now, inforce(cfg, r, ovi, ova))
    end
    evdeadline(base .. 'dl', m, nil)
    redis.call('DEL', key)
    unlist(sp, m)
    return unbound(now)
  end
  local pi, pa = inforce(cfg, r, ovi, ova)
  local st = state(r, now, pi, pa)
  if r.x == '' and st ~= '' then evend(r, m, now, pi, pa) end -- event: ended now
  local dirty = advance(r, st, now, passive, interval, pi)
  local abs = r.c + pa
  local rt = abs + 60000
  local out = {CODES[st], 0, now, pi, pa, r.l + pi, abs, acct, r.u or '', r.role or '', r.name or '', r.email or ''}
  local function withevents()
    out[13], out[14], out[15] = EVN.idle, EVN.absolute, EVN.revoked -- events written
    return out
  end
  -- coalesced: nothing changed, nothing to write (as in luaTouch)
  if not dirty and rt == r.rt then
    if EVN.idle + EVN.absolute + EVN.revoked > 0 then return withevents() end
    return out
  end
  local fresh = rt ~= r.rt or rt - now > TTL_CAP -- as in luaTouch
  redis.call('HSET', key, 'l', int(r.l), 'x', r.x, 'rt', int(rt))
  if fresh then retain(key, sp, m, rt, now) end
  if ttl(rt, now) > 0 then relist(sp, m, r, st, pi, pa, rt, now, fresh) end
  evdeadline(base .. 'dl', m, r, pi, pa)
  return withevents()
end
`

// luaOpaqueLookup is a Lookup on a single node.
//
// KEYS: 1 pointer. ARGV: 1 now, 2..8 policy config, 9 passive 0/1, 10
// index member, 11 touch interval ms, 12 the event stream's MAXLEN (0 =
// no events). Returns {status code (4 = unbound), 0, now, policy idle,
// policy absolute, idle deadline, absolute deadline, account, user,
// role, name, email}, then, when it wrote events, {idle events, absolute
// events, revoked events}.
const luaOpaqueLookup = luaOpaqueLib + `
local now = clock(ARGV[1])
local cfg = readcfg(2)
local p = redis.call('HMGET', KEYS[1], 'a', 'b')
if not p[1] or not p[2] then return unbound(now) end
local b, m = p[2], ARGV[10]
local res = opaquetouch(b .. 's:' .. m, b .. 'pol', b .. 's:', m, now, cfg, ARGV[9] == '1', p[1], tonumber(ARGV[11]) or 0, ARGV[12])
if res[1] == 4 then redis.call('DEL', KEYS[1]) end
return res
`

// luaOpaqueLookupIn is the second step of a Lookup on Redis
// Cluster, in the account's slot.
//
// KEYS: 1 session, 2 pol. ARGV: 1 now, 2 session-key prefix,
// 3..9 policy config, 10 passive 0/1, 11 index member, 12 account, 13
// touch interval ms, 14 the event stream's MAXLEN.
// Returns as luaOpaqueLookup.
const luaOpaqueLookupIn = luaOpaqueLib + `
local now = clock(ARGV[1])
return opaquetouch(KEYS[1], KEYS[2], ARGV[2], ARGV[11], now, readcfg(3), ARGV[10] == '1', ARGV[12], tonumber(ARGV[13]) or 0, ARGV[14])
`

// luaOpaqueBind is Bind: it replaces the record of the hash with a
// new session logged in now and, when KEYS[4] is given (single node),
// writes the pointer too. The session limit is enforced first
// (redis_limit.go): a refused bind writes nothing.
//
// KEYS: 1 session, 2 pol, 3 us (the user's session index), [4
// pointer]. ARGV: 1 now, 2 session-key prefix, 3..9 policy config, 10
// index member, 11 account, 12 key base, 13 user, 14 role, 15 name, 16
// email, 17 ip, 18 user agent, 19..22 limit config, 23 the event
// stream's MAXLEN (its stream and deadline index are <key base>ev and
// <key base>dl, in the slot of the declared keys), 24 pointer given
// 0/1; then the declared keys (see declare): the session keys of the
// user's sessions when the limit needs them.
// Returns {0, 1, now, policy idle, policy absolute, idle deadline,
// absolute deadline, pointer ttl, revoked member...}, or {6, 0, now, ...}
// when the limit refuses it.
const luaOpaqueBind = luaPrelude + luaLimitLib + luaEventLib + luaGenEnd + `
local key, polkey = KEYS[1], KEYS[2]
local now = clock(ARGV[1])
local sp = ARGV[2]
local cfg = readcfg(3)
local m = ARGV[10]
evinit(ARGV[12] .. 'ev', ARGV[23]) -- events
readgen(ARGV[12] .. 'rv')
local ovi, ova = readov(polkey)
local pi, pa = effective(cfg, ovi, ova, 0, 0)
local rt = now + pa + 60000
local ptr = nil
if ARGV[24] == '1' then ptr = KEYS[4] end
ORD = ordkey(sp)
if ptr then declare(5, 25) else declare(4, 25) end
local evicted, asks = admit(KEYS[3], ARGV[12] .. 'dl', polkey, readlimitcfg(19), m, ARGV[13], now, cfg, ovi, ova)
if asks then return needed() end
if not evicted then return {6, 0, now, pi, pa, now + pi, now + pa, 0} end
-- a record of the hash that a revocation of the account ended gets its
-- event before it is replaced
local old = load(key)
if old and old.gen then genend(key, sp, ARGV[12] .. 'dl', m, old, inforce(cfg, old, ovi, ova)) end
redis.call('DEL', key)
redis.call('HSET', key,
  'u', ARGV[13], 'r', ARGV[14], 'n', ARGV[15], 'e', ARGV[16], 'ip', ARGV[17], 'ua', ARGV[18],
  'c', int(now), 'l', int(now), 'pi', int(pi), 'pa', int(pa), 'ci', '0', 'ca', '0',
  'x', '', 'rt', int(rt), 'g', int(GEN.n))
retain(key, sp, m, rt, now)
relist(sp, m, { c = now, l = now, u = ARGV[13] }, '', pi, pa, rt, now, true)
emit('session.created', now, m, ARGV[13], '')
for _, e in ipairs(evicted) do emit('session.revoked', now, e, ARGV[13], 'limit') end
evdeadline(ARGV[12] .. 'dl', m, {x = '', l = now, c = now, u = ARGV[13]}, pi, pa)
dlupkeep(ARGV[12] .. 'dl', ttl(rt, now), now)
-- the pointer outlives any absolute limit the bounds allow
local amax = cfg.amax
if pa > amax then amax = pa end
local pttl = ttl(now + amax + 60000, now)
if ptr then
  redis.call('DEL', ptr)
  redis.call('HSET', ptr, 'a', ARGV[11], 'b', ARGV[12])
  redis.call('PEXPIRE', ptr, int(pttl))
end
local out = {0, 1, now, pi, pa, now + pi, now + pa, pttl}
for _, e in ipairs(evicted) do out[#out + 1] = e end
return out
`

// luaSecret is SecretStore.Secret. KEYS: 1 secret. ARGV: 1 fresh value.
const luaSecret = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`

var (
	scriptOpaqueLookup   = redis.NewScript(luaOpaqueLookup)
	scriptOpaqueLookupIn = redis.NewScript(luaOpaqueLookupIn)
	scriptOpaqueBind     = redis.NewScript(luaOpaqueBind)
	scriptSecret         = redis.NewScript(luaSecret)
)

var (
	_ SecretStore = (*Redis)(nil)
	_ OpaqueStore = (*Redis)(nil)
)

// opaqueKey is the pointer key of an opaque session hash.
func (r *Redis) opaqueKey(hash string) string { return r.prefix + ":{~" + member(hash) + "}:o" }

// cluster reports whether the client is a Redis Cluster client, whose
// scripts may only touch keys of one slot.
func (r *Redis) cluster() bool {
	_, ok := r.client.(*redis.ClusterClient)
	return ok
}

// Lookup implements OpaqueStore in one round trip (on Cluster: one, or
// two when the account of the hash is not remembered).
func (r *Redis) Lookup(ctx context.Context, req *TouchRequest) (OpaqueResult, error) {
	if err := ctx.Err(); err != nil {
		return OpaqueResult{}, err
	}
	if req.Policy == nil {
		return OpaqueResult{}, errNilPolicy
	}
	passive := "0"
	if req.Passive {
		passive = "1"
	}
	m := member(req.SessionHash)
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	var reply []any
	var err error
	if !r.cluster() {
		args := []any{r.nowArg()}
		args = append(args, cfgArgs(req.Policy)...)
		args = append(args, passive, m, req.touchIntervalArg(), r.ev.maxArg())
		reply, err = r.batch.run(tctx, scriptOpaqueLookup, []string{r.opaqueKey(req.SessionHash)}, args...).Slice()
	} else {
		reply, err = r.lookupCluster(tctx, req, passive, m)
		if err == nil && reply == nil {
			return OpaqueResult{TouchResult: TouchResult{Status: session.Unbound, Now: r.resultNow()}}, nil
		}
	}
	if err != nil {
		return OpaqueResult{}, unavailable("opaque lookup", err)
	}
	if len(reply) != 12 && len(reply) != 15 {
		return OpaqueResult{}, unavailable("opaque lookup", fmt.Errorf("unexpected reply of %d values", len(reply)))
	}
	var n [7]int64
	for i := range n {
		v, ok := asInt(reply[i])
		if !ok {
			return OpaqueResult{}, unavailable("opaque lookup", fmt.Errorf("unexpected reply value %d", i))
		}
		n[i] = v
	}
	res := OpaqueResult{TouchResult: TouchResult{Now: time.UnixMilli(n[2])}}
	if n[0] == 4 {
		res.Status = session.Unbound
		return res, nil
	}
	res.Status = statusOf(n[0])
	res.Policy = policy.Policy{Idle: millisDur(n[3]), Absolute: millisDur(n[4])}
	res.IdleExpiresAt, res.AbsoluteExpiresAt = time.UnixMilli(n[5]), time.UnixMilli(n[6])
	res.Account, res.User, res.Role = asString(reply[7]), asString(reply[8]), asString(reply[9])
	res.Name, res.Email = asString(reply[10]), asString(reply[11])
	if len(reply) == 15 {
		idle, _ := asInt(reply[12])
		abs, _ := asInt(reply[13])
		rev, _ := asInt(reply[14])
		r.ev.wrote(r, res.Account, evCounts{idle: idle, absolute: abs, revoked: rev})
	}
	return res, nil
}

// resultNow is the time an answer given without a script is reported at.
func (r *Redis) resultNow() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// Bind implements OpaqueStore in one round trip (on Cluster: two).
func (r *Redis) Bind(ctx context.Context, req *TouchRequest) (OpaqueResult, error) {
	if err := ctx.Err(); err != nil {
		return OpaqueResult{}, err
	}
	if req.Policy == nil {
		return OpaqueResult{}, errNilPolicy
	}
	k := r.keys(req.Account)
	keys := []string{k.session(req.SessionHash), k.override(), k.userIndex(req.User)}
	cluster := r.cluster()
	if !cluster {
		keys = append(keys, r.opaqueKey(req.SessionHash))
	}
	args := []any{r.nowArg(), k.sessionPrefix()}
	args = append(args, cfgArgs(req.Policy)...)
	args = append(args, member(req.SessionHash), req.Account, k.base,
		req.User, req.Role, req.Name, req.Email, req.IP, req.UserAgent)
	args = append(args, limitArgs(req.Policy)...)
	args = append(args, r.ev.maxArg(), boolArg(!cluster))
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	raw, err := runDeclared(tctx, r.client, scriptOpaqueBind, k, keys, args, declared{})
	reply := asSlice(raw)
	if err != nil {
		return OpaqueResult{}, unavailable("opaque bind", err)
	}
	v, ok := replyInts(reply, 8)
	if !ok {
		return OpaqueResult{}, unavailable("opaque bind", fmt.Errorf("unexpected reply of %d values", len(reply)))
	}
	if v[0] == 6 {
		return OpaqueResult{TouchResult: TouchResult{
			Status: session.LimitReached, Now: time.UnixMilli(v[2]),
			Policy:        policy.Policy{Idle: millisDur(v[3]), Absolute: millisDur(v[4])},
			IdleExpiresAt: time.UnixMilli(v[5]), AbsoluteExpiresAt: time.UnixMilli(v[6]),
		}}, nil
	}
	r.ev.wrote(r, req.Account, evCounts{created: 1, revoked: int64(len(reply) - 8), due: time.UnixMilli(min(v[5], v[6]))})
	if cluster {
		if err := r.pointCluster(tctx, req, k.base, v[7]); err != nil {
			return OpaqueResult{}, unavailable("opaque bind", err)
		}
	}
	return OpaqueResult{TouchResult: TouchResult{
		Status:            session.Active,
		Created:           true,
		Now:               time.UnixMilli(v[2]),
		Policy:            policy.Policy{Idle: millisDur(v[3]), Absolute: millisDur(v[4])},
		IdleExpiresAt:     time.UnixMilli(v[5]),
		AbsoluteExpiresAt: time.UnixMilli(v[6]),
		Evicted:           evictedHashes(reply, 8),
	}, Account: req.Account, User: req.User, Role: req.Role, Name: req.Name, Email: req.Email}, nil
}

// Secret implements SecretStore in one round trip. The secret never
// expires; there is one key per name.
func (r *Redis) Secret(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	v, err := scriptSecret.Run(tctx, r.client, []string{r.prefix + ":{~secret}:" + keyEscape(name)}, string(fresh)).Text()
	if err != nil {
		return nil, unavailable("secret", err)
	}
	return []byte(v), nil
}
