package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/events"
)

// The Redis store's outbox. Events wait in the per-account streams the
// scripts append to (redis_events.go); each sink is a consumer group on
// every stream, each gateway a consumer. A gateway that wrote events
// registers the account in the zset <prefix>:{~ev}:accts; dispatchers
// read the registered accounts' streams with XREADGROUP, acknowledge
// with XACK, and take over with XAUTOCLAIM what a crashed or stuck
// consumer held longer than the reclaim time. An account whose streams
// every group has drained is unregistered with a compare-and-delete on
// its score, so a registration that races with it survives.

// redisEvents is the Redis store's event state.
type redisEvents struct {
	max   atomic.Int64 // MAXLEN of each stream; 0: events off
	hooks atomic.Pointer[events.Hooks]

	mu      sync.Mutex
	retry   map[string]time.Time // accounts whose registration failed -> due (zero: none)
	created sync.Map             // stream + " " + group: group exists
	groups  sync.Map             // group names this gateway delivers to (DeclareGroups)
}

// evCounts is what one script wrote.
type evCounts struct {
	created, revoked, idle, absolute, policy, full int64
	due                                            time.Time // non-zero: the account is due for a sweep by then
}

// EnableEvents makes the store write lifecycle events, keeping about
// maxlen per account, reporting to hooks, and returns its outbox.
func (r *Redis) EnableEvents(maxlen int, hooks *events.Hooks) events.Outbox {
	r.ev.hooks.Store(hooks)
	r.ev.max.Store(int64(max(maxlen, 1)))
	return redisOutbox{r}
}

// DeclareGroups names the consumer groups (one per sink) this gateway
// delivers to, before their dispatchers start: no stream is drained
// before each of them has its group on it, so a sink that has not read
// yet loses none of the events another sink has delivered.
func (r *Redis) DeclareGroups(groups ...string) {
	for _, g := range groups {
		r.ev.groups.Store(g, true)
	}
}

// EventOutbox implements EventSource.
func (r *Redis) EventOutbox() events.Outbox {
	if r.ev.max.Load() == 0 {
		return nil
	}
	return redisOutbox{r}
}

var _ EventSource = (*Redis)(nil)

func (e *redisEvents) maxArg() string { return strconv.FormatInt(e.max.Load(), 10) }

// wrote reports the events a script wrote and registers the account.
// A failed registration is retried by the next Read; the events are
// safe in the stream meanwhile.
func (e *redisEvents) wrote(r *Redis, account string, c evCounts) {
	if e.max.Load() == 0 {
		return
	}
	h := e.hooks.Load()
	n := int64(0)
	for typ, k := range map[string]int64{events.Created: c.created, events.Revoked: c.revoked,
		events.IdleExpired: c.idle, events.AbsoluteExpired: c.absolute, events.PolicyUpdate: c.policy} {
		for i := int64(0); i < k; i++ {
			h.Emit(typ)
		}
		n += k
	}
	if c.full > 0 {
		h.Drop(int(c.full))
	}
	if n == 0 && c.due.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.register(ctx, account, n > 0, c.due); err != nil {
		e.mu.Lock()
		if e.retry == nil {
			e.retry = make(map[string]time.Time)
		}
		if old, ok := e.retry[account]; !ok || old.IsZero() || !c.due.IsZero() && c.due.Before(old) {
			e.retry[account] = c.due
		}
		e.mu.Unlock()
	}
}

// register, in one round trip, adds the account to the accounts with
// events or bumps its score (a registration count, so that retire's
// compare-and-delete sees every registration made since it read the
// score), and lowers its due score to due when set.
func (r *Redis) register(ctx context.Context, account string, events bool, due time.Time) error {
	pipe := r.client.Pipeline()
	if events {
		pipe.ZIncrBy(ctx, eventAccounts(r.prefix), 1, keyEscape(account))
	}
	if !due.IsZero() {
		pipe.ZAddLT(ctx, dueAccounts(r.prefix), redis.Z{Score: float64(due.UnixMilli()), Member: keyEscape(account)})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// redisOutbox is the Redis store's events.Outbox.
type redisOutbox struct{ r *Redis }

var _ events.Outbox = redisOutbox{}

// eventID is the id of a stream entry of an account: unique across
// accounts, the same on every delivery.
func eventID(escAccount, entry string) string { return "evt_" + escAccount + "_" + entry }

// parseEventID inverts eventID.
func parseEventID(id string) (escAccount, entry string, ok bool) {
	rest, found := strings.CutPrefix(id, "evt_")
	i := strings.LastIndexByte(rest, '_')
	if !found || i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// Read implements events.Outbox.
func (o redisOutbox) Read(ctx context.Context, group, consumer string, n int, reclaim time.Duration) ([]events.Event, error) {
	if err := o.retryRegistrations(ctx); err != nil {
		return nil, unavailable("events", err)
	}
	accts, err := o.r.client.ZRangeWithScores(ctx, eventAccounts(o.r.prefix), 0, -1).Result()
	if err != nil {
		return nil, unavailable("events", err)
	}
	var out []events.Event
	for _, z := range accts {
		if len(out) >= n {
			break
		}
		esc, _ := z.Member.(string)
		got, err := o.readAccount(ctx, esc, group, consumer, n-len(out), reclaim)
		if err != nil {
			return out, unavailable("events", err)
		}
		if len(got) == 0 {
			if err := o.retire(ctx, esc, z.Score); err != nil {
				return out, unavailable("events", err)
			}
		}
		out = append(out, got...)
	}
	return out, nil
}

// retryRegistrations registers again the accounts whose registration
// failed.
func (o redisOutbox) retryRegistrations(ctx context.Context) error {
	e := &o.r.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	for acct, due := range e.retry {
		if err := o.r.register(ctx, acct, true, due); err != nil {
			return err
		}
		delete(e.retry, acct)
	}
	return nil
}

// readAccount takes up to n events of one account's stream: those held
// by any consumer longer than reclaim, then new ones.
func (o redisOutbox) readAccount(ctx context.Context, esc, group, consumer string, n int, reclaim time.Duration) ([]events.Event, error) {
	evs, err := o.readStream(ctx, esc, group, consumer, n, reclaim)
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// the drained stream expired with its groups; new events made it again
		o.r.ev.created.Delete(escapedKeys(o.r.prefix, esc).events() + " " + group)
		evs, err = o.readStream(ctx, esc, group, consumer, n, reclaim)
	}
	return evs, err
}

// readStream is readAccount, once.
func (o redisOutbox) readStream(ctx context.Context, esc, group, consumer string, n int, reclaim time.Duration) ([]events.Event, error) {
	stream := escapedKeys(o.r.prefix, esc).events()
	if err := o.ensureGroup(ctx, stream, group); err != nil {
		return nil, err
	}
	msgs, _, err := o.r.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: consumer, MinIdle: reclaim, Start: "0-0", Count: int64(n),
	}).Result()
	if err != nil {
		return nil, err
	}
	if len(msgs) < n {
		res, err := o.r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: int64(n - len(msgs)), Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		for _, s := range res {
			msgs = append(msgs, s.Messages...)
		}
	}
	acct, _ := keyUnescape(esc)
	out := make([]events.Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, entryEvent(acct, esc, m))
	}
	return out, nil
}

