package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// RedisOptions configures a Redis store on an existing client.
type RedisOptions struct {
	// KeyPrefix starts every key; default "sg". Braces in it are
	// percent-encoded so that it cannot form a Cluster hash tag.
	KeyPrefix string
	// Timeout bounds each operation (context.WithTimeout around each
	// call); default 100ms. For it to bound socket reads and writes too,
	// the client needs ContextTimeoutEnabled.
	Timeout time.Duration
	// Pipelines is how many pipelines of concurrent touches may be in
	// flight at once; touches that arrive while all are busy travel
	// together in the next one (see batcher). Default 4.
	Pipelines int
	// Now is the store's clock. When nil the scripts take the time from
	// Redis TIME, one clock for all gateways.
	Now func() time.Time
	// RevokeReplicas is how many replicas must acknowledge a revocation
	// before it returns (redis_wait.go); nil: 1 once a master has
	// reported a replica, else 0.
	RevokeReplicas *int
	// RevokeReplicasTimeout bounds that wait; default Timeout.
	RevokeReplicasTimeout time.Duration
}

// Redis is the store shared by many gateways, kept in Redis (standalone,
// Sentinel or Cluster). Every operation is one round trip; Touch, Revoke,
// Sessions and SetOverride are atomic Lua scripts over the keys of one
// account, which share one Cluster slot (see redis_keys.go for the
// layout). It follows the memory store's rules exactly, with times and
// durations at millisecond precision.
//
// Every failure to reach Redis or to get an answer in time is returned
// wrapping ErrUnavailable.
//
// Differences from the memory store: times and durations are kept in
// whole milliseconds; a record whose retention has passed is absent at
// once (the memory store keeps it until Touch or Prune meets it); the
// account cutoff lasts Bounds.Absolute.Max (after which any token it
// would reject is absolute-expired anyway, so such a token gets
// "absolute" instead of "revoked").
//
// Redis needs maxmemory-policy noeviction (an evicted session key would
// let a revoked session start over) and version 5 or later.
type Redis struct {
	client  redis.UniversalClient
	batch   *batcher
	prefix  string
	timeout time.Duration
	now     func() time.Time
	ptrs    pointerCache // opaque session hash -> account and user (redis_opaque_cluster.go)
	ev      redisEvents  // lifecycle events (redis_events.go)
	wait    *replicaWait
	queued  chan struct{} // a revocation left sessions to record (redis_revoke_clean.go)
}

var _ Store = (*Redis)(nil)

// DefaultRedisPipelines is RedisOptions.Pipelines when unset.
const DefaultRedisPipelines = 4

// DefaultRedisTimeout is the per-operation timeout when
// RedisOptions.Timeout is zero.
const DefaultRedisTimeout = 100 * time.Millisecond

// NewRedis returns a Redis store on client, which must not be nil. It
// does no network I/O.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.Pipelines <= 0 {
		opts.Pipelines = DefaultRedisPipelines
	}
	return &Redis{
		client:  client,
		batch:   newBatcher(client, opts.Timeout, opts.Pipelines),
		prefix:  cleanPrefix(opts.KeyPrefix),
		timeout: opts.Timeout,
		now:     opts.Now,
		wait:    newReplicaWait(opts),
		queued:  make(chan struct{}, 1),
	}
}

// errNilPolicy is returned for a request without a policy configuration.
var errNilPolicy = errors.New("store: nil policy configuration")

func unavailable(op string, err error) error {
	return fmt.Errorf("redis %s: %w: %w", op, ErrUnavailable, err)
}

func (r *Redis) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

func (r *Redis) keys(account string) redisKeys { return accountKeys(r.prefix, account) }

// maxSafeMillis bounds every millisecond value sent to a script: Lua
// numbers are doubles, exact up to 2^53.
const maxSafeMillis = 1<<53 - 1

