package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The back-channel logout index and the one-time ids of the Redis store.
// An IdP session (sid hash) and an IdP user (sub) each have their own
// hash tag, so the index is cluster-safe without knowing any account:
//
//	<prefix>:{~sid~<esc(sid hash)>}:ix  zset  "<esc(acct)> <esc(session hash)>" -> retention ms
//	<prefix>:{~sid~<esc(sid hash)>}:cut string latest logout of the IdP session: "<at ms> <kept until ms>"
//	<prefix>:{~sub~<esc(sub)>}:ix       zset  "<esc(acct)> <esc(user)>" -> retention ms
//	<prefix>:{~sub~<esc(sub)>}:cut      string latest logout of the IdP user, as above
//	<prefix>:{~once~<esc(id)>}          string a one-time id: until when, ms
//
// Accounts are escaped and can never start with '~', so these never meet
// an account's keys. The index is written after a session was created,
// in a second round trip (its slot is not the account's); expired
// members are dropped by every write, and the keys expire on their own.
// Each gateway writes the entry of a session before it serves the
// session the first time (see caddymodule/backchannel.go), so an entry
// lost to an error is written again by the next request.

var (
	_ SubjectIndex = (*Redis)(nil)
	_ OnceStore    = (*Redis)(nil)
)

// luaIndexAdd adds a member with its retention, unless it has a later
// one, and returns the latest logout ("" when none).
//
// KEYS: 1 ix, 2 cut. ARGV: 1 now ("" = Redis TIME), 2 member, 3 retention ms.
const luaIndexAdd = luaPrelude + luaCut + `
local now = clock(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
local rt = tonumber(ARGV[3])
if rt > now then
  local cur = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
  if not cur or cur < rt then redis.call('ZADD', KEYS[1], int(rt), ARGV[2]) end
  extendindex(KEYS[1], ttl(rt, now))
end
local cut = readcut(KEYS[2], now)
if cut then return int(cut) end
return ''
`

// luaCut reads a logout: "<at ms> <kept until ms>", nil when absent or
// no longer kept by the store's clock.
const luaCut = `
local function readcut(key, now)
  local v = redis.call('GET', key)
  if not v then return nil end
  local at, untl = string.match(v, '^(%d+) (%d+)$')
  if not at or tonumber(untl) <= now then return nil end
  return tonumber(at)
end
`

// luaIndexLogout records a logout at now (never moving it back), kept
// ARGV[2] ms, and returns the live members.
//
// KEYS: 1 ix, 2 cut. ARGV: 1 now ("" = Redis TIME), 2 keep ms.
const luaIndexLogout = luaPrelude + luaCut + `
local now = clock(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
local v = now
local old = readcut(KEYS[2], now)
if old and old > v then v = old end
local keep = math.max(1, math.min(tonumber(ARGV[2]), TTL_CAP))
redis.call('SET', KEYS[2], int(v) .. ' ' .. int(now + keep), 'PX', int(keep))
return redis.call('ZRANGE', KEYS[1], 0, -1)
`

// luaOnce records a one-time id until now + ttl unless it is recorded
// and not yet due (by the store's clock, like every other expiry), and
// returns 1 when it was new.
//
// KEYS: 1 once. ARGV: 1 now ("" = Redis TIME), 2 ttl ms.
const luaOnce = luaPrelude + `
local now = clock(ARGV[1])
local due = tonumber(redis.call('GET', KEYS[1]))
if due and due > now then return 0 end
local d = math.max(1, math.min(tonumber(ARGV[2]), TTL_CAP))
redis.call('SET', KEYS[1], int(now + d), 'PX', int(d))
return 1
`

var (
	scriptOnce        = redis.NewScript(luaOnce)
	scriptIndexAdd    = redis.NewScript(luaIndexAdd)
	scriptIndexLogout = redis.NewScript(luaIndexLogout)
)

func (r *Redis) subjectKeys(kind, id string) []string {
	base := r.prefix + ":{~" + kind + "~" + keyEscape(id) + "}:"
	return []string{base + "ix", base + "cut"}
}

func (r *Redis) onceKey(id string) string { return r.prefix + ":{~once~" + keyEscape(id) + "}" }

// IndexSession implements SubjectIndex: one round trip per index written
// (sid and sub).
func (r *Redis) IndexSession(ctx context.Context, e IndexEntry) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	var cut time.Time
	add := func(kind, id, m string) error {
		if id == "" {
			return nil
		}
		tctx, cancel := r.withTimeout(ctx)
		defer cancel()
		s, err := scriptIndexAdd.Run(tctx, r.client, r.subjectKeys(kind, id), r.nowArg(), m, timeMillis(e.Until)).Text()
		if err != nil {
			return err
		}
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil && time.UnixMilli(ms).After(cut) {
			cut = time.UnixMilli(ms)
		}
		return nil
	}
	err := add("sid", e.SIDHash, keyEscape(e.Account)+" "+member(e.SessionHash))
	if err == nil {
		err = add("sub", e.Subject, keyEscape(e.Account)+" "+keyEscape(e.User))
	}
	if err != nil {
		return time.Time{}, unavailable("index session", err)
	}
	return cut, nil
}

// LogoutSID implements SubjectIndex in one round trip.
func (r *Redis) LogoutSID(ctx context.Context, sidHash string, keep time.Duration) ([]Indexed, error) {
	return r.logout(ctx, "sid", sidHash, keep, func(out *Indexed, s string) { out.SessionHash = s })
}

// LogoutSubject implements SubjectIndex in one round trip.
func (r *Redis) LogoutSubject(ctx context.Context, sub string, keep time.Duration) ([]Indexed, error) {
	return r.logout(ctx, "sub", sub, keep, func(out *Indexed, s string) { out.User = s })
}

func (r *Redis) logout(ctx context.Context, kind, id string, keep time.Duration, second func(*Indexed, string)) ([]Indexed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tctx, cancel := r.withRevokeTimeout(ctx)
	defer cancel()
	members, err := r.runReplicated(tctx, scriptIndexLogout, r.subjectKeys(kind, id), r.nowArg(), durMillis(keep)).StringSlice()
	if err != nil {
		return nil, unavailable("logout "+kind, err)
	}
	out := make([]Indexed, 0, len(members))
	for _, m := range members {
		a, b, ok := strings.Cut(m, " ")
		acct, ok1 := keyUnescape(a)
		val, ok2 := keyUnescape(b)
		if !ok || !ok1 || !ok2 {
			continue // not written by IndexSession
		}
		in := Indexed{Account: acct}
		second(&in, val)
		out = append(out, in)
	}
	return out, nil
}

// Once implements OnceStore in one round trip.
func (r *Redis) Once(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	n, err := scriptOnce.Run(tctx, r.client, []string{r.onceKey(id)}, r.nowArg(), durMillis(ttl)).Int64()
	if err != nil {
		return false, unavailable("once", err)
	}
	return n == 1, nil
}

// Forget implements OnceStore.
func (r *Redis) Forget(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	if err := r.client.Del(tctx, r.onceKey(id)).Err(); err != nil {
		return unavailable("forget", err)
	}
	return nil
}
