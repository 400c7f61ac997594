package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testclock"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// gatewayClient returns a client set up as the Caddy module sets up its
// own: context deadlines bound socket I/O, one retry.
func gatewayClient(t *testing.T, addr string, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		DialTimeout:           250 * time.Millisecond,
		ReadTimeout:           100 * time.Millisecond,
		WriteTimeout:          100 * time.Millisecond,
		PoolTimeout:           100 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DisableIdentity:       true,
	})
	for _, h := range hooks {
		c.AddHook(h)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var prefixSeq atomic.Int64

// uniquePrefix gives each store of a shared server its own key space.
func uniquePrefix(name string) string {
	return fmt.Sprintf("t%d-%s", prefixSeq.Add(1), strings.NewReplacer("/", "-", " ", "-").Replace(name))
}

func TestRedisConformance(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	open := func(t *testing.T, now func() time.Time) store.Store {
		// A generous timeout: this test is about semantics under -race,
		// the 100ms default is exercised in TestRedisUnavailable.
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Now: now})
	}
	storetest.Run(t, open)
	storetest.RunOpaque(t, open)
	storetest.RunEvents(t, withEvents(open))
}

// withEvents turns events on in the stores open makes.
func withEvents(open storetest.Open) storetest.Open {
	return func(t *testing.T, now func() time.Time) store.Store {
		s := open(t, now)
		s.(*store.Redis).EnableEvents(1000, nil)
		return s
	}
}

// TestRedisClusterConformance runs the suite on a one-node Redis
// Cluster through a ClusterClient: a script whose declared keys were in
// different slots would fail with CROSSSLOT.
func TestRedisClusterConformance(t *testing.T) {
	srv, client := oneNodeCluster(t)
	open := func(t *testing.T, now func() time.Time) store.Store {
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Now: now})
	}
	storetest.Run(t, open)
	storetest.RunOpaque(t, open)
	storetest.RunEvents(t, withEvents(open))

	// The keys the suite left: each account's keys share the server's
	// slot, and keySlot (used by TestRedisKeys) agrees with the server.
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "slots", Timeout: 2 * time.Second})
	workload(t, s, "a:b}c*")
	keys, err := srv.Client(t).Keys(context.Background(), "*").Result()
	if err != nil || len(keys) < 50 {
		t.Fatalf("keys: %d, %v", len(keys), err)
	}
	byTag := map[string]string{}
	for _, k := range keys {
		slot := srv.CLI(t, "CLUSTER", "KEYSLOT", k)
		if slot != strconv.Itoa(keySlot(k)) {
			t.Fatalf("key %q: server slot %s, keySlot %d", k, slot, keySlot(k))
		}
		tag := k[:strings.Index(k, "}")+1]
		if prev, ok := byTag[tag]; ok && prev != slot {
			t.Fatalf("key %q: slot %s, other keys of its account %s", k, slot, prev)
		}
		byTag[tag] = slot
	}
}

