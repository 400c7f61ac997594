package store

import "github.com/redis/go-redis/v9"

// The Lua scripts of the Redis store. Each one is a single EVALSHA (with
// go-redis' EVAL fallback after NOSCRIPT), runs atomically and touches
// the keys of one account only, which share a Cluster slot (see
// redis_keys.go).
//
// They implement exactly the rules of session.Record, policy.Config.
// Effective, PolicyInForce and Retention, in integer milliseconds. Lua
// numbers are doubles: millisecond times and durations are far below 2^53
// and exact; integers are written with string.format('%d') so that they
// never turn into "1.8e+12".
//
// Session hash fields: u user, r role, n name, e email, ip, ua, c login
// ms, l last seen ms, pi/pa snapshot idle/absolute ms, ci/ca claimed
// idle/absolute ms (0 = absent), x ended status ("" active, "idle",
// "absolute", "revoked"; anything else counts as revoked), rt retention
// ms. A record missing a numeric field is corrupt and counts as revoked.
//
// Time: ARGV "now" is milliseconds since the epoch, or "" to take it from
// Redis TIME, so that every gateway uses the same clock. Physical expiry
// (PEXPIRE) is always set relative to that now (ttl = rt - now), never as
// an absolute PEXPIREAT: with a gateway clock that is skewed or injected
// (tests, fixed clocks), an absolute expiry would make Redis drop
// records, revoked ones included, long before their logical retention.
// With the Redis clock the two are the same.