func clampMillis(ms int64) int64 {
	return min(max(ms, -maxSafeMillis), maxSafeMillis)
}

func timeMillis(t time.Time) string { return strconv.FormatInt(clampMillis(t.UnixMilli()), 10) }

// durMillis is d in whole milliseconds; a positive d shorter than a
// millisecond counts as one, so that it stays "present" (claims > 0).
func durMillis(d time.Duration) string {
	ms := d.Milliseconds()
	if ms == 0 && d > 0 {
		ms = 1
	}
	return strconv.FormatInt(clampMillis(ms), 10)
}

func millisDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// nowArg is the "now" ARGV of a script: the store's clock, or "" for
// Redis TIME.
func (r *Redis) nowArg() string {
	if r.now == nil {
		return ""
	}
	return timeMillis(r.now())
}

// touchIntervalArg is the touch-interval ARGV of the touch and lookup
// scripts: whole milliseconds, 0 for none.
func (req *TouchRequest) touchIntervalArg() string { return durMillis(max(req.TouchInterval, 0)) }

// cfgArgs are the seven policy-configuration ARGV read by readcfg.
func cfgArgs(c *policy.Config) []any {
	apply := "0"
	if c.Apply == policy.ApplyImmediately {
		apply = "1"
	}
	def := c.DefaultPolicy()
	return []any{
		apply, durMillis(def.Idle), durMillis(def.Absolute),
		durMillis(c.Bounds.Idle.Min), durMillis(c.Bounds.Idle.Max),
		durMillis(c.Bounds.Absolute.Min), durMillis(c.Bounds.Absolute.Max),
	}
}

// Touch implements Store in one round trip.
func (r *Redis) Touch(ctx context.Context, req *TouchRequest) (TouchResult, error) {
	if err := ctx.Err(); err != nil {
		return TouchResult{}, err
	}
	if req.Policy == nil {
		return TouchResult{}, errNilPolicy
	}
	k := r.keys(req.Account)
	keys := make([]string, 0, 12) // room for a few declared keys
	keys = append(keys, k.session(req.SessionHash), k.override(), k.cutoff(), k.userCutoff(req.User), k.revocation(), k.userIndex(req.User), k.events(), k.deadlines(), k.order())
	passive := "0"
	if req.Passive {
		passive = "1"
	}
	args := make([]any, 0, 32)
	args = append(args, r.nowArg())
	args = append(args, cfgArgs(req.Policy)...)
	args = append(args,
		timeMillis(req.LoginAt), timeMillis(req.NotAfter), passive,
		durMillis(req.Claimed.Idle), durMillis(req.Claimed.Absolute),
		member(req.SessionHash),
		req.User, req.Role, req.Name, req.Email, req.IP, req.UserAgent,
		req.touchIntervalArg(), timeMillis(req.IssuedAt),
	)
	args = append(args, limitArgs(req.Policy)...)
	args = append(args, r.ev.maxArg())
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	raw, err := runDeclaredBy(func(keys []string, args []any) (any, error) {
		return r.batch.run(tctx, scriptTouch, keys, args...).Result()
	}, func(early any) { // events of a run that asked for the keys of the user's sessions
		if v, ok := replyInts(asSlice(early), 10); ok {
			r.ev.wrote(r, req.Account, touchEvents(v))
		}
	}, k, keys, args, declared{})
	if err != nil {
		return TouchResult{}, unavailable("touch", err)
	}
	reply, _ := raw.([]any)
	v, ok := replyInts(reply, 10)
	if !ok {
		return TouchResult{}, unavailable("touch", fmt.Errorf("unexpected reply of %d values", len(reply)))
	}
	c := touchEvents(v)
	if c.created > 0 { // the sweep looks at the account by the new session's first deadline
		c.due = time.UnixMilli(min(v[5], v[6]))
	}
	r.ev.wrote(r, req.Account, c)
	return TouchResult{
		Status:            statusOf(v[0]),
		Created:           v[1] == 1,
		Now:               time.UnixMilli(v[2]),
		Policy:            policy.Policy{Idle: millisDur(v[3]), Absolute: millisDur(v[4])},
		IdleExpiresAt:     time.UnixMilli(v[5]),
		AbsoluteExpiresAt: time.UnixMilli(v[6]),
		Evicted:           evictedHashes(reply, 10),
	}, nil
}