// oneNodeCluster starts a Redis Cluster of one node holding every slot
// and returns it with a cluster client of it.
func oneNodeCluster(t *testing.T) (*testredis.Server, *redis.ClusterClient) {
	t.Helper()
	srv := testredis.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	srv.CLI(t, "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.CLI(t, "CLUSTER", "INFO"), "cluster_state:ok") {
		if time.Now().After(deadline) {
			t.Fatal("cluster did not reach state ok")
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	return srv, client
}

var t0 = time.Now().Truncate(time.Second)

func cfg() *policy.Config {
	c := policy.NewConfig()
	c.Presets["tiny"] = policy.Policy{Idle: 5 * time.Minute, Absolute: 20 * time.Minute}
	return &c
}

func treq(c *policy.Config, acct, sid, user string, now time.Time) *store.TouchRequest {
	return &store.TouchRequest{
		Account: acct, SessionHash: session.HashID(sid), User: user, Role: "member",
		LoginAt: now, NotAfter: now.Add(time.Hour), Policy: c,
	}
}

// clockedRedis is a Redis store on client whose clock stands at t0.
func clockedRedis(client redis.UniversalClient, opts store.RedisOptions) (*store.Redis, *testclock.Clock) {
	clock := testclock.New(t0)
	opts.Now = clock.Now
	return store.NewRedis(client, opts), clock
}

func mustTouch(t *testing.T, s store.Store, r *store.TouchRequest) store.TouchResult {
	t.Helper()
	res, err := s.Touch(context.Background(), r)
	if err != nil {
		t.Fatalf("touch: %v", err)
	}
	return res
}

func TestRedisSurvivesScriptFlush(t *testing.T) {
	srv := testredis.Start(t)
	s, clock := clockedRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{Timeout: 2 * time.Second})
	c := cfg()
	r := treq(c, "acme", "s1", "alice", t0)
	mustTouch(t, s, r)
	srv.CLI(t, "SCRIPT", "FLUSH")
	clock.Set(t0.Add(time.Minute))
	res := mustTouch(t, s, r)
	if res.Status != session.Active || res.Created {
		t.Fatalf("touch after SCRIPT FLUSH: %+v", res)
	}
	srv.CLI(t, "SCRIPT", "FLUSH")
	if list, err := store.ListAll(context.Background(), s, "acme", c); err != nil || len(list) != 1 {
		t.Fatalf("sessions after SCRIPT FLUSH: %v %v", list, err)
	}
	srv.CLI(t, "SCRIPT", "FLUSH")
	if n, err := s.Revoke(context.Background(), store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); err != nil || n != 1 {
		t.Fatalf("revoke after SCRIPT FLUSH: %d %v", n, err)
	}
	srv.CLI(t, "SCRIPT", "FLUSH")
	if _, err := s.SetOverride(context.Background(), "acme", policy.Override{}); err != nil {
		t.Fatalf("set override after SCRIPT FLUSH: %v", err)
	}
}

// allOps runs every Store method once and returns their errors by name.
func allOps(s store.Store) map[string]error {
	ctx := context.Background()
	c := cfg()
	errs := map[string]error{}
	_, errs["touch"] = s.Touch(ctx, treq(c, "acme", "s1", "alice", time.Now()))
	_, errs["sessions"] = store.ListAll(ctx, s, "acme", c)
	_, errs["revoke"] = s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "bob", Policy: c})
	_, errs["revoke account"] = s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeOthers, Sessions: []string{"s1"}, Policy: c})
	_, errs["override"] = s.Override(ctx, "acme")
	_, errs["set override"] = s.SetOverride(ctx, "acme", policy.Override{})
	errs["append audit"] = s.AppendAudit(ctx, "acme", store.Event{Type: "x", Actor: "y"})
	_, errs["audit"] = s.Audit(ctx, "acme", 10)
	errs["ping"] = s.Ping(ctx)
	return errs
}

