package store

import (
	"strconv"

	"github.com/sessionguard/sessionguard/internal/policy"
)

// The session limit per user in the Redis store. Each account keeps one
// sorted set per user in its slot, the one the listing counts a user's
// live sessions with (relist in redis_scripts.go):
//
//	<prefix>:{<acct>}:us:<user>  zset  index member -> live until, ms
//
// The scripts that create a session (luaTouch's creation branch,
// luaOpaqueBind) pass it in KEYS and call admit before they write: it
// reads the account's limit, reads that user's members, drops the ones
// no longer live and either refuses the new session or revokes the live
// ones of the oldest login, all in the same script, so no gateway ever
// sees more than the limit live. Requests on existing sessions never run
// any of it. Every live session is a member, also without a limit, so
// that a limit set later counts the sessions that are already live.

// luaLimitLib holds the creation-time helpers of the session limit.
// Limit config ARGV (four, from position i): default limit (0 =
// unlimited), default on_limit, bounds min, bounds max (0 = none).
const luaLimitLib = `
local function readlimitcfg(i)
  return { dn = tonumber(ARGV[i]) or 0, dmode = ARGV[i+1],
    bmin = tonumber(ARGV[i+2]) or 1, bmax = tonumber(ARGV[i+3]) or 0 }
end

-- policy.Config.EffectiveLimit: the override (pol fields max_s,
-- on_lim), else the default; clamped to the bounds; unlimited becomes
-- the upper bound when there is one.
local function limitof(polkey, lc)
  local p = redis.call('HMGET', polkey, 'max_s', 'on_lim')
  local n, mode = tonumber(p[1]) or lc.dn, lc.dmode
  if p[2] == 'deny' or p[2] == 'evict_oldest' then mode = p[2] end
  if n <= 0 then n = lc.bmax
  elseif n < lc.bmin then n = lc.bmin
  elseif lc.bmax > 0 and n > lc.bmax then n = lc.bmax end
  return n, mode
end

-- The record of member mm of user's index when it is a live session of
-- user; the index forgets it when it is gone or ended for good (under
-- apply immediately a session ended by time only may live again with a
-- longer override, and a revocation of the user must find it).
local function livemember(uidx, mm, user, now, cfg, ovi, ova)
  local r = load(SK[mm])
  if r and now < r.rt and r.u == user then
    local pi, pa = inforce(cfg, r, ovi, ova)
    if state(r, now, pi, pa) == '' then return r end
    if r.x == '' and cfg.immediately then return nil end
  end
  redis.call('ZREM', uidx, mm)
  return nil
end

-- prune drops up to two members of uidx, the earliest deadlines, that
-- can never be live again, at each creation, so that ended sessions do
-- not pile up: past their deadline, and under apply immediately (where a
-- longer override may make them live again) also past the longest
-- absolute limit from their login, or off ORD (gone or ended for good).
local function prune(uidx, m, now, cfg)
  for _, mm in ipairs(redis.call('ZRANGEBYSCORE', uidx, '-inf', int(now), 'LIMIT', 0, 2)) do
    local c = cfg.immediately and tonumber(redis.call('ZSCORE', ORD, mm))
    if mm ~= m and not (c and now < c + cfg.amax) then redis.call('ZREM', uidx, mm) end
  end
end

-- admit enforces the limit for a new session m of user (a record of m
-- that it replaces does not count). Returns nil when the session is
-- refused, else the members it revoked to make room, oldest login first
-- (and takes them off the deadline index dl); or nil, true when it
-- needs the session keys of members it was not given (want), before it
-- writes anything.
--
-- The index decides first, so that the common creation needs no other
-- session's key: a member whose deadline in uidx is still ahead counts
-- as live, by its login in ORD. That may count too many (a session a
-- revocation of the account or a shorter override ended), never too
-- few, except under apply immediately, where a session past its
-- deadline may live again with a longer override: its record decides.
-- Only when the count reaches the limit do the records decide, of
-- every member given (the gateway asks for all); members that logged
-- in meanwhile still count by the index, and are asked for only when
-- they would be evicted.
local function admit(uidx, dl, polkey, lc, m, user, now, cfg, ovi, ova)
  prune(uidx, m, now, cfg)
  local max, mode = limitof(polkey, lc)
  if max <= 0 then return {} end
  local all = redis.call('ZRANGE', uidx, 0, -1, 'WITHSCORES')
  local live, given = {}, false
  for i = 1, #all, 2 do
    local mm, till = all[i], tonumber(all[i + 1])
    if mm ~= m and SK[mm] then
      given = true
      local r = livemember(uidx, mm, user, now, cfg, ovi, ova)
      if r then live[#live + 1] = {m = mm, c = r.c} end
    elseif mm ~= m and till > now then
      live[#live + 1] = {m = mm, c = tonumber(redis.call('ZSCORE', ORD, mm)) or now, guess = true}
    elseif mm ~= m and cfg.immediately then
      want(mm)
    end
  end
  if needed() then return nil, true end
  if #live < max then return {} end
  -- at the limit: the records decide. Each creation left at most max
  -- live, so room for this one is about one eviction, taken from the
  -- members given, oldest login first; members that logged in
  -- meanwhile count by the index and are asked for only when the given
  -- ones are too few.
  local known = {}
  for _, e in ipairs(live) do
    if not e.guess then known[#known + 1] = e end
  end
  local n = #live - max + 1
  if not given or n > #known then
    for i = 1, #all, 2 do
      if all[i] ~= m then want(all[i]) end
    end
    if needed() then return nil, true end
  end
  table.sort(known, function(a, b) return a.c < b.c or (a.c == b.c and a.m < b.m) end)
  live = known
  if mode == 'deny' then return nil end
  local out = {}
  for i = 1, n do
    local e = live[i].m
    redis.call('HSET', SK[e], 'x', 'revoked', 'xe', int(now))
    redis.call('ZREM', ORD, e)
    redis.call('ZREM', uidx, e)
    redis.call('ZREM', dl, e)
    out[#out + 1] = e
  end
  return out
end

`

