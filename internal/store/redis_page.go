package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// Paged listing in the Redis store. Two indexes per account, kept by
// every script that writes a session (see relist in redis_scripts.go):
//
//	<prefix>:{<acct>}:ord       zset  member -> login ms: the sessions not
//	                                  known to have ended, in listing order
//	<prefix>:{<acct>}:us:<user> zset  member -> when the session stops
//	                                  being live (its idle or absolute
//	                                  deadline, whichever is first); the
//	                                  session limit's too (redis_limit.go)
//
// A page is a rank range of ord after the cursor's (login, member), so
// a script reads at most pageCall sessions; a user's live count is one
// ZCOUNT of us above now. Under apply immediately the us deadline is the
// one of the policy in force at the session's last write: after an
// override changes, a count follows the new policy once the session is
// next written.
//
// A call is three round trips, as its script is given every key it
// touches (redis_declare.go): the range of ord, the users of its
// records (usersOf), then the sessions' script given their keys and
// their users' indexes (sessionsCall).

// pageCall is the most sessions one listing call examines; a larger
// page takes several, each continuing from the last's cursor.
const pageCall = 50

// Sessions implements Store in one call (three round trips) per pageCall
// sessions.
func (r *Redis) Sessions(ctx context.Context, account string, cfg *policy.Config, page Page) (SessionPage, error) {
	if err := ctx.Err(); err != nil {
		return SessionPage{}, err
	}
	if cfg == nil {
		return SessionPage{}, errNilPolicy
	}
	if _, _, _, err := decodeCursor(page.Cursor); err != nil {
		return SessionPage{}, err
	}
	out := SessionPage{Sessions: []SessionInfo{}, Users: map[string]int{}, Next: page.Cursor}
	for left := page.limit(); left > 0; left -= pageCall {
		part, err := r.sessionsCall(ctx, account, cfg, out.Next, min(left, pageCall))
		if err != nil {
			return SessionPage{}, err
		}
		out.Sessions = append(out.Sessions, part.Sessions...)
		maps.Copy(out.Users, part.Users)
		if out.Next = part.Next; out.Next == "" {
			break
		}
	}
	return out, nil
}

// sessionsCall lists up to limit sessions after cursor: the members
// after it (luaPageMembers), then those of them still live (luaSessions,
// with their keys declared: usually a second run, given the users it
// asked for). The next cursor is the last member found, so a session is
// neither skipped nor repeated, whatever luaSessions skipped.
func (r *Redis) sessionsCall(ctx context.Context, account string, cfg *policy.Config, cursor string, limit int) (SessionPage, error) {
	cms, cm, _, err := decodeCursor(cursor)
	if err != nil {
		return SessionPage{}, err
	}
	k := r.keys(account)
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	found, err := scriptPageMembers.Run(tctx, r.client, []string{k.order()}, strconv.FormatInt(cms, 10), cm, strconv.Itoa(limit)).StringSlice()
	if err != nil {
		return SessionPage{}, unavailable("sessions", err)
	}
	out := SessionPage{Sessions: []SessionInfo{}, Users: map[string]int{}}
	if len(found) > 0 {
		if out, err = r.liveOf(tctx, account, cfg, found); err != nil {
			return SessionPage{}, unavailable("sessions", err)
		}
	}
	if len(found) == 2*limit {
		ms, err := strconv.ParseFloat(found[len(found)-1], 64)
		if err != nil {
			return SessionPage{}, unavailable("sessions", errors.New("unexpected reply: bad cursor"))
		}
		out.Next = encodeCursorMember(int64(ms), found[len(found)-2])
	}
	return out, nil
}

// liveOf runs luaSessions on found, member and ord score pairs.
func (r *Redis) liveOf(ctx context.Context, account string, cfg *policy.Config, found []string) (SessionPage, error) {
	k := r.keys(account)
	args := append([]any{r.nowArg()}, cfgArgs(cfg)...)
	args = append(args, len(found)/2)
	d := declared{}
	for i := 0; i+1 < len(found); i += 2 {
		args = append(args, found[i], found[i+1])
		d.members = append(d.members, found[i])
	}
	users, err := usersOf(ctx, r.client, k, d.members) // their indexes, given at once
	if err != nil {
		return SessionPage{}, err
	}
	d.users = users
	v, err := runDeclared(ctx, r.client, scriptSessions, k, []string{k.revocation(), k.override(), k.order()}, args, d)
	if err != nil {
		return SessionPage{}, err
	}
	raw, _ := v.([]any)
	return parsePage(account, cfg, raw)
}

// parsePage decodes luaSessions' reply.
func parsePage(account string, cfg *policy.Config, raw []any) (SessionPage, error) {
	if len(raw) != 5 {
		return SessionPage{}, fmt.Errorf("unexpected reply of %d values", len(raw))
	}
	nowMs, ok := asInt(raw[0])
	if !ok {
		return SessionPage{}, errors.New("unexpected reply: bad time")
	}
	at := time.UnixMilli(nowMs)
	ov := parseOverride(asString(raw[1]), asString(raw[2]))
	out := SessionPage{Sessions: []SessionInfo{}, Users: map[string]int{}}
	live, _ := raw[3].([]any)
	for i := 0; i+1 < len(live); i += 2 {
		values, _ := live[i+1].([]any)
		rec, retain, ok := parseRecord(account, asString(live[i]), listFields(values))
		if !ok || !at.Before(retain) {
			continue
		}
		p := PolicyInForce(cfg, rec, ov)
		if rec.State(at, p) != session.Active {
			continue
		}
		out.Sessions = append(out.Sessions, Info(rec, p))
	}
	users, _ := raw[4].([]any)
	for i := 0; i+1 < len(users); i += 2 {
		n, _ := asInt(users[i+1])
		out.Users[asString(users[i])] = int(n)
	}
	return out, nil
}

// listedFields are the record fields luaSessions returns, in the order
// of its LISTF.
var listedFields = []string{"c", "l", "pi", "pa", "ci", "ca", "x", "rt", "u", "r", "n", "e", "xe", "g", "ip", "ua"}

// listFields pairs luaSessions' values with their names, as an HGETALL
// reply, leaving out absent ones.
func listFields(values []any) []any {
	flat := make([]any, 0, 2*len(values))
	for i, v := range values {
		if v != nil && i < len(listedFields) {
			flat = append(flat, listedFields[i], v)
		}
	}
	return flat
}