// luaPrelude holds the helpers every script shares.
const luaPrelude = `
if redis.replicate_commands then redis.replicate_commands() end

-- Longest TTL put on any key (10 years). Retention beyond a session's
-- absolute deadline only decides between the ended states, so capping it
-- never lets a session back in.
local TTL_CAP = 315360000000

local function int(x) return string.format('%d', x) end

local function clock(arg)
  if arg ~= '' then
    local n = tonumber(arg)
    if n then return n end
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Seven ARGV from i on: apply (1 = immediately), default idle, default
-- absolute, idle min, idle max, absolute min, absolute max (ms).
local function readcfg(i)
  return {
    immediately = ARGV[i] == '1',
    di = tonumber(ARGV[i+1]), da = tonumber(ARGV[i+2]),
    imin = tonumber(ARGV[i+3]), imax = tonumber(ARGV[i+4]),
    amin = tonumber(ARGV[i+5]), amax = tonumber(ARGV[i+6]),
  }
end

local function clamp(d, lo, hi)
  if d < lo then return lo end
  if d > hi then return hi end
  return d
end

-- policy.Config.Effective: per field the override, else the claim when
-- positive, else the default; clamped; idle capped at absolute.
local function effective(cfg, ovi, ova, ci, ca)
  local i, a = cfg.di, cfg.da
  if ovi then i = ovi elseif ci > 0 then i = ci end
  if ova then a = ova elseif ca > 0 then a = ca end
  i = clamp(i, cfg.imin, cfg.imax)
  a = clamp(a, cfg.amin, cfg.amax)
  if i > a then i = a end
  return i, a
end

-- The override, as numbers or nil (absent or unparsable: inherit).
local function readov(polkey)
  local p = redis.call('HMGET', polkey, 'idle_ms', 'abs_ms')
  return tonumber(p[1]), tonumber(p[2])
end

-- The record fields load reads, in order; listing reads ip and ua too.
local RECF = {'c', 'l', 'pi', 'pa', 'ci', 'ca', 'x', 'rt', 'u', 'r', 'n', 'e', 'xe', 'g'}
local LISTF = {'c', 'l', 'pi', 'pa', 'ci', 'ca', 'x', 'rt', 'u', 'r', 'n', 'e', 'xe', 'g', 'ip', 'ua'}

-- The account's revocation generation (redis_revoke.go), from its rv
-- hash: n the generation new records get, g the one below which records
-- are revoked. Every script that loads records reads it first; record()
-- refuses to run without it.
local GEN = nil
local function readgen(key)
  local v = redis.call('HMGET', key, 'n', 'g')
  GEN = {key = key, n = tonumber(v[1]) or 0, g = tonumber(v[2]) or 0}
end

-- The time and author of the revocation that ended a record stamped g:
-- the next generation's (fields t<g+1> and b<g+1> of rv).
local function genended(g)
  local v = redis.call('HMGET', GEN.key, 't' .. int(g + 1), 'b' .. int(g + 1))
  return tonumber(v[1]), v[2] or ''
end

-- record builds the record of an HMGET of RECF (or LISTF), or returns
-- nil and 'missing' / 'corrupt'.
local function record(f)
  local any = false
  for i = 1, 9 do if f[i] then any = true end end
  if not any then return nil, 'missing' end
  local r = {
    c = tonumber(f[1]), l = tonumber(f[2]), pi = tonumber(f[3]), pa = tonumber(f[4]),
    ci = tonumber(f[5]), ca = tonumber(f[6]), x = f[7], rt = tonumber(f[8]), u = f[9],
    role = f[10], name = f[11], email = f[12], xe = tonumber(f[13]), g = tonumber(f[14]) or 0,
  }
  if not (r.c and r.l and r.pi and r.pa and r.ci and r.ca and r.rt and r.x) then
    return nil, 'corrupt'
  end
  if r.x == 'active' then r.x = '' end
  if r.x ~= '' and r.x ~= 'idle' and r.x ~= 'absolute' then r.x = 'revoked' end
  if not GEN then error('sessionguard: a record loaded before the generation') end
  if r.x == '' and r.g < GEN.g then
    -- revoked by a revocation of the account, not recorded yet: gen
    -- marks it for genend (redis_events.go)
    local at, by = genended(r.g)
    r.x, r.xe, r.gen, r.by = 'revoked', at or r.l, true, by
  end
  return r
end

-- load returns the record at key, or nil and 'missing' / 'corrupt'.
local function load(key) return record(redis.call('HMGET', key, unpack(RECF))) end

-- store.PolicyInForce.
local function inforce(cfg, r, ovi, ova)
  if cfg.immediately then return effective(cfg, ovi, ova, r.ci, r.ca) end
  return r.pi, r.pa
end

-- session.Record.State: ended is final; absolute before idle; a deadline
-- equal to now has passed.
local function state(r, now, pi, pa)
  if r.x ~= '' then return r.x end
  if now >= r.c + pa then return 'absolute' end
  if now >= r.l + pi then return 'idle' end
  return ''
end

local CODES = { [''] = 0, idle = 1, absolute = 2, revoked = 3 }

-- session.Record.Restarts: whether a token issued at iat for the login
-- at login starts a new generation of r, ended in state st.
local function restarts(r, st, pi, pa, iat, login)
  if st == 'idle' then return iat > r.l + pi end
  if st == 'absolute' then return login > r.c + pa end
  return login > (r.xe or r.l)
end

local function ttl(at, now)
  local d = at - now
  if d > TTL_CAP then d = TTL_CAP end
  return d
end

-- Keep the index alive at least d ms more (PTTL is -1 on an index that
-- has no expiry yet), after a write that added or extended one member.
local function extendindex(idx, d)
  local cur = redis.call('PTTL', idx)
  if cur < d then redis.call('PEXPIRE', idx, int(d)) end
end

-- session.Record.Touch on a loaded record r whose state at now is st:
-- an ended state is final; an active one has last seen moved to now
-- unless passive or coalesced (less than interval since it, the interval
-- capped at a quarter of idle). Returns whether r changed.
local function advance(r, st, now, passive, interval, pi)
  if st ~= '' then
    local changed = r.x ~= st
    r.x = st
    return changed
  end
  if not passive and now > r.l and now - r.l >= math.min(interval, math.floor(pi / 4)) then
    r.l = now
    return true
  end
  return false
end

-- The listing indexes (redis_page.go) live next to the session keys:
-- ORD lists the account's sessions by login, UK[user] a user's live
-- sessions by deadline (also the session limit's, redis_limit.go).

-- Declared keys (redis_declare.go): a script touches only keys it is
-- given in KEYS. Beyond its fixed ones, those are the session keys of
-- index members and the per-user indexes of users, named in ARGV: SK[m]
-- and UK[user] are their keys, ORD the account's ord. A script that
-- meets a member or user it was not given asks for it (want) before it
-- writes anything, and returns needed(); the gateway runs it again with
-- them.
local SK, UK, ORD, DM = {}, {}, nil, {}
local function declare(ki, ai)
  local ns, nu = tonumber(ARGV[ai]) or 0, tonumber(ARGV[ai + 1]) or 0
  for j = 1, ns do
    SK[ARGV[ai + 1 + j]] = KEYS[ki + j - 1]
    DM[j] = ARGV[ai + 1 + j] -- the declared members, in order
  end
  for j = 1, nu do UK[ARGV[ai + 1 + ns + j]] = KEYS[ki + ns + j - 1] end
end
local NEEDM, NEEDU = {}, {}
local function want(m, user)
  if m and not SK[m] then NEEDM[#NEEDM + 1] = m; SK[m] = false end
  if user and not UK[user] then NEEDU[#NEEDU + 1] = user; UK[user] = false end
end
-- the reply asking for what want found missing, or nil
local function needed()
  if #NEEDM == 0 and #NEEDU == 0 then return nil end
  return {-1, NEEDM, NEEDU}
end
-- The index of user, which the script must have been given.
local function ukey(user)
  local k = UK[user]
  if not k then error('sessionguard: the index of a user not declared') end
  return k
end

-- Take session m off the listing indexes (it ended or is gone).
local function unlist(m, user)
  redis.call('ZREM', ORD, m)
  if user then redis.call('ZREM', ukey(user), m) end
end

-- After a write of record r (session m, state st under pi/pa, retention
-- rt): a live session is listed in ord by login and in its user's us by
-- deadline, so that ZCOUNT us (now, +inf) is the user's live sessions;
-- an ended one leaves both. A session that ends by time without a write
-- keeps a us score <= now, which ZCOUNT skips; it stays a member (a
-- longer override under apply immediately may make it live again, and a
-- revocation of the user walks us), until the limit's upkeep finds it
-- ended (redis_limit.go) or the key expires.
local function relist(m, r, st, pi, pa, rt, now, fresh)
  if st ~= '' then
    unlist(m, r.u)
    return
  end
  local ord, ul = ORD, ukey(r.u)
  redis.call('ZADD', ord, int(r.c), m)
  redis.call('ZADD', ul, int(math.min(r.l + pi, r.c + pa)), m)
  -- the indexes' lifetimes change only with a new session or retention
  -- (fresh), not with every recorded activity
  if not fresh then return end
  local d = ttl(rt, now)
  extendindex(ord, d)
  extendindex(ul, d)
end

-- After a write of the session at key: keep it until its retention rt;
-- drop it when rt has already passed. (A record whose retention has
-- passed is absent to every script, whether Redis has expired it yet or
-- not; index members left behind are dropped where they are met.)
local function retain(key, m, rt, now)
  local d = ttl(rt, now)
  if d > 0 then
    redis.call('PEXPIRE', key, int(d))
  else
    redis.call('DEL', key)
    unlist(m)
  end
end
`