func TestRedisUnavailable(t *testing.T) {
	srv := testredis.Start(t)
	s := store.NewRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{Timeout: 100 * time.Millisecond})
	for op, err := range allOps(s) {
		if err != nil {
			t.Fatalf("%s with the server up: %v", op, err)
		}
	}

	srv.Stop(t)
	start := time.Now()
	errs := allOps(s)
	for op, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want ErrUnavailable", op, err)
		}
	}
	// each operation bounded by the 100ms timeout
	if d := time.Since(start); d > time.Duration(len(errs))*200*time.Millisecond {
		t.Errorf("%d failing operations took %v", len(errs), d)
	}
	one := time.Now()
	_, err := s.Touch(context.Background(), treq(cfg(), "acme", "s1", "alice", time.Now()))
	if d := time.Since(one); !errors.Is(err, store.ErrUnavailable) || d > 500*time.Millisecond {
		t.Errorf("touch with the server down: %v after %v", err, d)
	}

	srv.Restart(t)
	// The pool may still hold dead connections; go-redis drops them.
	var last map[string]error
	deadline := time.Now().Add(5 * time.Second)
	for {
		last = allOps(s)
		ok := true
		for _, err := range last {
			ok = ok && err == nil
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after restart: %v", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisHungServer checks that Timeout bounds an operation on a
// server that accepts connections and never answers.
func TestRedisHungServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	s := store.NewRedis(gatewayClient(t, ln.Addr().String()), store.RedisOptions{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err = s.Touch(context.Background(), treq(cfg(), "acme", "s1", "alice", time.Now()))
	if d := time.Since(start); !errors.Is(err, store.ErrUnavailable) || d > 500*time.Millisecond {
		t.Fatalf("touch on a hung server: %v after %v", err, d)
	}
}

// TestRedisCancelledContext: a context the caller cancelled is reported
// as such, like the memory store does.
func TestRedisCancelledContext(t *testing.T) {
	srv := testredis.Start(t)
	s := store.NewRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{Timeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Touch(ctx, treq(cfg(), "acme", "s1", "alice", t0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("touch with a cancelled context: %v", err)
	}
}

// crc16 is Redis Cluster's key hash (CRC16-CCITT, XMODEM).
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is Redis Cluster's slot of a key, hash tags included.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16([]byte(key)) % 16384)
}

// keysOf lists the keys under prefix (test prefixes are plain text).
func keysOf(t *testing.T, c *redis.Client, prefix string) []string {
	t.Helper()
	keys, err := c.Keys(context.Background(), prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

// accountKeysOf returns the keys of prefix that belong to an account:
// all but the shared {~...} ones.
func accountKeysOf(t *testing.T, c *redis.Client, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range keysOf(t, c, prefix) {
		if !strings.HasPrefix(k, prefix+":{~") {
			out = append(out, k)
		}
	}
	return out
}

// workload creates every kind of key of an account.
func workload(t *testing.T, s store.Store, acct string) {
	t.Helper()
	ctx := context.Background()
	c := cfg()
	mustTouch(t, s, treq(c, acct, "s1", "alice", t0))
	mustTouch(t, s, treq(c, acct, "s2", "bob", t0))
	if _, err := s.SetOverride(ctx, acct, policy.Override{Idle: ptr(20 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, acct, store.Event{Type: "policy.update", Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, store.RevokeRequest{Account: acct, Scope: store.ScopeUser, User: "b:o}b*", Policy: c}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, store.RevokeRequest{Account: acct, Scope: store.ScopeOthers, Sessions: []string{session.HashID("s2")}, Policy: c}); err != nil {
		t.Fatal(err)
	}
}

func ptr(d time.Duration) *time.Duration { return &d }

func TestRedisKeys(t *testing.T) {
	if got := keySlot("123456789"); crc16([]byte("123456789")) != 0x31C3 || got != 0x31C3%16384 {
		t.Fatalf("crc16 self-check failed")
	}
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	accts := []string{"acme", "a:b", "a}b", "a*", "{x}", "a%3Ab", "a%b", "", "a b", "a\nb", "?", "[a]", "ａ"}
	seen := map[string]string{} // key -> account
	for i, acct := range accts {
		prefix := fmt.Sprintf("k%d", i)
		s := store.NewRedis(client, store.RedisOptions{KeyPrefix: prefix, Timeout: 2 * time.Second})
		workload(t, s, acct)
		if _, err := s.CleanRevoked(context.Background(), cfg(), 1000); err != nil {
			t.Fatal(err)
		}
		keys := accountKeysOf(t, client, prefix)
		// 2 sessions, ord, dl, pol, cut, uc, rv, audit, the index of the
		// user whose session was not revoked (the revocation's queue is
		// recorded and gone)
		if len(keys) != 10 {
			t.Fatalf("account %q: keys %q", acct, keys)
		}
		slot := keySlot(keys[0])
		for _, k := range keys {
			if keySlot(k) != slot {
				t.Errorf("account %q: key %q in slot %d, others in %d", acct, k, keySlot(k), slot)
			}
			open, close := strings.Index(k, "{"), strings.Index(k, "}")
			if open < 0 || close < open+2 || strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 {
				t.Errorf("account %q: key %q has no single non-empty hash tag", acct, k)
			}
			if strings.ContainsAny(k, "*?[] \t\r\n") {
				t.Errorf("account %q: key %q holds a glob or space character", acct, k)
			}
			rest := strings.TrimPrefix(k, prefix+":")
			if prev, dup := seen[rest]; dup {
				t.Errorf("key %q of account %q also made for account %q", rest, acct, prev)
			}
			seen[rest] = acct
			// TTLs: config, audit and the revocation generation are
			// kept, the rest expires.
			pttl, err := client.PTTL(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(k, ":pol") || strings.HasSuffix(k, ":audit") || strings.HasSuffix(k, ":rv") {
				if pttl != -1 {
					t.Errorf("key %q: PTTL %v, want none", k, pttl)
				}
			} else if pttl <= 0 {
				t.Errorf("key %q: PTTL %v, want > 0", k, pttl)
			}
		}
	}

	// The same account under different prefixes shares nothing; all
	// accounts in one prefix stay apart (the suite checks behaviour,
	// here the key names).
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "one", Timeout: 2 * time.Second})
	for _, acct := range accts {
		mustTouch(t, s, treq(cfg(), acct, "sid", "u", t0))
	}
	if keys := keysOf(t, client, "one"); len(keys) != 4*len(accts) { // session, ord, dl, user index
		t.Fatalf("%d accounts made keys %q", len(accts), keys)
	}
	if keys := accountKeysOf(t, client, "k0"); len(keys) != 10 {
		t.Fatalf("another prefix changed account keys: %q", keys)
	}
}

func TestRedisKeyPrefixWithBraces(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "x{y}", Timeout: 2 * time.Second})
	for _, acct := range []string{"a", "b"} {
		mustTouch(t, s, treq(cfg(), acct, "sid", "u", t0))
	}
	keys, err := client.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slots := map[int]bool{}
	for _, k := range keys {
		if strings.Count(k, "{") != 1 {
			t.Fatalf("key %q: the prefix added a hash tag", k)
		}
		slots[keySlot(k)] = true
	}
	if len(slots) != 2 {
		t.Fatalf("two accounts in %d slots: %q", len(slots), keys)
	}
}

// odd session hashes (not from session.HashID) round-trip through keys.
func TestRedisOddSessionHash(t *testing.T) {
	srv := testredis.Start(t)
	s, _ := clockedRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{Timeout: 2 * time.Second})
	c := cfg()
	hashes := []string{"a:b", "{x}", "%", "a%25", "", "*"}
	for _, h := range hashes {
		r := treq(c, "acme", "", "u", t0)
		r.SessionHash = h
		if res := mustTouch(t, s, r); !res.Created {
			t.Fatalf("hash %q: %+v", h, res)
		}
	}
	list, err := store.ListAll(context.Background(), s, "acme", c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, si := range list {
		got = append(got, si.Hash)
	}
	// listing order within one login time: the escaped hash
	want := []string{"", "%", "*", "{x}", "a%25", "a:b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("listed hashes %q, want %q", got, want)
	}
	n, err := s.Revoke(context.Background(), store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{"nope", "{x}"}, Policy: c})
	if err != nil || n != 1 {
		t.Fatalf("revoke {x}: %d %v", n, err)
	}
	if list, _ := store.ListAll(context.Background(), s, "acme", c); len(list) != len(hashes)-1 {
		t.Fatalf("after revoke: %+v", list)
	}
}

// counter counts the commands a client sends (n), and how they travel:
// alone (singles) or in pipelines (each one write and one read).
type counter struct{ n, singles, pipelines atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		c.singles.Add(1)
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		c.pipelines.Add(1)
		return next(ctx, cmds)
	}
}

func TestRedisOneRoundTrip(t *testing.T) {
	srv := testredis.Start(t)
	cnt := &counter{}
	zero := 0 // waiting for replicas adds INFO and WAIT (redis_wait_test.go)
	s := store.NewRedis(gatewayClient(t, srv.Addr(), cnt), store.RedisOptions{Timeout: 2 * time.Second, RevokeReplicas: &zero})
	allOps(s) // loads the scripts
	ctx := context.Background()
	c := cfg()
	now := time.Now()
	// the listing's account has one live session whatever ran before
	mustTouch(t, s, treq(c, "listed", "one", "u", now))
	ops := map[string]func() error{
		"touch (create)": func() error { _, err := s.Touch(ctx, treq(c, "acme", "new", "u", now)); return err },
		"touch":          func() error { _, err := s.Touch(ctx, treq(c, "acme", "new", "u", now.Add(time.Second))); return err },
		"sessions":       func() error { _, err := store.ListAll(ctx, s, "listed", c); return err },
		"revoke": func() error {
			_, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{"a", "b"}, Policy: c})
			return err
		},
		"revoke account": func() error {
			_, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeOthers, Sessions: []string{"a", "b"}, Policy: c})
			return err
		},
		"override":     func() error { _, err := s.Override(ctx, "acme"); return err },
		"set override": func() error { _, err := s.SetOverride(ctx, "acme", policy.Override{Idle: ptr(time.Hour)}); return err },
		"append audit": func() error { return s.AppendAudit(ctx, "acme", store.Event{Type: "t"}) },
		"audit":        func() error { _, err := s.Audit(ctx, "acme", 0); return err },
		"ping":         func() error { return s.Ping(ctx) },
	}
	for name, op := range ops {
		before := cnt.n.Load()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := int64(1)
		switch name {
		case "revoke account":
			want = 2 // the account's entry in the queues to record, first (redis_revoke.go)
		case "sessions":
			// the range of ord, the users of its records, then the
			// sessions' script given their indexes (redis_page.go)
			want = 3
		}
		if n := cnt.n.Load() - before; n != want {
			t.Errorf("%s sent %d commands, want %d", name, n, want)
		}
	}
}

