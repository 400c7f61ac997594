package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
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
	testredis.WaitFor(t, 10*time.Second, "the replica in sync", func() bool {
		return strings.Contains(master.CLI(t, "INFO", "replication"), "connected_slaves:1") &&
			strings.Contains(replica.CLI(t, "INFO", "replication"), "master_link_status:up")
	})
	return master, replica
}

// revocations runs every write of s that must reach the replicas:
// Revoke (a session of its own, created first), both back-channel
// logouts and an override (apply immediately puts it in force at once).
func revocations(t *testing.T, s *store.Redis, sid string) map[string]error {
	t.Helper()
	c := cfg()
	mustTouch(t, s, treq(c, "acme", sid, "alice", t0))
	ctx := context.Background()
	errs := map[string]error{}
	_, errs["revoke"] = s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID(sid)}, Policy: c})
	_, errs["logout sid"] = s.LogoutSID(ctx, "sid-"+sid, time.Hour)
	_, errs["logout sub"] = s.LogoutSubject(ctx, "sub-"+sid, time.Hour)
	_, errs["override"] = s.SetOverride(ctx, "acme", policy.Override{Idle: ptr(20 * time.Minute)})
	return errs
}

// TestRedisRevokeWaitsForReplica: with a replica (revoke_replicas unset:
// 1 once a replica was seen), a revocation returns only after the
// replica acknowledged it; with the replica hung, it fails with
// ErrNotReplicated (an ErrUnavailable) after the replicas timeout,
// never silently; revoke_replicas 0 does not wait. The client has the
// gateway's 100ms socket timeouts, which a longer WAIT must not trip
// over.
func TestRedisRevokeWaitsForReplica(t *testing.T) {
	master, replica := replicatedPair(t)
	opts := store.RedisOptions{KeyPrefix: "w", Timeout: time.Second, RevokeReplicasTimeout: 300 * time.Millisecond}
	auto, _ := clockedRedis(gatewayClient(t, master.Addr()), opts)
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
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("four writes with the replica hung took %v, want about 4 x 300ms", d)
	}
	zero := 0
	off, _ := clockedRedis(gatewayClient(t, master.Addr()), store.RedisOptions{KeyPrefix: "w", Timeout: time.Second, RevokeReplicas: &zero})
	for op, err := range revocations(t, off, "s3") {
		if err != nil {
			t.Errorf("%s with revoke_replicas 0: %v", op, err)
		}
	}
	resume()
	testredis.WaitFor(t, 5*time.Second, "revocations to pass with the replica back", func() bool {
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
	testredis.WaitFor(t, 5*time.Second, "the master to drop the replica", func() bool {
		return strings.Contains(master.CLI(t, "INFO", "replication"), "connected_slaves:0")
	})
	for op, err := range revocations(t, auto, "s5") {
		if !errors.Is(err, store.ErrNotReplicated) {
			t.Errorf("%s with the replica gone: %v, want ErrNotReplicated", op, err)
		}
	}
	fresh, _ := clockedRedis(gatewayClient(t, master.Addr()), opts)
	for op, err := range revocations(t, fresh, "s6") {
		if err != nil {
			t.Errorf("%s on a master without replicas: %v", op, err)
		}
	}
}

// TestRedisRevokeAfterClusterFailover: after a manual Cluster failover
// the client's slot map (reloaded every 60s by default) still names the
// old master, now a replica, which answers the revocation with MOVED.
// The revocation fails (never a false success), makes the client reload
// its slot map, and the next one reaches the new master.
func TestRedisRevokeAfterClusterFailover(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.WithReplicas())
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	s, _ := clockedRedis(client, store.RedisOptions{KeyPrefix: "cf", Timeout: 2 * time.Second})
	for op, err := range revocations(t, s, "c1") {
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	c := cfg()
	mustTouch(t, s, treq(c, "acme", "c2", "alice", t0))
	slot := cl.Slot(t, "{acme}")
	old, replica := cl.MasterOf(t, slot), cl.ReplicaOf(t, slot)
	replica.CLI(t, "CLUSTER", "FAILOVER")
	cl.WaitPromoted(t, slot, old, 20*time.Second)

	ctx := context.Background()
	revoke := func() error {
		_, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID("c2")}, Policy: c})
		return err
	}
	if err := revoke(); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("revocation on the demoted master: %v, want ErrUnavailable with MOVED", err)
	}
	testredis.WaitFor(t, 5*time.Second, "the revocation to reach the new master", func() bool { return revoke() == nil })
	if res := mustTouch(t, s, treq(c, "acme", "c2", "alice", t0)); res.Status != session.Revoked {
		t.Fatalf("after the revocation on the new master: %v, want revoked", res.Status)
	}
}

// TestRevokeAccountWaitsForQueueShard: on Cluster a revocation of a
// whole account lists the account for recording in a set on another
// shard; with that shard's replica hung, the revocation fails with
// ErrNotReplicated instead of answering while a failover of that shard
// could lose the listing (and with it the revoked sessions' events).
func TestRevokeAccountWaitsForQueueShard(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.WithReplicas())
	cl.WaitReplicasListed(t, 20*time.Second)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = client.Close() })
	s, _ := clockedRedis(client, store.RedisOptions{KeyPrefix: "qs", Timeout: time.Second, RevokeReplicasTimeout: 300 * time.Millisecond})
	queues := cl.Slot(t, "{~rq}")
	account := ""
	for i := 0; account == ""; i++ { // an account on another shard than the queues' set
		if a := fmt.Sprint("acct", i); cl.MasterOf(t, cl.Slot(t, "{"+a+"}")) != cl.MasterOf(t, queues) {
			account = a
		}
	}
	c := cfg()
	mustTouch(t, s, treq(c, account, "q1", "alice", t0))
	revoke := func() error {
		_, err := s.Revoke(context.Background(), store.RevokeRequest{Account: account, Scope: store.ScopeAll, Policy: c})
		return err
	}
	if err := revoke(); err != nil {
		t.Fatalf("revoking with every replica up: %v", err)
	}
	cl.ReplicaOf(t, queues).Pause(t)
	if err := revoke(); !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("revoking with the queues' shard's replica hung: %v, want ErrNotReplicated", err)
	}
}
