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
// session hash remembers the account and user:
//
//	<prefix>:{~<hash>}:o         hash   a account, u user, b key base of the account
//	<prefix>:{~secret}:<name>    string a gateway secret (SecretStore)
//
// '~' is escaped by keyEscape, so no account's hash tag starts with it.
//
// A script is given every key it touches (redis_declare.go), and the
// pointer and the account's keys are in different slots on Redis
// Cluster, so on every deployment a lookup reads the pointer first and
// then runs its script in the account's slot, and a bind writes the
// record first and then the pointer that makes it reachable: each step
// atomic. A gateway remembers the account and user of the hashes it
// looked up or bound, so that a repeated lookup is one round trip (see
// redis_opaque_cluster.go).

// luaOpaqueLookup is luaTouch without creation, for a session found
// through its pointer, in the account's slot.
//
// KEYS: 1 session, 2 pol, 3 the event stream, 4 rv, 5 dl, 6 ord, then
// the declared ones (the index of the record's user). ARGV: 1 now,
// 2..8 policy config, 9 passive 0/1, 10 index member, 11 account, 12
// touch interval ms, 13 the event stream's MAXLEN (0 = no events), then
// the declared names.
// Returns {status code (4 = unbound), 0, now, policy idle, policy
// absolute, idle deadline, absolute deadline, account, user, role, name,
// email}, then, when it wrote events, {idle events, absolute events,
// revoked events}; or asks for the record's user's index (needed).
const luaOpaqueLookup = luaPrelude + luaEventLib + luaGenEnd + `
local function unbound(now)
  return {4, 0, now, 0, 0, now, now, '', '', '', '', ''}
end

local function opaquetouch(key, polkey, dl, m, now, cfg, passive, acct, interval)
  local ovi, ova
  if cfg.immediately then ovi, ova = readov(polkey) end
  local r, why = load(key)
  -- the record's user's index is written below: given, or asked for
  if r then want(nil, r.u) end
  local need = needed()
  if need then return need end
  if r and r.gen then genend(key, dl, m, r, inforce(cfg, r, ovi, ova)) end
  if not r then
    if why == 'corrupt' then return {3, 0, now, 0, 0, now, now, acct, '', '', '', ''} end
    return unbound(now)
  end
  if now >= r.rt then
    if r.x == '' then -- event
      local ovi, ova = readov(polkey)
      evend(r, m, now, inforce(cfg, r, ovi, ova))
    end
    evdeadline(dl, m, nil)
    redis.call('DEL', key)
    unlist(m)
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
  if fresh then retain(key, m, rt, now) end
  if ttl(rt, now) > 0 then relist(m, r, st, pi, pa, rt, now, fresh) end
  evdeadline(dl, m, r, pi, pa)
  return withevents()
end

declare(7, 14)
ORD = KEYS[6]
evinit(KEYS[3], ARGV[13]) -- events (redis_events.go)
readgen(KEYS[4])
local now = clock(ARGV[1])
return opaquetouch(KEYS[1], KEYS[2], KEYS[5], ARGV[10], now, readcfg(2), ARGV[9] == '1', ARGV[11], tonumber(ARGV[12]) or 0)
`