func TestRedisClock(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	c := cfg()
	ctx := context.Background()

	// No clock anywhere: Redis TIME.
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "redis-time"})
	r := treq(c, "acme", "s1", "u", time.Now())
	before := time.Now().Add(-time.Second)
	res := mustTouch(t, s, r)
	if res.Now.Before(before) || res.Now.After(time.Now().Add(time.Second)) || res.Status != session.Active || !res.Created {
		t.Fatalf("touch on Redis time: %+v", res)
	}
	if !res.IdleExpiresAt.Equal(res.Now.Add(15 * time.Minute)) {
		t.Fatalf("idle deadline %v, now %v", res.IdleExpiresAt, res.Now)
	}
	if list, err := store.ListAll(ctx, s, "acme", c); err != nil || len(list) != 1 {
		t.Fatalf("sessions on Redis time: %v %v", list, err)
	}
	if n, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); err != nil || n != 1 {
		t.Fatalf("revoke on Redis time: %d %v", n, err)
	}
	if err := s.AppendAudit(ctx, "acme", store.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Audit(ctx, "acme", 1)
	if err != nil || len(evs) != 1 || evs[0].Time.Before(before) || evs[0].Time.After(time.Now().Add(time.Second)) {
		t.Fatalf("audit event time on Redis time: %+v %v", evs, err)
	}

	// An injected clock: every decision is taken at its time.
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := testclock.New(fixed)
	s = store.NewRedis(client, store.RedisOptions{KeyPrefix: "fixed", Now: clock.Now})
	r = treq(c, "acme", "s1", "u", fixed)
	if res := mustTouch(t, s, r); !res.Now.Equal(fixed) {
		t.Fatalf("injected clock: now %v", res.Now)
	}
	clock.Set(fixed.Add(time.Minute))
	if res := mustTouch(t, s, r); !res.Now.Equal(fixed.Add(time.Minute)) || !res.IdleExpiresAt.Equal(fixed.Add(16*time.Minute)) {
		t.Fatalf("clock moved: %+v", res)
	}
	clock.Set(fixed)
	// With a clock years away from Redis', records still expire relative
	// to the decision time, not at once.
	key := keysOf(t, client, "fixed")
	for _, k := range key {
		if pttl := client.PTTL(ctx, k).Val(); pttl <= 0 {
			t.Fatalf("key %q: PTTL %v under an injected clock", k, pttl)
		}
	}
	if err := s.AppendAudit(ctx, "acme", store.Event{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.Audit(ctx, "acme", 1); len(evs) != 1 || !evs[0].Time.Equal(fixed) {
		t.Fatalf("audit time under an injected clock: %+v", evs)
	}
}

func TestRedisCorruptData(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s, clock := clockedRedis(client, store.RedisOptions{KeyPrefix: "c"})
	c := cfg()
	ctx := context.Background()
	r := treq(c, "acme", "s1", "alice", t0)
	mustTouch(t, s, r)
	mustTouch(t, s, treq(c, "acme", "s2", "alice", t0))
	key := "c:{acme}:s:" + session.HashID("s1")
	if n := client.Exists(ctx, key).Val(); n != 1 {
		t.Fatalf("key layout changed: %q missing (keys %q)", key, keysOf(t, client, "c"))
	}
	client.HSet(ctx, key, "l", "soon")
	clock.Set(t0.Add(time.Second))
	if res := mustTouch(t, s, r); res.Status != session.Revoked {
		t.Fatalf("corrupt record: %+v", res)
	}
	if list, err := store.ListAll(ctx, s, "acme", c); err != nil || len(list) != 1 || list[0].Hash != session.HashID("s2") {
		t.Fatalf("corrupt record listed: %+v %v", list, err)
	}
	if n, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); err != nil || n != 1 {
		t.Fatalf("revoke over a corrupt record: %d %v", n, err)
	}
	client.HSet(ctx, "c:{acme}:s:"+session.HashID("s3"), "x", "")
	client.HSet(ctx, key, "l", t0.UnixMilli(), "x", "weird")
	if res := mustTouch(t, s, r); res.Status != session.Revoked {
		t.Fatalf("unknown ended status: %+v", res)
	}
	// An unparsable override inherits.
	client.HSet(ctx, "c:{other}:pol", "idle_ms", "ten", "abs_ms", "3600000")
	ov, err := s.Override(ctx, "other")
	if err != nil || ov.Idle != nil || ov.Absolute == nil || *ov.Absolute != time.Hour {
		t.Fatalf("override with a bad field: %+v %v", ov, err)
	}
	res := mustTouch(t, s, treq(c, "other", "s1", "u", t0))
	if res.Policy != (policy.Policy{Idle: 15 * time.Minute, Absolute: time.Hour}) {
		t.Fatalf("policy with a bad override field: %+v", res.Policy)
	}
	// A key of the wrong type is an error, not a panic nor a pass.
	client.Set(ctx, "c:{other}:s:"+session.HashID("s9"), "x", 0)
	if _, err := s.Touch(ctx, treq(c, "other", "s9", "u", t0)); err == nil {
		t.Fatal("touch on a key of the wrong type passed")
	}
}

func TestRedisAuditCap(t *testing.T) {
	srv := testredis.Start(t)
	s := store.NewRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{Timeout: time.Second})
	ctx := context.Background()
	const n = store.AuditCap + 150
	for i := 0; i < n; i++ {
		data, _ := json.Marshal(map[string]int{"i": i})
		if err := s.AppendAudit(ctx, "acme", store.Event{Type: "t", Time: t0.Add(time.Duration(i) * time.Millisecond), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Audit(ctx, "acme", 0)
	if err != nil || len(all) != store.AuditCap {
		t.Fatalf("audit: %d events, %v", len(all), err)
	}
	for j, ev := range all {
		var d map[string]int
		if err := json.Unmarshal(ev.Data, &d); err != nil || d["i"] != n-1-j {
			t.Fatalf("event %d: %s", j, ev.Data)
		}
	}
	if evs, _ := s.Audit(ctx, "acme", 5000); len(evs) != store.AuditCap {
		t.Fatalf("limit above the cap: %d events", len(evs))
	}
}

// TestRedisMatchesMemory plays random operations on a memory and a Redis
// store side by side and wants the same answers. Times are whole
// milliseconds and never go backwards (the suite covers old touches).
func TestRedisMatchesMemory(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(strconv.FormatInt(seed, 10), func(t *testing.T) {
			rnd := rand.New(rand.NewSource(seed))
			red, clock := clockedRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second})
			mem := store.NewMemory(clock.Now)
			c := cfg()
			c.Default = "tiny"
			if seed%2 == 0 {
				c.Apply = policy.ApplyImmediately
			}
			ctx := context.Background()
			now := t0
			accts := []string{"a", "b:{c}"}
			users := []string{"u1", "u2", "u3"}
			durs := []time.Duration{0, time.Second, 7 * time.Minute, 30 * time.Minute, 3 * time.Hour}
			for step := 0; step < 400; step++ {
				now = now.Add(time.Duration(rnd.Intn(90_000)) * time.Millisecond)
				clock.Set(now)
				acct := accts[rnd.Intn(len(accts))]
				sid := fmt.Sprint("s", rnd.Intn(6))
				user := users[rnd.Intn(len(users))]
				what := rnd.Intn(20)
				desc := fmt.Sprintf("step %d at +%v: ", step, now.Sub(t0))
				// Redis drops what has passed its retention as it goes;
				// the memory store does it in Prune.
				mem.Prune()
				// the background recording of revoked sessions changes no answer
				if step%7 == 0 {
					if _, err := red.CleanRevoked(ctx, c, 1000); err != nil {
						t.Fatalf("%sclean revoked: %v", desc, err)
					}
				}
				switch {
				case what < 12:
					r := treq(c, acct, sid, user, now)
					r.LoginAt = now.Add(-time.Duration(rnd.Intn(1200)) * time.Second)
					r.NotAfter = r.LoginAt.Add(time.Duration(rnd.Intn(40)) * time.Minute)
					r.Claimed = policy.Claimed{Idle: durs[rnd.Intn(len(durs))], Absolute: durs[rnd.Intn(len(durs))]}
					r.Passive = rnd.Intn(4) == 0
					r.TouchInterval = []time.Duration{0, time.Second, 45 * time.Second, 10 * time.Minute}[rnd.Intn(4)]
					a, errA := mem.Touch(ctx, r)
					b, errB := red.Touch(ctx, r)
					if errA != nil || errB != nil {
						t.Fatalf("%stouch: %v / %v", desc, errA, errB)
					}
					if a.Status != b.Status || a.Created != b.Created || !a.Now.Equal(b.Now) || a.Policy != b.Policy ||
						!a.IdleExpiresAt.Equal(b.IdleExpiresAt) || !a.AbsoluteExpiresAt.Equal(b.AbsoluteExpiresAt) {
						t.Fatalf("%stouch %s/%s/%s:\nmemory %+v\nredis  %+v", desc, acct, sid, user, a, b)
					}
				case what < 15:
					scopes := []store.Scope{store.ScopeSession, store.ScopeUser, store.ScopeAll, store.ScopeOthers}
					rr := store.RevokeRequest{Account: acct, Scope: scopes[rnd.Intn(len(scopes))], User: user, Policy: c,
						Sessions: []string{session.HashID(fmt.Sprint("s", rnd.Intn(8))), session.HashID(sid)}}
					a, errA := mem.Revoke(ctx, rr)
					b, errB := red.Revoke(ctx, rr)
					// Redis counts an account's live sessions by the deadlines
					// of their last write, which an override under apply
					// immediately moves without a write (docs/admin-api.md);
					// what the revocation ends is still compared, by the
					// touches that follow.
					byIndex := c.Apply == policy.ApplyImmediately && (rr.Scope == store.ScopeAll || rr.Scope == store.ScopeOthers)
					if errA != nil || errB != nil || (a != b && !byIndex) {
						t.Fatalf("%srevoke %+v: memory %d %v, redis %d %v", desc, rr, a, errA, b, errB)
					}
				case what < 17:
					var ov policy.Override
					if rnd.Intn(2) == 0 {
						ov.Idle = ptr(durs[1+rnd.Intn(len(durs)-1)])
					}
					if rnd.Intn(2) == 0 {
						ov.Absolute = ptr(durs[1+rnd.Intn(len(durs)-1)])
					}
					a, errA := mem.SetOverride(ctx, acct, ov)
					b, errB := red.SetOverride(ctx, acct, ov)
					if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
						t.Fatalf("%sset override: memory %+v %v, redis %+v %v", desc, a, errA, b, errB)
					}
				default:
					a, errA := store.ListAll(ctx, mem, acct, c)
					b, errB := store.ListAll(ctx, red, acct, c)
					if errA != nil || errB != nil || !sameSessions(a, b) {
						t.Fatalf("%ssessions:\nmemory %+v %v\nredis  %+v %v", desc, a, errA, b, errB)
					}
				}
			}
		})
	}
}

