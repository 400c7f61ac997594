package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// afterFirst runs do once, right after the first ZSCAN or script the
// client sends once armed: a race injected between an operation's round
// trips.
type afterFirst struct {
	armed atomic.Bool
	do    func()
}

func (h *afterFirst) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *afterFirst) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		switch cmd.Name() {
		case "zscan", "evalsha", "eval":
		default:
			return err
		}
		if h.armed.CompareAndSwap(true, false) {
			h.do()
		}
		return err
	}
}
func (h *afterFirst) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRevokeUserEndsLoginDuringWalk: a session of the user that logged
// in before the revocation and was created by another gateway while the
// revocation was under way (after its first ZSCAN or script) must end with the
// others, as in the memory store: either the walk meets it or the
// user's cutoff refuses it.
func TestRevokeUserEndsLoginDuringWalk(t *testing.T) {
	srv := testredis.Start(t)
	hook := &afterFirst{}
	s, clock := clockedRedis(gatewayClient(t, srv.Addr(), hook), store.RedisOptions{KeyPrefix: "walk", Timeout: 2 * time.Second})
	other := store.NewRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{KeyPrefix: "walk", Timeout: 2 * time.Second, Now: clock.Now})
	c := cfg()
	mustTouch(t, s, treq(c, "acme", "early", "alice", t0))
	clock.Advance(time.Second)
	late := treq(c, "acme", "late", "alice", t0.Add(500*time.Millisecond)) // logged in before the revocation
	hook.do = func() { mustTouch(t, other, late) }
	hook.armed.Store(true)
	if _, err := s.Revoke(context.Background(), store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "alice", Policy: c}); err != nil {
		t.Fatal(err)
	}
	if got := mustTouch(t, s, late).Status; got != session.Revoked {
		t.Fatalf("a session that logged in before the revocation of its user: %v after it, want revoked", got)
	}
}

// TestRedisLimitManyConcurrentLogins: 128 logins of one user at once
// under a limit of 3 (evict_oldest) all succeed, as in the memory
// store: each creates its session, none fails with an error.
func TestRedisLimitManyConcurrentLogins(t *testing.T) {
	srv := testredis.Start(t)
	s, _ := clockedRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{KeyPrefix: "burst", Timeout: 2 * time.Second})
	c := cfg()
	three, evict := 3, policy.EvictOldest
	if _, err := s.SetOverride(context.Background(), "acme", policy.Override{MaxSessions: &three, OnLimit: &evict}); err != nil {
		t.Fatal(err)
	}
	const n = 128
	var failed, created atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Touch(context.Background(), treq(c, "acme", fmt.Sprint("c", i), "alice", t0))
			switch {
			case err != nil:
				failed.Add(1)
				first.CompareAndSwap(nil, err.Error())
			case res.Created:
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 || created.Load() != n {
		t.Fatalf("%d concurrent logins of one user under a limit of 3: %d created, %d failed (%v)", n, created.Load(), failed.Load(), first.Load())
	}
}

// TestRedisCreateUnderLimitOneRoundTrip: a new session of a user who
// already has one, under a session limit, is one atomic operation and
// one Redis round trip at most (docs/CONTRACT.md, "Every proxied
// request").
func TestRedisCreateUnderLimitOneRoundTrip(t *testing.T) {
	srv := testredis.Start(t)
	cnt := &counter{}
	s, _ := clockedRedis(gatewayClient(t, srv.Addr(), cnt), store.RedisOptions{KeyPrefix: "lim1", Timeout: 2 * time.Second})
	c := cfg()
	three := 3
	if _, err := s.SetOverride(context.Background(), "acme", policy.Override{MaxSessions: &three}); err != nil {
		t.Fatal(err)
	}
	mustTouch(t, s, treq(c, "acme", "first", "alice", t0))
	mustTouch(t, s, treq(c, "acme", "other", "bob", t0)) // loads the script
	before := cnt.n.Load()
	if res := mustTouch(t, s, treq(c, "acme", "second", "alice", t0)); !res.Created {
		t.Fatalf("second session: %+v", res)
	}
	if n := cnt.n.Load() - before; n != 1 {
		t.Fatalf("a new session under a limit sent %d commands, want 1", n)
	}
}