// entryEvent decodes a stream entry.
func entryEvent(acct, esc string, m redis.XMessage) events.Event {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	at, _ := strconv.ParseInt(str("at"), 10, 64)
	hash, _ := keyUnescape(str("m"))
	if str("m") == "" {
		hash = ""
	}
	return events.Event{ID: eventID(esc, m.ID), Type: str("t"), Time: time.UnixMilli(at).UTC(), Account: acct,
		SessionHash: hash, User: str("u"), By: str("by")}
}

// ensureGroup creates the consumer group on the stream once.
func (o redisOutbox) ensureGroup(ctx context.Context, stream, group string) error {
	k := stream + " " + group
	if _, ok := o.r.ev.created.Load(k); ok {
		return nil
	}
	err := o.r.client.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	o.r.ev.created.Store(k, true)
	return nil
}

// scriptDrained empties an account's stream that every group has
// delivered and acknowledged, and lets it expire after ARGV 1 ms unless
// an event comes (emit persists it); returns 1 when it was drained.
// KEYS: 1 the stream.
var scriptDrained = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if tonumber(f['pending']) ~= 0 or tonumber(f['lag']) ~= 0 then return 0 end
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// scriptRetire unregisters an account when its score is still the one
// the reader saw (no registration since).
// KEYS: 1 the accounts zset. ARGV: 1 member, 2 score read.
var scriptRetire = redis.NewScript(`
local s = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if s and s == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`)

// drainedTTL is how long an emptied stream keeps its groups' positions.
const drainedTTL = 24 * time.Hour

// retire unregisters the account when every group has delivered and
// acknowledged all of its stream, the declared ones included. The score was read before the stream
// is checked, so an event written meanwhile either shows in the stream
// or has bumped the score.
func (o redisOutbox) retire(ctx context.Context, esc string, score float64) error {
	stream := escapedKeys(o.r.prefix, esc).events()
	var err error
	o.r.ev.groups.Range(func(g, _ any) bool {
		err = o.ensureGroup(ctx, stream, g.(string))
		return err == nil
	})
	if err != nil {
		return err
	}
	drained, err := scriptDrained.Run(ctx, o.r.client, []string{stream}, drainedTTL.Milliseconds()).Int()
	if err != nil || drained == 0 {
		return err
	}
	return scriptRetire.Run(ctx, o.r.client, []string{eventAccounts(o.r.prefix)}, esc, strconv.FormatFloat(score, 'f', -1, 64)).Err()
}

// Ack implements events.Outbox.
func (o redisOutbox) Ack(ctx context.Context, group string, evs []events.Event) error {
	for _, ev := range evs {
		esc, entry, ok := parseEventID(ev.ID)
		if !ok {
			return errors.New("not an event id of this store: " + ev.ID)
		}
		if err := o.r.client.XAck(ctx, escapedKeys(o.r.prefix, esc).events(), group, entry).Err(); err != nil {
			return unavailable("events ack", err)
		}
	}
	return nil
}

// Queued implements events.Outbox: per registered account, the group's
// pending entries and those not read yet.
func (o redisOutbox) Queued(ctx context.Context, group string) (int64, error) {
	accts, err := o.r.client.ZRange(ctx, eventAccounts(o.r.prefix), 0, -1).Result()
	if err != nil {
		return 0, unavailable("events", err)
	}
	var n int64
	for _, esc := range accts {
		groups, err := o.r.client.XInfoGroups(ctx, escapedKeys(o.r.prefix, esc).events()).Result()
		if err != nil {
			continue // no stream yet
		}
		for _, g := range groups {
			if g.Name == group {
				n += g.Pending + max(g.Lag, 0)
			}
		}
	}
	return n, nil
}