func sameSessions(a, b []store.SessionInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Hash != y.Hash || x.User != y.User || x.Name != y.Name || x.Email != y.Email || x.Role != y.Role ||
			x.IP != y.IP || x.UserAgent != y.UserAgent || !x.CreatedAt.Equal(y.CreatedAt) || !x.LastSeenAt.Equal(y.LastSeenAt) ||
			!x.IdleExpiresAt.Equal(y.IdleExpiresAt) || !x.AbsoluteExpiresAt.Equal(y.AbsoluteExpiresAt) {
			return false
		}
	}
	return true
}

// TestRedisCoalescedTouchWritesNothing counts writes with Redis's own
// dirty counter (rdb_changes_since_last_save): touches inside the touch
// interval, and passive ones, change nothing; the one at the interval
// writes.
func TestRedisCoalescedTouchWritesNothing(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	ctx := context.Background()
	changes := func() int64 {
		t.Helper()
		info, err := client.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "rdb_changes_since_last_save:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("no rdb_changes_since_last_save in INFO persistence:\n%s", info)
		return 0
	}
	s, clock := clockedRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second})
	c := cfg()
	r := treq(c, "acme", "s1", "alice", t0)
	r.TouchInterval = time.Second
	mustTouch(t, s, r)
	before := changes()
	for i := 1; i < 100; i++ {
		rr := *r
		clock.Set(t0.Add(time.Duration(i) * 10 * time.Millisecond))
		rr.Passive = i%3 == 0
		if res := mustTouch(t, s, &rr); res.Status != session.Active {
			t.Fatalf("touch %d: %s", i, res.Status)
		}
	}
	if d := changes() - before; d != 0 {
		t.Fatalf("99 touches inside the interval made %d changes, want 0", d)
	}
	rr := *r
	clock.Set(t0.Add(time.Second))
	res := mustTouch(t, s, &rr)
	if d := changes() - before; d == 0 {
		t.Fatal("the touch at the interval wrote nothing")
	}
	if want := t0.Add(time.Second).Add(res.Policy.Idle); !res.IdleExpiresAt.Equal(want) {
		t.Fatalf("idle deadline %s, want %s", res.IdleExpiresAt, want)
	}
	// Without an interval every touch writes, as before.
	before = changes()
	rr.TouchInterval = 0
	clock.Set(t0.Add(time.Second + time.Millisecond))
	mustTouch(t, s, &rr)
	if changes() == before {
		t.Fatal("a touch without interval wrote nothing")
	}
}