// luaOpaqueBind is the first step of Bind: it replaces the record of the
// hash with a new session logged in now. The session limit is enforced
// first (redis_limit.go): a refused bind writes nothing.
//
// KEYS: 1 session, 2 pol, 3 the event stream, 4 rv, 5 dl, 6 ord, then
// the declared ones (the user's index; the index of the replaced
// record's user when it records that record's end). ARGV: 1 now, 2..8
// policy config, 9 index member, 10 user, 11 role, 12 name, 13 email, 14
// ip, 15 user agent, 16..19 limit config, 20 the event stream's MAXLEN,
// then the declared names.
// Returns {0, 1, now, policy idle, policy absolute, idle deadline,
// absolute deadline, pointer ttl, revoked member...}, or {6, 0, now, ...}
// when the limit refuses it; or asks for a user's index (needed).
const luaOpaqueBind = luaPrelude + luaLimitLib + luaEventLib + luaGenEnd + `
declare(7, 21)
ORD = KEYS[6]
local key, polkey, dl = KEYS[1], KEYS[2], KEYS[5]
local now = clock(ARGV[1])
local cfg = readcfg(2)
local m, user = ARGV[9], ARGV[10]
evinit(KEYS[3], ARGV[20]) -- events
readgen(KEYS[4])
local ovi, ova = readov(polkey)
-- a record of the hash that a revocation of the account ended gets its
-- event before it is replaced, which writes its user's index
local old = load(key)
want(nil, user)
if old and old.gen then want(nil, old.u) end
local need = needed()
if need then return need end
local pi, pa = effective(cfg, ovi, ova, 0, 0)
local rt = now + pa + 60000
local evicted, asks = admit(UK[user], dl, polkey, readlimitcfg(16), m, user, now, cfg, ovi, ova)
if asks then return needed() end
if not evicted then return {6, 0, now, pi, pa, now + pi, now + pa, 0} end
if old and old.gen then genend(key, dl, m, old, inforce(cfg, old, ovi, ova)) end
redis.call('DEL', key)
redis.call('HSET', key,
  'u', user, 'r', ARGV[11], 'n', ARGV[12], 'e', ARGV[13], 'ip', ARGV[14], 'ua', ARGV[15],
  'c', int(now), 'l', int(now), 'pi', int(pi), 'pa', int(pa), 'ci', '0', 'ca', '0',
  'x', '', 'rt', int(rt), 'g', int(GEN.n))
retain(key, m, rt, now)
relist(m, { c = now, l = now, u = user }, '', pi, pa, rt, now, true)
emit('session.created', now, m, user, '')
for _, e in ipairs(evicted) do emit('session.revoked', now, e, user, 'limit') end
evdeadline(dl, m, {x = '', l = now, c = now, u = user}, pi, pa)
dlupkeep(dl, ttl(rt, now), now)
-- the pointer outlives any absolute limit the bounds allow
local amax = cfg.amax
if pa > amax then amax = pa end
local out = {0, 1, now, pi, pa, now + pi, now + pa, ttl(now + amax + 60000, now)}
for _, e in ipairs(evicted) do out[#out + 1] = e end
return out
`

// luaSecret is SecretStore.Secret. KEYS: 1 secret. ARGV: 1 fresh value.
const luaSecret = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`

var (
	scriptOpaqueLookup = redis.NewScript(luaOpaqueLookup)
	scriptOpaqueBind   = redis.NewScript(luaOpaqueBind)
	scriptSecret       = redis.NewScript(luaSecret)
)

var (
	_ SecretStore = (*Redis)(nil)
	_ OpaqueStore = (*Redis)(nil)
)

// opaqueKey is the pointer key of an opaque session hash.
func (r *Redis) opaqueKey(hash string) string { return r.prefix + ":{~" + member(hash) + "}:o" }

// Lookup implements OpaqueStore in one round trip when the gateway
// remembers the account and user of the hash, else two (see
// lookupPointed).
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
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	reply, err := r.lookupPointed(tctx, req, passive, member(req.SessionHash))
	if err == nil && reply == nil {
		return OpaqueResult{TouchResult: TouchResult{Status: session.Unbound, Now: r.resultNow()}}, nil
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

// Bind implements OpaqueStore in two round trips: the record, then the
// pointer (pointHash; more when the hash moves to another account).
func (r *Redis) Bind(ctx context.Context, req *TouchRequest) (OpaqueResult, error) {
	if err := ctx.Err(); err != nil {
		return OpaqueResult{}, err
	}
	if req.Policy == nil {
		return OpaqueResult{}, errNilPolicy
	}
	k := r.keys(req.Account)
	keys := []string{k.session(req.SessionHash), k.override(), k.events(), k.revocation(), k.deadlines(), k.order()}
	args := []any{r.nowArg()}
	args = append(args, cfgArgs(req.Policy)...)
	args = append(args, member(req.SessionHash), req.User, req.Role, req.Name, req.Email, req.IP, req.UserAgent)
	args = append(args, limitArgs(req.Policy)...)
	args = append(args, r.ev.maxArg())
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	out, err := runDeclared(tctx, r.client, scriptOpaqueBind, k, keys, args, declared{users: []string{req.User}})
	if err != nil {
		return OpaqueResult{}, unavailable("opaque bind", err)
	}
	reply, _ := out.([]any)
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
	if err := r.pointHash(tctx, req, k.base, v[7]); err != nil {
		return OpaqueResult{}, unavailable("opaque bind", err)
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
