package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRevokeUserNotReplicatedIsOnMaster: a revocation of a user that
// too few replicas acknowledged fails with ErrNotReplicated, whose 503
// says the master has it. It must then have ended every session of the
// user on the master, not only the first step's batch.
func TestRevokeUserNotReplicatedIsOnMaster(t *testing.T) {
	master, replica := replicatedPair(t)
	opts := store.RedisOptions{KeyPrefix: "nr", Timeout: time.Second, RevokeReplicasTimeout: 200 * time.Millisecond}
	s, _ := clockedRedis(gatewayClient(t, master.Addr()), opts)
	c := cfg()
	const n = 300 // past the listpack size: ZSCAN walks it in batches
	for i := range n {
		mustTouch(t, s, treq(c, "acme", fmt.Sprint("s", i), "alice", t0))
	}
	resume := replica.Pause(t)
	_, err := s.Revoke(context.Background(), store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "alice", Policy: c})
	resume()
	if !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("revoke with the replica hung: %v, want ErrNotReplicated", err)
	}
	live := 0
	for i := range n {
		if mustTouch(t, s, treq(c, "acme", fmt.Sprint("s", i), "alice", t0)).Status == session.Active {
			live++
		}
	}
	if live != 0 {
		t.Fatalf("%d of %d sessions of the revoked user still pass on the master after the 503 that says it has the revocation", live, n)
	}
}

// TestRevokeUserEndsRevivedSession: under apply immediately, a session
// that had passed its idle deadline unobserved and was dropped from its
// user's index by the session limit's upkeep is live again after a
// longer idle override. A revocation of the user must end it, as the
// memory store does.
func TestRevokeUserEndsRevivedSession(t *testing.T) {
	srv := testredis.Start(t)
	s, clock := clockedRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{KeyPrefix: "rv", Timeout: 2 * time.Second})
	c := cfg()
	c.Apply = policy.ApplyImmediately
	ctx := context.Background()
	ten := 10
	if _, err := s.SetOverride(ctx, "acme", policy.Override{MaxSessions: &ten}); err != nil {
		t.Fatal(err)
	}
	mustTouch(t, s, treq(c, "acme", "a", "alice", t0))
	clock.Advance(20 * time.Minute) // past a's idle 15m, unobserved
	mustTouch(t, s, treq(c, "acme", "b", "alice", clock.Now()))
	if _, err := s.SetOverride(ctx, "acme", policy.Override{Idle: ptr(time.Hour), MaxSessions: &ten}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "alice", Policy: c})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustTouch(t, s, treq(c, "acme", "a", "alice", t0)).Status; got != session.Revoked {
		t.Fatalf("a after revoking alice (count %d): %v, want revoked", n, got)
	}
}