// userIndex is the key of the per-user session index of user.
func (k redisKeys) userIndex(user string) string { return k.base + "us:" + keyEscape(user) }

// limitArgs are the four limit-configuration ARGV read by readlimitcfg.
func limitArgs(c *policy.Config) []any {
	def := c.PresetLimits[c.Default]
	mode := def.OnLimit
	if mode == "" {
		mode = policy.EvictOldest
	}
	b := c.Bounds.Sessions
	return []any{strconv.Itoa(max(def.Max, 0)), string(mode), strconv.Itoa(b.Min), strconv.Itoa(max(b.Max, 0))}
}

// evictedHashes decodes the revoked members a creating script returned
// from position i of its reply.
func evictedHashes(reply []any, i int) []string {
	var out []string
	for ; i < len(reply); i++ {
		m := asString(reply[i])
		if h, ok := keyUnescape(m); ok {
			m = h
		}
		out = append(out, m)
	}
	return out
}

// limitFields are the stored pol fields max_s and on_lim of ov, "" for
// inherited.
func limitFields(ov policy.Override) (string, string) {
	var n, mode string
	if ov.MaxSessions != nil {
		n = strconv.Itoa(*ov.MaxSessions)
	}
	if ov.OnLimit != nil {
		mode = string(*ov.OnLimit)
	}
	return n, mode
}

// parseLimitOverride reads the stored limit fields; an absent or
// unparsable one inherits, as in the scripts.
func parseLimitOverride(n, mode string) (*int, *policy.OnLimit) {
	var maxS *int
	var onLim *policy.OnLimit
	if v, err := strconv.Atoi(n); err == nil {
		maxS = &v
	}
	if m := policy.OnLimit(mode); m.Valid() {
		onLim = &m
	}
	return maxS, onLim
}