// luaTouch is Memory.Touch.
//
// KEYS: 1 session, 2 pol, 3 cut, 4 uc (of the request's user), 5 rv
// (the account's revocation generation, redis_revoke.go), 6 us (the
// user's session index, redis_limit.go).
// ARGV: 1 now ("" = Redis TIME), 2..8 policy config (see readcfg), 9
// login ms, 10 not-after ms, 11 passive 0/1, 12 claimed idle ms, 13
// claimed absolute ms, 14 index member, 15 user, 16 role, 17 name, 18
// email, 19 ip, 20 user agent, 21 touch interval ms, 22 iat ms, 23..26
// limit config (see readlimitcfg). Events (redis_events.go): KEYS 7 the
// account's event stream, 8 its deadline index; ARGV 27 the stream's
// MAXLEN (0 = no events). KEYS 9 ord; then the declared keys (KEYS 10..,
// ARGV 28..; see declare): the session keys of the user's other
// sessions when the limit needs them, the index of the record's user
// when that is not the request's.
//
// Returns {-1, members, users[, the reply so far]} when it needs keys
// it was not given (see declare), else {status code, created 0/1, now, policy idle, policy absolute,
// idle deadline, absolute deadline, idle events, absolute events,
// created + 2^10 * revoked events + 2^20 when the outbox was full}, all
// integers (ms), then on
// creation the members of the sessions it revoked to stay within the
// limit.
// Status codes: 0 active, 1 idle, 2 absolute, 3 revoked, 5 wrong user, 6
// limit reached (nothing written but index upkeep).
//
// Idempotent under retries: creation is conditional and last-seen only
// moves forward. A touch that changes nothing (last seen moved by less
// than the touch interval, or passive, state and retention unchanged)
// only reads: the common request writes nothing.
const luaTouch = luaPrelude + luaLimitLib + luaEventLib + luaGenEnd + `
local key, polkey, cutkey, uckey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
evinit(KEYS[7], ARGV[27]) -- events: each emit below is the transition's own
readgen(KEYS[5])
ORD, UK[ARGV[15]] = KEYS[9], KEYS[6]
declare(10, 28)
local now = clock(ARGV[1])
local cfg = readcfg(2)
local login, notafter = tonumber(ARGV[9]), tonumber(ARGV[10])
local passive = ARGV[11] == '1'
local ci, ca = tonumber(ARGV[12]), tonumber(ARGV[13])
local m = ARGV[14]
local interval = tonumber(ARGV[21]) or 0
local iat = tonumber(ARGV[22]) or 0
-- The override matters on creation and, under apply immediately, on
-- every request; apply next_login keeps the snapshot, so the common
-- request does not read it.
local ovi, ova
if cfg.immediately then ovi, ova = readov(polkey) end
local function readovonce()
  if not cfg.immediately then ovi, ova = readov(polkey) end
end

-- a reply with the events written so far
local function reply(code, created, pi, pa, idl, abd)
  return {code, created, now, pi, pa, idl, abd, EVN.idle, EVN.absolute, EVN.created + EVN.revoked * 2^10 + EVN.full * 2^20}
end

local r, why = load(key)
-- another user's record may leave that user's index: declared first
if r and r.u ~= ARGV[15] then want(nil, r.u) end
local nd = needed()
if nd then return nd end
if r and r.gen then genend(key, KEYS[8], m, r, inforce(cfg, r, ovi, ova)) end
if not r and why == 'corrupt' then
  evdeadline(KEYS[8], m, nil) -- counts as revoked: not live
  readovonce()
  local pi, pa = effective(cfg, ovi, ova, ci, ca)
  return {3, 0, now, pi, pa, now + pi, now + pa, 0, 0, 0}
end
if r and now >= r.rt then
  -- retention passed: the record is absent, as in the memory store
  if r.x == '' then evend(r, m, now, inforce(cfg, r, ovi, ova)) end -- event
  evdeadline(KEYS[8], m, nil)
  redis.call('DEL', key)
  unlist(m)
  r = nil
end
if r then
  local pi, pa = inforce(cfg, r, ovi, ova)
  local st = state(r, now, pi, pa)
  if st ~= '' and restarts(r, st, pi, pa, iat, login) then
    if r.x == '' then
      evend(r, m, now, pi, pa) -- event of the old generation
      redis.call('HSET', key, 'x', st) -- once, also when this run asks for keys
    end
    r = nil
  end
end
-- a live session belongs to the user it was created for (WrongUser); an
-- ended one answers with its end whoever asks
if r and r.x == '' and r.u ~= ARGV[15] then return {5, 0, now, 0, 0, now, now, 0, 0, 0} end

local created, evicted = 0, nil
if not r then
  readovonce()
  local pi, pa = effective(cfg, ovi, ova, ci, ca)
  if login > now then login = now end
  -- session.Before: cutoffs at millisecond precision
  local revoked = false
  local cut = tonumber(redis.call('GET', cutkey))
  if cut and login < cut then revoked = true end
  if not revoked then
    local uc = tonumber(redis.call('GET', uckey))
    -- a user cutoff lasts the longest absolute limit
    if uc and now < uc + cfg.amax and login < uc then revoked = true end
  end
  if revoked then
    return reply(3, 0, pi, pa, now + pi, login + pa)
  end
  -- the session limit (redis_limit.go)
  local asks
  evicted, asks = admit(KEYS[6], KEYS[8], polkey, readlimitcfg(23), m, ARGV[15], now, cfg, ovi, ova)
  if asks then
    nd = needed()
    nd[4] = reply(0, 0, pi, pa, 0, 0) -- the events written so far
    return nd
  end
  if not evicted then return reply(6, 0, pi, pa, now + pi, login + pa) end
  r = { c = login, l = now, pi = pi, pa = pa, ci = ci, ca = ca, x = '', u = ARGV[15], g = GEN.n }
  created = 1
  -- a session born past its absolute deadline (an old login seen after
  -- its record is gone) never lived: no events
  r.x = state(r, now, pi, pa)
end

local pi, pa = inforce(cfg, r, ovi, ova)
local st = state(r, now, pi, pa)
if r.x == '' and st ~= '' then evend(r, m, now, pi, pa) end -- event: ended now
local dirty = advance(r, st, now, passive, interval, pi) or created == 1

local abs = r.c + pa
local rt = abs
if notafter > rt then rt = notafter end
rt = rt + 60000
-- coalesced: nothing changed, nothing to write
if not dirty and rt == r.rt then
  return reply(CODES[st], 0, pi, pa, r.l + pi, abs)
end

if created == 1 then
  redis.call('DEL', key)
  redis.call('HSET', key,
    'u', ARGV[15], 'r', ARGV[16], 'n', ARGV[17], 'e', ARGV[18], 'ip', ARGV[19], 'ua', ARGV[20],
    'c', int(r.c), 'l', int(r.l), 'pi', int(r.pi), 'pa', int(r.pa), 'ci', int(r.ci), 'ca', int(r.ca),
    'x', r.x, 'rt', int(rt), 'g', int(r.g))
else
  redis.call('HSET', key, 'l', int(r.l), 'x', r.x, 'rt', int(rt))
end
-- An unchanged retention leaves the key's expiry and index score as
-- they are (HSET keeps the TTL), unless the TTL was capped.
local fresh = created == 1 or rt ~= r.rt or rt - now > TTL_CAP
if fresh then retain(key, m, rt, now) end
if ttl(rt, now) > 0 then relist(m, r, st, pi, pa, rt, now, fresh) end
evdeadline(KEYS[8], m, r, pi, pa)
if fresh then dlupkeep(KEYS[8], ttl(rt, now), now) end
if created == 1 then -- events
  if r.x == '' then emit('session.created', now, m, ARGV[15], '') end
  for _, e in ipairs(evicted) do emit('session.revoked', now, e, ARGV[15], 'limit') end
end
local out = reply(CODES[st], created, pi, pa, r.l + pi, abs)
if created == 1 then
  for _, e in ipairs(evicted) do out[#out + 1] = e end
end
return out
`