// replyInts reads the first n values of a script reply as integers; ok
// is false when there are fewer or one is not an integer.
func replyInts(reply []any, n int) ([]int64, bool) {
	if len(reply) < n {
		return nil, false
	}
	v := make([]int64, n)
	for i := range v {
		x, ok := reply[i].(int64)
		if !ok {
			return nil, false
		}
		v[i] = x
	}
	return v, true
}

// statusOf maps the scripts' status codes; anything unknown is Revoked.
func statusOf(code int64) session.Status {
	switch code {
	case 0:
		return session.Active
	case 1:
		return session.ExpiredIdle
	case 2:
		return session.ExpiredAbsolute
	case 5: // 4 is an opaque lookup's "unbound", decoded before this
		return session.WrongUser
	case 6:
		return session.LimitReached
	}
	return session.Revoked
}

// parseRecord builds a record and its retention time from an index
// member and its HGETALL reply; ok is false when a field the state
// depends on is missing or unparsable.
func parseRecord(account, m string, flat []any) (*session.Record, time.Time, bool) {
	f := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		f[asString(flat[i])] = asString(flat[i+1])
	}
	num := func(name string) (int64, bool) {
		s, ok := f[name]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	c, ok1 := num("c")
	l, ok2 := num("l")
	pi, ok3 := num("pi")
	pa, ok4 := num("pa")
	ci, ok5 := num("ci")
	ca, ok6 := num("ca")
	rt, ok7 := num("rt")
	x, ok8 := f["x"]
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
		return nil, time.Time{}, false
	}
	hash, ok := keyUnescape(m)
	if !ok {
		hash = m
	}
	return &session.Record{
		Hash: hash, Account: account,
		User: f["u"], Role: f["r"], Name: f["n"], Email: f["e"],
		IP: f["ip"], UserAgent: f["ua"],
		LoginAt: time.UnixMilli(c), LastSeen: time.UnixMilli(l),
		Policy:  policy.Policy{Idle: millisDur(pi), Absolute: millisDur(pa)},
		Claimed: policy.Claimed{Idle: millisDur(ci), Absolute: millisDur(ca)},
		Ended:   session.ParseStatus(x),
	}, time.UnixMilli(rt), true
}

