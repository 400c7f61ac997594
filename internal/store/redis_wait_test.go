package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// replicatedPair is a master and a replica of it, the replica in sync.
func replicatedPair(t *testing.T) (master, replica *testredis.Server) {
	t.Helper()
	master = testredis.Start(t)
	host, port, _ := strings.Cut(master.Addr(), ":")
	replica = testredis.Start(t, "--replicaof", host, port)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(master.CLI(t, "INFO", "replication"), "connected_slaves:1") ||
		!strings.Contains(replica.CLI(t, "INFO", "replication"), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatal("replica not in sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return master, replica
}

// revocations runs every revocation of s that must reach the replicas:
// Revoke (a session of its own, created first) and both back-channel
// logouts.
func revocations(t *testing.T, s *store.Redis, sid string) map[string]error {
	t.Helper()
	c := cfg()
	mustTouch(t, s, treq(c, "acme", sid, "alice", t0))
	ctx := context.Background()
	errs := map[string]error{}
	_, errs["revoke"] = s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID(sid)}, Policy: c})
	_, errs["logout sid"] = s.LogoutSID(ctx, "sid-"+sid, time.Hour)
	_, errs["logout sub"] = s.LogoutSubject(ctx, "sub-"+sid, time.Hour)
	return errs
}

// TestRedisRevokeWaitsForReplica: with a replica (revoke_replicas unset:
// 1 once a replica was seen), a revocation returns only after the
// replica acknowledged it; with the replica hung, it fails with
// ErrNotReplicated (an ErrUnavailable) after the replicas timeout,
// never silently; revoke_replicas 0 does not wait. The store has the
// gateway's 100ms socket timeouts, which WAIT must not trip over.
func TestRedisRevokeWaitsForReplica(t *testing.T) {
	master, replica := replicatedPair(t)
	auto, _ := clockedRedis(gatewayClient(t, master.Addr()), store.RedisOptions{KeyPrefix: "w", Timeout: 100 * time.Millisecond})
	for op, err := range revocations(t, auto, "s1") {
		if err != nil {
			t.Fatalf("%s with the replica in sync: %v", op, err)
		}
	}

	resume := replica.Pause(t)
	start := time.Now()
	for op, err := range revocations(t, auto, "s2") {
		if !errors.Is(err, store.ErrNotReplicated) || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the replica hung: %v, want ErrNotReplicated and ErrUnavailable", op, err)
		} else if !strings.Contains(err.Error(), "0 of 1 acknowledged") {
			t.Errorf("%s: %v, want WAIT's answer (not a socket timeout)", op, err)
		}
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("three revocations with the replica hung took %v, want about 3 x 100ms", d)
	}
	zero := 0
	off, _ := clockedRedis(gatewayClient(t, master.Addr()), store.RedisOptions{KeyPrefix: "w", Timeout: 100 * time.Millisecond, RevokeReplicas: &zero})
	for op, err := range revocations(t, off, "s3") {
		if err != nil {
			t.Errorf("%s with revoke_replicas 0: %v", op, err)
		}
	}
	resume()
	waitFor(t, 5*time.Second, "revocations to pass with the replica back", func() bool {
		for _, err := range revocations(t, auto, "s4") {
			if err != nil {
				return false
			}
		}
		return true
	})

	// The replica gone: the master reports none, but a store that has
	// seen one keeps waiting for it; a store that never saw one does not.
	replica.Stop(t)
	waitFor(t, 5*time.Second, "the master to drop the replica", func() bool {
		return strings.Contains(master.CLI(t, "INFO", "replication"), "connected_slaves:0")
	})
	for op, err := range revocations(t, auto, "s5") {
		if !errors.Is(err, store.ErrNotReplicated) {
			t.Errorf("%s with the replica gone: %v, want ErrNotReplicated", op, err)
		}
	}
	fresh, _ := clockedRedis(gatewayClient(t, master.Addr()), store.RedisOptions{KeyPrefix: "w", Timeout: 100 * time.Millisecond})
	for op, err := range revocations(t, fresh, "s6") {
		if err != nil {
			t.Errorf("%s on a master without replicas: %v", op, err)
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
