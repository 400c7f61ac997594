package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisOutboxWaitsForDeclaredGroups: one sink delivering and
// acknowledging every event, so that its reads drain the stream, takes
// nothing from a declared sink that has not read yet.
func TestRedisOutboxWaitsForDeclaredGroups(t *testing.T) {
	srv := testredis.Start(t)
	s, _ := clockedRedis(gatewayClient(t, srv.Addr()), store.RedisOptions{KeyPrefix: "ob", Timeout: 2 * time.Second})
	ob := s.EnableEvents(100, &events.Hooks{})
	s.DeclareGroups("fast", "slow")
	c := cfg()
	ctx := context.Background()
	for _, sid := range []string{"s1", "s2", "s3"} {
		mustTouch(t, s, treq(c, "acme", sid, "alice", t0))
	}
	read := func(group string) []events.Event {
		t.Helper()
		evs, err := ob.Read(ctx, group, "gw", 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	fast := read("fast")
	if err := ob.Ack(ctx, "fast", fast); err != nil {
		t.Fatal(err)
	}
	if again := read("fast"); len(fast) != 3 || len(again) != 0 { // the empty read would drain
		t.Fatalf("fast sink: %d events, then %d", len(fast), len(again))
	}
	if slow := read("slow"); len(slow) != 3 {
		t.Fatalf("the sink that read second got %d events, want 3", len(slow))
	}
}
