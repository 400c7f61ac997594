package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// runCached starts a cache in front of a Redis store on client and,
// when it caches, waits until it may answer.
func runCached(t *testing.T, client redis.UniversalClient, opts store.RedisOptions, size int) *store.Cached {
	t.Helper()
	c, err := store.NewCached(store.NewRedis(client, opts), store.CacheOptions{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	store.RunCache(t, c)
	return c
}

// TestCachedConformance runs the store suite through the cache, on and
// off. With it on, the suite's repeat touches inside the touch interval
// are answered from the cache (counted), and every revocation and
// override must still show on the next touch.
func TestCachedConformance(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	for _, size := range []int{store.DefaultCacheSize, 0} {
		var hits atomic.Uint64
		open := func(t *testing.T, now func() time.Time) store.Store {
			c := runCached(t, client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Now: now}, size)
			t.Cleanup(func() {
				h, _ := c.CacheStats()
				hits.Add(h)
			})
			return c
		}
		name := "on"
		if size == 0 {
			name = "off"
		}
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, open)
			storetest.RunOpaque(t, open)
		})
		if size > 0 && hits.Load() == 0 {
			t.Fatal("the suite never hit the cache: it tested nothing of it")
		}
		if size == 0 && hits.Load() != 0 {
			t.Fatalf("cache off answered %d touches", hits.Load())
		}
		t.Logf("cache %s: %d touches answered from the cache", name, hits.Load())
	}
}

func cachedTouchReq(cfg *policy.Config, now time.Time) *store.TouchRequest {
	return &store.TouchRequest{
		Account: "acme", SessionHash: session.HashID("s1"), User: "u1",
		LoginAt: now.Add(-time.Minute), IssuedAt: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		Policy: cfg, TouchInterval: time.Minute,
	}
}

// TestCachedRevokeReachesOtherGateway: gateway A caches a session;
// a revocation through gateway B returns only after A has forgotten it.
func TestCachedRevokeReachesOtherGateway(t *testing.T) {
	srv := testredis.Start(t)
	opts := store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: time.Second}
	a := runCached(t, gatewayClient(t, srv.Addr()), opts, 100)
	b := runCached(t, gatewayClient(t, srv.Addr()), opts, 100)
	cfg := policy.NewConfig()
	cfg.Apply = policy.ApplyImmediately
	ctx := context.Background()
	req := cachedTouchReq(&cfg, time.Now())
	for range 3 {
		if res, err := a.Touch(ctx, req); err != nil || res.Status != session.Active {
			t.Fatalf("touch: %v %v", res.Status, err)
		}
	}
	if h, _ := a.CacheStats(); h != 2 {
		t.Fatalf("%d cache hits, want 2", h)
	}
	// apply immediately: an override changes the policy in force at once
	idle := 7 * time.Minute
	if _, err := b.SetOverride(ctx, "acme", policy.Override{Idle: &idle}); err != nil {
		t.Fatal(err)
	}
	if res, err := a.Touch(ctx, req); err != nil || res.Policy.Idle != idle {
		t.Fatalf("after the override: idle %s, %v; want %s", res.Policy.Idle, err, idle)
	}
	n, err := b.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "u1", Policy: &cfg})
	if err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if res, err := a.Touch(ctx, req); err != nil || res.Status != session.Revoked {
		t.Fatalf("after the revocation: %v %v", res.Status, err)
	}
}

// TestCachedWaitsOutSilentLease: a lease whose gateway never
// acknowledges holds a revocation until it runs out, not longer.
func TestCachedWaitsOutSilentLease(t *testing.T) {
	srv := testredis.Start(t)
	prefix := uniquePrefix(t.Name())
	client := gatewayClient(t, srv.Addr())
	b := runCached(t, client, store.RedisOptions{KeyPrefix: prefix, Timeout: time.Second}, 0)
	cfg := policy.NewConfig()
	rdb := srv.Client(t)
	// a gateway that holds a lease for 700 ms more and never answers
	var now int64
	tm, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	now = tm.UnixMilli()
	if err := rdb.ZAdd(context.Background(), prefix+":{%7Egw}:leases", redis.Z{Score: float64(now + 700), Member: "silent"}).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.Revoke(context.Background(), store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: &cfg}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 650*time.Millisecond || d > 3*time.Second {
		t.Fatalf("revocation took %s; want the silent lease's 700ms", d)
	}
}

// TestCachedEvictionReachesOtherGateway: gateway A caches a session;
// a new session of the same user at the limit, created through gateway
// B, evicts it, and B's answer comes only after A has forgotten it.
func TestCachedEvictionReachesOtherGateway(t *testing.T) {
	srv := testredis.Start(t)
	opts := store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: time.Second}
	a := runCached(t, gatewayClient(t, srv.Addr()), opts, 100)
	b := runCached(t, gatewayClient(t, srv.Addr()), opts, 100)
	cfg := policy.NewConfig()
	ctx := context.Background()
	one, mode := 1, policy.EvictOldest
	if _, err := b.SetOverride(ctx, "acme", policy.Override{MaxSessions: &one, OnLimit: &mode}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	req := cachedTouchReq(&cfg, now)
	for range 2 {
		if res, err := a.Touch(ctx, req); err != nil || res.Status != session.Active {
			t.Fatalf("touch: %v %v", res.Status, err)
		}
	}
	if h, _ := a.CacheStats(); h != 1 {
		t.Fatalf("%d cache hits, want 1", h)
	}
	second := cachedTouchReq(&cfg, now)
	second.SessionHash, second.LoginAt = session.HashID("s2"), now
	res, err := b.Touch(ctx, second)
	if err != nil || res.Status != session.Active || len(res.Evicted) != 1 {
		t.Fatalf("second session: %v evicted %d, %v", res.Status, len(res.Evicted), err)
	}
	if res, err := a.Touch(ctx, req); err != nil || res.Status != session.Revoked {
		t.Fatalf("the evicted session on the other gateway: %v %v", res.Status, err)
	}
	// an opaque login (Bind) evicts the same way
	if res, err := a.Touch(ctx, second); err != nil || res.Status != session.Active {
		t.Fatalf("touch s2: %v %v", res.Status, err)
	}
	third := cachedTouchReq(&cfg, now)
	third.SessionHash, third.LoginAt = session.HashID("s3"), now
	bound, err := b.Bind(ctx, third)
	if err != nil || len(bound.Evicted) != 1 {
		t.Fatalf("bind: evicted %d, %v", len(bound.Evicted), err)
	}
	if res, err := a.Touch(ctx, second); err != nil || res.Status != session.Revoked {
		t.Fatalf("the session evicted by a bind on the other gateway: %v %v", res.Status, err)
	}
}
