package store

// The Redis store's lifecycle events. Each script that makes a
// transition appends its event to the account's stream
// <prefix>:{<acct>}:ev (declared in KEYS, in the account's slot) in the
// same execution, and only when the transition happens: creation is
// conditional, an end only when x is still empty, an override change
// only when a field differs. A script that go-redis runs again after a
// timeout finds the transition done and appends nothing, so each
// occurrence has exactly one event whichever gateway made it.
//
// Stream entry fields: t type, at time (ms), m session index member, u
// user, by (session.revoked). Delivery is in redis_outbox.go.

// luaEventLib is shared by the scripts that emit; it needs luaPrelude.
// evinit(key, maxlen) turns emission on (maxlen > 0); EVN counts what was
// written, for the reply.
const luaEventLib = `
local EV = nil
local EVN = {idle = 0, absolute = 0, revoked = 0, policy = 0, created = 0, full = 0}
local EVKIND = {['session.idle_expired'] = 'idle', ['session.absolute_expired'] = 'absolute',
  ['session.revoked'] = 'revoked', ['policy.update'] = 'policy', ['session.created'] = 'created'}

local function evinit(key, maxlen)
  local n = tonumber(maxlen) or 0
  if key and n > 0 then EV = {key = key, max = n} end
end

-- emit appends one event; the stream keeps about EV.max entries, and
-- EVN.full says it was full (the oldest may go undelivered).
local function emit(typ, at, m, u, by)
  if not EV then return end
  if redis.call('XLEN', EV.key) >= EV.max then EVN.full = 1 end
  redis.call('PERSIST', EV.key) -- a drained stream expires (redis_outbox.go); not with events in it
  redis.call('XADD', EV.key, 'MAXLEN', '~', EV.max, '*', 't', typ, 'at', int(at), 'm', m, 'u', u or '', 'by', by)
  local k = EVKIND[typ]
  EVN[k] = EVN[k] + 1
end

-- evdeadline keeps the session's next deadline (the earlier of idle
-- and absolute) in the account's deadline index dl while it is live:
-- the sweep of unobserved expiries finds them there (redis_sweep.go),
-- and a revocation of the account counts them (redis_revoke.go).
local function evdeadline(dl, m, r, pi, pa)
  if r and r.x == '' then redis.call('ZADD', dl, int(math.min(r.l + pi, r.c + pa)), m)
  else redis.call('ZREM', dl, m) end
end

-- After a new session: keep dl at least d ms more; without events (no
-- sweep) also drop up to eight members whose deadline has passed.
local function dlupkeep(dl, d, now)
  if d > 0 then extendindex(dl, d) end
  if EV then return end
  local old = redis.call('ZRANGEBYSCORE', dl, '-inf', int(now), 'LIMIT', 0, 8)
  if #old > 0 then redis.call('ZREM', dl, unpack(old)) end
end

-- evend emits the expiry a live record r has reached at now under
-- pi/pa, as state() decides (absolute first), timed at its deadline.
local function evend(r, m, now, pi, pa)
  if now >= r.c + pa then emit('session.absolute_expired', r.c + pa, m, r.u, '')
  else emit('session.idle_expired', r.l + pi, m, r.u, '') end
end
`

// luaGenEnd records the end of a record that a revocation of the
// account ended unrecorded (r.gen, see record in redis_scripts.go), with
// its event: revoked at the revocation's time (r.xe), or the expiry it
// had reached by then. Whichever script meets the record first records
// it, so each has one event. It needs luaPrelude and luaEventLib.
const luaGenEnd = `
local function genend(key, dl, m, r, pi, pa)
  r.gen = nil
  local was = {x = '', c = r.c, l = r.l, u = r.u}
  if state(was, r.xe, pi, pa) == '' then emit('session.revoked', r.xe, m, r.u, r.by)
  else evend(was, m, r.xe, pi, pa) end
  redis.call('HSET', key, 'x', 'revoked', 'xe', int(r.xe))
  unlist(m, r.u)
  evdeadline(dl, m, nil)
end
`

// touchEvents decodes the event counts of a touch reply v: idle and
// absolute expiries, then creations plus 2^10 per revocation plus 2^20
// when the outbox was full.
func touchEvents(v []int64) evCounts {
	return evCounts{idle: v[7], absolute: v[8], created: v[9] & (1<<10 - 1), revoked: v[9] >> 10 & (1<<10 - 1), full: v[9] >> 20}
}
