package store_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// BenchmarkRedisTouchParallel drives concurrent touches (64 goroutines
// over 1000 live sessions, as a loaded gateway does) through the Redis
// store with different numbers of pipelines in flight; "unbatched" sends
// every touch on its own, as before batching.
func BenchmarkRedisTouchParallel(b *testing.B) {
	srv := testredis.Start(b)
	client := srv.Client(b)
	c := cfg()
	for _, pipelines := range []int{1, 4, 16, 1 << 20} {
		name := "pipelines=" + strconv.Itoa(pipelines)
		if pipelines == 1<<20 {
			name = "unbatched"
		}
		b.Run(name, func(b *testing.B) {
			s := store.NewRedis(client, store.RedisOptions{KeyPrefix: fmt.Sprintf("b%d", pipelines), Timeout: 2 * time.Second, Pipelines: pipelines})
			now := time.Now()
			reqs := make([]*store.TouchRequest, 1000)
			for i := range reqs {
				reqs[i] = &store.TouchRequest{
					Account: fmt.Sprint("acct-", i%50), SessionHash: session.HashID(fmt.Sprint("s", i)), User: fmt.Sprint("u", i),
					LoginAt: now, NotAfter: now.Add(time.Hour), Policy: c, TouchInterval: time.Second,
				}
				if _, err := s.Touch(b.Context(), reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			b.SetParallelism(32) // x GOMAXPROCS goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := reqs[n.Add(1)%int64(len(reqs))]
					res, err := s.Touch(b.Context(), r)
					if err != nil || res.Status != session.Active {
						b.Errorf("touch: %v %v", res.Status, err)
						return
					}
				}
			})
		})
	}
}