// luaPageMembers returns the members of ord after the cursor, the first
// step of a listing call (redis_page.go): it reads ord only, so that the
// gateway can then give luaSessions the keys of exactly these sessions.
//
// KEYS: 1 ord. ARGV: 1 cursor login ms, 2 cursor member ("" = from the
// start), 3 limit.
//
// Returns {member, score, ...} of up to limit members, in ord's order.
const luaPageMembers = `
if redis.replicate_commands then redis.replicate_commands() end
local ord = KEYS[1]
local limit = tonumber(ARGV[3])
-- The rank after the cursor (cs, cm): put cm in ord at score cs for a
-- moment (it may have left, or moved, meanwhile) and read how many
-- members come before it; then restore what was there, and count cm
-- itself when its real place is at or before the cursor.
local first = 0
if ARGV[2] ~= '' then
  local cs, cm = tonumber(ARGV[1]), ARGV[2]
  local had = tonumber(redis.call('ZSCORE', ord, cm))
  redis.call('ZADD', ord, ARGV[1], cm)
  first = redis.call('ZRANK', ord, cm)
  if had then
    redis.call('ZADD', ord, string.format('%d', had), cm)
    if had <= cs then first = first + 1 end
  else
    redis.call('ZREM', ord, cm)
  end
end
return redis.call('ZRANGE', ord, first, first + limit - 1, 'WITHSCORES')
`

