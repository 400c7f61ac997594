package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
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
