package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestScriptsDeclareTheirKeys runs the store suites, and the Redis
// paths they leave out, with every script under the key guard
// (keyguard_test.go), on one Redis and on a one-node Redis Cluster: no
// script may touch a key it does not declare in KEYS, and every script
// of the package must have run.
func TestScriptsDeclareTheirKeys(t *testing.T) {
	g := newKeyGuard(t)
	t.Run("single", func(t *testing.T) {
		srv := testredis.Start(t)
		client := gatewayClient(t, srv.Addr())
		g.install(t, client, "single")
		runGuarded(t, client, g)
	})
	t.Run("cluster", func(t *testing.T) {
		_, client := oneNodeCluster(t)
		g.install(t, client, "cluster")
		runGuarded(t, client, g)
	})
	g.report(t)
	for _, n := range g.notRun() {
		t.Errorf("%s never ran under the guard: it was not checked", n)
	}
}

// runGuarded runs the store suites on stores on client, which g guards,
// and waits for g's reports.
func runGuarded(t *testing.T, client redis.UniversalClient, g *keyGuard) {
	open := func(t *testing.T, now func() time.Time) store.Store {
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Now: now})
	}
	storetest.Run(t, open)
	storetest.RunOpaque(t, open)
	storetest.RunEvents(t, withEvents(open))
	storetest.RunIndex(t, open)
	runRedisPaths(t, client)
	g.sync(t, client)
	if n := evalshaCalls(t, client); n != 0 {
		t.Errorf("%d scripts ran by EVALSHA: past the guard", n)
	}
}

// runRedisPaths runs what the suites leave out: the sessions an account
// revocation ended met, before they are recorded, by a revocation of
// their user and by the cleaning; and the cache's lease and
// invalidation.
func runRedisPaths(t *testing.T, client redis.UniversalClient) {
	ctx := context.Background()
	s, clock := clockedRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second})
	s.EnableEvents(100, &events.Hooks{})
	c := cfg()
	for _, sid := range []string{"s1", "s2", "s3", "s4"} {
		mustTouch(t, s, treq(c, "acme", sid, "u-"+sid, t0))
	}
	clock.Advance(time.Second)
	rr := store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c, By: events.ByOwner}
	if n, err := s.Revoke(ctx, rr); err != nil || n != 4 {
		t.Fatalf("revoke all: %d, %v; want 4", n, err)
	}
	rr = store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "u-s1", Policy: c, By: events.ByOwner}
	if _, err := s.Revoke(ctx, rr); err != nil {
		t.Fatalf("revoke user: %v", err)
	}
	if n, err := s.CleanRevoked(ctx, c, 100); err != nil || n != 4 {
		t.Fatalf("clean revoked: looked at %d, %v; want 4", n, err)
	}
	cached := runCached(t, client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second}, store.DefaultCacheSize)
	if err := cached.Invalidate(ctx, "acme"); err != nil {
		t.Fatalf("invalidate: %v", err)
	}
}
