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
-- and absolute) in the account's deadline index dl while it is live, for
-- the sweep of unobserved expiries (redis_sweep.go).
local function evdeadline(dl, m, r, pi, pa)
  if not EV then return end
  if r and r.x == '' then redis.call('ZADD', dl, int(math.min(r.l + pi, r.c + pa)), m)
  else redis.call('ZREM', dl, m) end
end

-- evend emits the expiry a live record r has reached at now under
-- pi/pa, as state() decides (absolute first), timed at its deadline.
local function evend(r, m, now, pi, pa)
  if now >= r.c + pa then emit('session.absolute_expired', r.c + pa, m, r.u, '')
  else emit('session.idle_expired', r.l + pi, m, r.u, '') end
end
`

// touchEvents decodes the event counts of a touch reply v with evicted
// members after it: idle and absolute expiries, then the created and
// limit revocations (evicted of them) plus 2^20 when the outbox was full.
func touchEvents(v []int64, evicted int) evCounts {
	c := evCounts{idle: v[7], absolute: v[8], full: v[9] >> 20, revoked: int64(evicted)}
	c.created = v[9]&(1<<20-1) - c.revoked
	return c
}