// luaSessions returns the live sessions among the members luaPageMembers
// found, after pruning: it takes the gone or finally ended ones off ord
// (and their user's index) as it meets them. A member no longer at the
// score it was found at left ord or moved meanwhile, and is skipped: a
// session that moved is met again further on. Its work is bounded by the
// members it is given, whatever the size of the account.
//
// KEYS: 1 rv (redis_revoke.go), 2 pol, 3 ord, then the declared keys
// (declare). ARGV: 1 now ("" = Redis TIME), 2..8 policy config, 9 n,
// 10..9+2n member and its ord score, n pairs, then the declared names.
// A member not declared is skipped; it asks for the users of those it
// unlists or counts before it writes.
//
// Returns {now, override idle ms or "", override absolute ms or "",
// {member, {values of LISTF}, ...} of the live sessions,
// {user, live sessions of the user, ...} of their users}, or needed().
const luaSessions = luaPrelude + `
ORD = KEYS[3]
readgen(KEYS[1])
local now = clock(ARGV[1])
local cfg = readcfg(2)
local n = tonumber(ARGV[9])
declare(4, 10 + 2 * n)
local p = redis.call('HMGET', KEYS[2], 'idle_ms', 'abs_ms')
local ovi, ova = tonumber(p[1]), tonumber(p[2])

-- Read only, first: each member still where it was found, its record
-- and what to do with it, and the users whose index that touches.
local todo = {}
for j = 1, n do
  local m, score = ARGV[8 + 2 * j], tonumber(ARGV[9 + 2 * j])
  if SK[m] and tonumber(redis.call('ZSCORE', ORD, m)) == score then
    local f = redis.call('HMGET', SK[m], unpack(LISTF))
    local r = record(f)
    local act = 'drop' -- gone, or its retention passed
    if r and now < r.rt then
      local pi, pa = inforce(cfg, r, ovi, ova)
      -- ended for good (a state reached only by time may be undone by a
      -- longer override under apply immediately: it stays listed)
      if r.x ~= '' then act = 'end'
      elseif state(r, now, pi, pa) == '' then act = 'live'
      else act = nil end
      if act then want(nil, r.u) end
    end
    if act then todo[#todo + 1] = {m = m, f = f, r = r, act = act} end
  end
end
local ask = needed()
if ask then return ask end

local live, users, counted = {}, {}, {}
for _, t in ipairs(todo) do
  if t.act == 'drop' then
    unlist(t.m)
  elseif t.act == 'end' then
    unlist(t.m, t.r.u)
  else
    live[#live + 1] = t.m
    live[#live + 1] = t.f
    local u = t.r.u
    if not counted[u] then
      counted[u] = true
      users[#users + 1] = u
      users[#users + 1] = redis.call('ZCOUNT', UK[u], '(' .. int(now), '+inf')
    end
  end
end
return {now, p[1] or '', p[2] or '', live, users}
`