// Override implements Store.
func (r *Redis) Override(ctx context.Context, account string) (policy.Override, error) {
	if err := ctx.Err(); err != nil {
		return policy.Override{}, err
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	v, err := r.client.HMGet(tctx, r.keys(account).override(), "idle_ms", "abs_ms", "max_s", "on_lim").Result()
	if err != nil {
		return policy.Override{}, unavailable("override", err)
	}
	if len(v) != 4 {
		return policy.Override{}, unavailable("override", fmt.Errorf("unexpected reply of %d values", len(v)))
	}
	ov := parseOverride(asString(v[0]), asString(v[1]))
	ov.MaxSessions, ov.OnLimit = parseLimitOverride(asString(v[2]), asString(v[3]))
	return ov, nil
}

// SetOverride implements Store atomically, in one round trip.
func (r *Redis) SetOverride(ctx context.Context, account string, ov policy.Override) (policy.Override, error) {
	if err := ctx.Err(); err != nil {
		return policy.Override{}, err
	}
	field := func(d *time.Duration) string {
		if d == nil {
			return ""
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	tctx, cancel := r.withRevokeTimeout(ctx)
	defer cancel()
	maxS, onLim := limitFields(ov)
	k := r.keys(account)
	cmd := r.runReplicated(tctx, scriptSetOverride, []string{k.override(), k.events()}, field(ov.Idle), field(ov.Absolute), maxS, onLim, r.nowArg(), r.ev.maxArg())
	// Not replicated: the master has the override; its reply still counts
	// for the events, and the caller is told 503.
	waitErr := cmd.Err()
	if errors.Is(waitErr, ErrNotReplicated) {
		cmd.SetErr(nil)
	} else {
		waitErr = nil
	}
	v, err := cmd.Slice()
	if err != nil {
		return policy.Override{}, unavailable("set override", err)
	}
	if len(v) != 6 {
		return policy.Override{}, unavailable("set override", fmt.Errorf("unexpected reply of %d values", len(v)))
	}
	old := parseOverride(asString(v[0]), asString(v[1]))
	old.MaxSessions, old.OnLimit = parseLimitOverride(asString(v[2]), asString(v[3]))
	n, _ := v[4].(int64)
	full, _ := v[5].(int64)
	r.ev.wrote(r, account, evCounts{policy: n, full: full, due: time.UnixMilli(1)}) // deadlines may move earlier: sweep
	if waitErr != nil {
		return old, unavailable("set override", waitErr)
	}
	return old, nil
}

// parseOverride reads the stored fields; an absent or unparsable field
// inherits, as in the scripts.
func parseOverride(idle, abs string) policy.Override {
	var ov policy.Override
	parse := func(s string) *time.Duration {
		if s == "" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil
		}
		d := millisDur(n)
		return &d
	}
	ov.Idle, ov.Absolute = parse(idle), parse(abs)
	return ov
}

// AppendAudit implements Store: XADD with MAXLEN ~ AuditCap; Redis
// assigns the ID. An event without a time gets the injected clock's, or
// else the time of its Redis-assigned ID.
func (r *Redis) AppendAudit(ctx context.Context, account string, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ev.Time.IsZero() && r.now != nil {
		ev.Time = r.now()
	}
	t := ""
	if !ev.Time.IsZero() {
		t = strconv.FormatInt(ev.Time.UnixMilli(), 10)
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	err := r.client.XAdd(tctx, &redis.XAddArgs{
		Stream: r.keys(account).audit(),
		MaxLen: AuditCap,
		Approx: true,
		Values: []any{"t", t, "type", ev.Type, "actor", ev.Actor, "data", string(ev.Data)},
	}).Err()
	if err != nil {
		return unavailable("append audit", err)
	}
	return nil
}

// Audit implements Store: XREVRANGE with COUNT, never more than AuditCap
// events (approximate trimming may keep a few more).
func (r *Redis) Audit(ctx context.Context, account string, limit int) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := int64(AuditCap)
	if limit > 0 && limit < AuditCap {
		n = int64(limit)
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	msgs, err := r.client.XRevRangeN(tctx, r.keys(account).audit(), "+", "-", n).Result()
	if err != nil {
		return nil, unavailable("audit", err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		ev := Event{
			ID:      m.ID,
			Type:    asString(m.Values["type"]),
			Actor:   asString(m.Values["actor"]),
			Account: account,
		}
		if d := asString(m.Values["data"]); d != "" {
			ev.Data = json.RawMessage(d)
		}
		ms, err := strconv.ParseInt(asString(m.Values["t"]), 10, 64)
		if err != nil {
			// no time of its own: the ID's
			idMs, _, _ := strings.Cut(m.ID, "-")
			ms, _ = strconv.ParseInt(idMs, 10, 64)
		}
		ev.Time = time.UnixMilli(ms)
		out = append(out, ev)
	}
	return out, nil
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tctx, cancel := r.withTimeout(ctx)
	defer cancel()
	if err := r.client.Ping(tctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// asSlice reads a script reply's array; nil when it is not one.
func asSlice(v any) []any {
	a, _ := v.([]any)
	return a
}
