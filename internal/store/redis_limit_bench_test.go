package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// BenchmarkRedisSessionLimit measures, one request at a time, the
// creation of a session without a limit (by a new user each time, or
// by one user who piles up sessions) and under a limit of 3 for one
// user who has 3 live (evict_oldest: every creation evicts one), and a
// touch of an existing session in both accounts. It reports Redis
// commands per operation (INFO commandstats, commands run inside the
// script included, the EVALSHA itself excluded) and the time Redis spent
// in the script per operation, which the round trip in ns/op hides.
func BenchmarkRedisSessionLimit(b *testing.B) {
	srv := testredis.Start(b)
	client := srv.Client(b)
	c := cfg()
	ctx := context.Background()
	cases := []struct {
		name     string
		limit    int
		touch    bool
		newUsers bool // each creation by another user
	}{
		{"create/unlimited/new-user", 0, false, true},
		{"create/unlimited/same-user", 0, false, false},
		{"create/limit=3/same-user", 3, false, false},
		{"touch/unlimited", 0, true, false},
		{"touch/limit=3", 3, true, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix("bl-" + tc.name), Timeout: 2 * time.Second})
			if tc.limit > 0 {
				n := tc.limit
				if _, err := s.SetOverride(ctx, "acme", policy.Override{MaxSessions: &n}); err != nil {
					b.Fatal(err)
				}
			}
			now := time.Now()
			req := func(i int) *store.TouchRequest {
				user := "alice"
				if tc.newUsers && i >= 0 {
					user = fmt.Sprint("u", i)
				}
				return &store.TouchRequest{Account: "acme", SessionHash: session.HashID(fmt.Sprint("s", i)), User: user,
					LoginAt: now, NotAfter: now.Add(time.Hour), Policy: c, TouchInterval: time.Second}
			}
			for i := range 3 { // the user's live sessions
				if _, err := s.Touch(ctx, req(-1-i)); err != nil {
					b.Fatal(err)
				}
			}
			existing := req(-1)
			calls0, usec0 := commandCalls(b, client)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := existing
				if !tc.touch {
					r = req(i)
				}
				res, err := s.Touch(ctx, r)
				if err != nil || res.Status != session.Active || res.Created == tc.touch {
					b.Fatalf("touch: %v %+v", err, res)
				}
			}
			b.StopTimer()
			calls1, usec1 := commandCalls(b, client)
			b.ReportMetric(float64(calls1-calls0-int64(b.N))/float64(b.N), "cmds/op")
			b.ReportMetric(float64(usec1-usec0)/float64(b.N), "script-µs/op")
		})
	}
}

// commandCalls is the number of commands Redis has run, INFO excluded
// (the caller subtracts the one EVALSHA per operation), and the
// microseconds Redis spent in EVALSHA, the scripts' own time.
func commandCalls(b *testing.B, client *redis.Client) (calls int64, scriptUsec int64) {
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || name == "cmdstat_info" || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case k == "calls":
				calls += n
			case k == "usec" && name == "cmdstat_evalsha":
				scriptUsec += n
			}
		}
	}
	return calls, scriptUsec
}