// luaSetOverride replaces the override and returns the old one.
//
// KEYS: 1 pol, 2 the event stream. ARGV: 1 idle ms or "" (inherit), 2
// absolute ms or "", 3 session limit or "", 4 on_limit or "", 5 now, 6
// the event stream's MAXLEN (0 = no events).
// Returns the old values in the same order, "" for inherited, then the
// count of policy.update events written (a change writes one; a retry,
// which changes nothing, none) and outbox full 0/1.
const luaSetOverride = luaPrelude + luaEventLib + `
evinit(KEYS[2], ARGV[6])
local names = {'idle_ms', 'abs_ms', 'max_s', 'on_lim'}
local old = redis.call('HMGET', KEYS[1], unpack(names))
local changed = false
for i = 1, #names do
  if (old[i] or '') ~= ARGV[i] then changed = true end
end
if changed then emit('policy.update', clock(ARGV[5]), '', '', '') end
for i = 1, #names do
  if ARGV[i] == '' then
    redis.call('HDEL', KEYS[1], names[i])
  else
    redis.call('HSET', KEYS[1], names[i], ARGV[i])
  end
end
return {old[1] or '', old[2] or '', old[3] or '', old[4] or '', EVN.policy, EVN.full}
`

var (
	scriptTouch       = redis.NewScript(luaTouch)
	scriptPageMembers = redis.NewScript(luaPageMembers)
	scriptSessions    = redis.NewScript(luaSessions)
	scriptSetOverride = redis.NewScript(luaSetOverride)
)
