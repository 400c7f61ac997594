package resilience

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestCachedConformanceOnTopologies runs the store suite through the
// session cache on Sentinel and on a three-master Cluster: the lease
// set, the ack lists and pub/sub must work there too (a Cluster
// delivers a PUBLISH on one node to subscribers on every node).
func TestCachedConformanceOnTopologies(t *testing.T) {
	for name, client := range map[string]func(t *testing.T) redis.UniversalClient{
		"sentinel": func(t *testing.T) redis.UniversalClient {
			s := testredis.StartSentinel(t)
			return redis.NewUniversalClient(&redis.UniversalOptions{Addrs: s.Addrs(), MasterName: testredis.SentinelMaster, ContextTimeoutEnabled: true})
		},
		"cluster": func(t *testing.T) redis.UniversalClient {
			return redis.NewUniversalClient(&redis.UniversalOptions{Addrs: testredis.StartCluster(t).Addrs(), ContextTimeoutEnabled: true})
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := client(t)
			t.Cleanup(func() { _ = c.Close() })
			var hits uint64
			open := func(t *testing.T, now func() time.Time) store.Store {
				cs, err := store.NewCached(store.NewRedis(c, store.RedisOptions{KeyPrefix: uniquePrefix(), Timeout: 2 * time.Second, Now: now}),
					store.CacheOptions{Size: 1000})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); cs.Run(ctx) }()
				t.Cleanup(func() {
					cancel()
					<-done
					h, _ := cs.CacheStats()
					hits += h
				})
				waitUntil(t, 10*time.Second, "the cache to serve", cs.Serving)
				return cs
			}
			storetest.Run(t, open)
			if hits == 0 {
				t.Fatal("no touch was answered from the cache")
			}
		})
	}
}
