package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// holdTouch is a go-redis hook that, once armed, holds the next touch
// script's reply: read is closed when Redis has answered, and the reply
// reaches the store only when release is closed.
type holdTouch struct {
	mu            sync.Mutex
	armed         bool
	read, release chan struct{}
}

func (h *holdTouch) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed, h.read, h.release = true, make(chan struct{}), make(chan struct{})
}

func (h *holdTouch) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdTouch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *holdTouch) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if len(args) < 2 || args[1] != scriptTouch.Hash() {
			return err
		}
		h.mu.Lock()
		hold := h.armed
		h.armed = false
		read, release := h.read, h.release
		h.mu.Unlock()
		if hold {
			close(read)
			<-release
		}
		return err
	}
}

func startCached(t *testing.T, addr, prefix string, hooks ...redis.Hook) *Cached {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DisableIdentity: true})
	for _, h := range hooks {
		client.AddHook(h)
	}
	t.Cleanup(func() { _ = client.Close() })
	c, err := NewCached(NewRedis(client, RedisOptions{KeyPrefix: prefix, Timeout: 5 * time.Second}), CacheOptions{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	runCache(t, c)
	return c
}

// runCache runs c until the test ends and, when it caches, waits until
// it may answer.
func runCache(t *testing.T, c *Cached) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if c.table == nil {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); !c.Serving(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache never started serving")
		}
	}
}

// TestCacheFillRace is the classic fill/invalidate race, made to
// happen: gateway A reads an active session from Redis; before A stores
// that answer, a revocation through gateway B ends the session and
// returns (A has acknowledged the invalidation). A's late fill must not
// answer the next request.
func TestCacheFillRace(t *testing.T) {
	srv := testredis.Start(t)
	hold := &holdTouch{}
	a := startCached(t, srv.Addr(), "race", hold)
	b := startCached(t, srv.Addr(), "race")
	cfg := policy.NewConfig()
	now := time.Now()
	req := &TouchRequest{
		Account: "acme", SessionHash: session.HashID("s1"), User: "u1",
		LoginAt: now.Add(-time.Minute), IssuedAt: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		Policy: &cfg, TouchInterval: time.Minute,
	}
	ctx := context.Background()
	if res, err := b.Touch(ctx, req); err != nil || res.Status != session.Active {
		t.Fatalf("create: %v %v", res.Status, err)
	}
	hold.arm()
	filled := make(chan TouchResult)
	go func() {
		res, err := a.Touch(ctx, req)
		if err != nil {
			t.Error(err)
		}
		filled <- res
	}()
	<-hold.read
	n, err := b.Revoke(ctx, RevokeRequest{Account: "acme", Scope: ScopeSession, Sessions: []string{req.SessionHash}, Policy: &cfg})
	if err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	close(hold.release)
	if res := <-filled; res.Status != session.Active {
		t.Fatalf("the raced touch read %v; the race did not happen", res.Status)
	}
	res, err := a.Touch(ctx, req)
	if err != nil || res.Status != session.Revoked {
		t.Fatalf("after the revocation returned, gateway A answered %v (%v): a stale fill", res.Status, err)
	}
	if hits, _ := a.CacheStats(); hits != 0 {
		t.Fatalf("%d answers from the cache", hits)
	}
}
