package store_test

import (
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

func TestMemoryIndexConformance(t *testing.T) {
	storetest.RunIndex(t, func(t *testing.T, now func() time.Time) store.Store { return store.NewMemory(now) })
}

func TestRedisIndexConformance(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	storetest.RunIndex(t, func(t *testing.T, now func() time.Time) store.Store {
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Now: now})
	})
}

// TestRedisClusterIndexConformance: the index, its cutoffs and the
// one-time ids live in slots of their own, apart from the accounts'.
func TestRedisClusterIndexConformance(t *testing.T) {
	client := testredis.StartCluster(t).Client(t)
	storetest.RunIndex(t, func(t *testing.T, now func() time.Time) store.Store {
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Now: now})
	})
}
