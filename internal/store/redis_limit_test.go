package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisUserIndexStaysShort: without a limit, a user whose sessions
// end one after another does not pile up index members: past 16, each
// creation drops ended ones from the oldest end.
func TestRedisUserIndexStaysShort(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s, _ := clockedRedis(client, store.RedisOptions{KeyPrefix: "short", Timeout: 2 * time.Second})
	c := cfg()
	ctx := context.Background()
	for i := range 60 {
		r := treq(c, "acme", fmt.Sprint("s", i), "alice", t0)
		mustTouch(t, s, r)
		if _, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{r.SessionHash}, Policy: c}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := client.ZCard(ctx, "short:{acme}:us:alice").Result()
	if err != nil || n > 18 {
		t.Fatalf("user index holds %d members (%v), want at most 18", n, err)
	}
}
