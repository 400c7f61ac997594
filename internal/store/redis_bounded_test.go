package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisCallsReadFewSessions: a page's scripts read no more session
// records than its limit each, revoking a user reads that user's sessions, not the
// account's, and revoking the account reads none, its background
// recording a batch per script. Redis logs the commands a script runs in SLOWLOG, so with
// a threshold of 0 the log counts the records each script read.
func TestRedisCallsReadFewSessions(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s, _ := clockedRedis(client, store.RedisOptions{KeyPrefix: "b", Timeout: 2 * time.Second})
	c := cfg()
	ctx := context.Background()
	for i := range 3 {
		mustTouch(t, s, treq(c, "acme", fmt.Sprint("a", i), "alice", t0))
	}
	for i := range 300 {
		mustTouch(t, s, treq(c, "acme", fmt.Sprint("o", i), fmt.Sprint("u", i), t0))
	}
	reads := func(op func()) int {
		t.Helper()
		for _, kv := range [][2]string{{"slowlog-log-slower-than", "0"}, {"slowlog-max-len", "100000"}} {
			if err := client.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.Do(ctx, "SLOWLOG", "RESET").Err(); err != nil {
			t.Fatal(err)
		}
		op()
		logs, err := client.SlowLogGet(ctx, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return sessionReads(logs)
	}
	// a page: the range of ord reads no record; the gateway reads the
	// records' users, and the sessions' script, given their indexes,
	// reads the page's 10 once
	var pg store.SessionPage
	var steps []int
	if n := reads(func() {
		var err error
		if pg, err = s.Sessions(ctx, "acme", c, store.Page{Limit: 10}); err != nil {
			t.Fatal(err)
		}
		steps = scriptReads(t, client)
	}); n != 10 || len(steps) == 0 || slices.Max(steps) != 10 || len(pg.Sessions) != 10 {
		// exactly 10: not fewer either, which would mean the
		// log no longer shows what scripts read
		t.Fatalf("a page of 10 read %d session records (%v per script) and listed %d", n, steps, len(pg.Sessions))
	}
	var ended int
	if n := reads(func() {
		var err error
		if ended, err = s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "alice", Policy: c}); err != nil {
			t.Fatal(err)
		}
	}); n > 3 || ended != 3 {
		t.Fatalf("revoking a user of 3 sessions read %d session records and ended %d", n, ended)
	}
	// revoking the account: one script that reads no session record;
	// the background records them, a batch per script
	reads(func() {
		var err error
		if ended, err = s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); err != nil {
			t.Fatal(err)
		}
		steps = scriptReads(t, client)
	})
	// (a first EVALSHA that finds no script is logged too)
	if ended != 300 || len(steps) == 0 || slices.Max(steps) != 0 {
		t.Fatalf("revoking an account of 300 live sessions ended %d, its scripts read %v session records", ended, steps)
	}
	reads(func() {
		n, err := s.CleanRevoked(ctx, c, 1000)
		if err != nil || n != 300 {
			t.Fatalf("cleaning looked at %d sessions: %v", n, err)
		}
		steps = scriptReads(t, client)
	})
	sum := 0
	for _, n := range steps {
		sum += n
	}
	if len(steps) < 3 || slices.Max(steps) > 25 || sum != 300 {
		t.Fatalf("recording 300 revoked sessions: its scripts read %v session records", steps)
	}
}

// scriptReads returns the session records each script in SLOWLOG read.
func scriptReads(t *testing.T, client redis.UniversalClient) []int {
	t.Helper()
	logs, err := client.SlowLogGet(context.Background(), -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return readsPerScript(logs)
}

// readsPerScript returns how many session records each logged script
// read: Redis logs a script's commands, then the script.
func readsPerScript(logs []redis.SlowLog) []int {
	slices.SortFunc(logs, func(a, b redis.SlowLog) int { return int(a.ID - b.ID) })
	var out []int
	var cur []redis.SlowLog
	for _, l := range logs {
		if len(l.Args) > 0 && strings.HasPrefix(strings.ToUpper(l.Args[0]), "EVAL") {
			out = append(out, sessionReads(cur))
			cur = cur[:0]
			continue
		}
		cur = append(cur, l)
	}
	return out
}

// sessionReads counts the logged commands that read a session record,
// but for the gateway's own reads of a record's user before a script
// that declares the user's index (usersOf).
func sessionReads(logs []redis.SlowLog) int {
	n := 0
	for _, l := range logs {
		if len(l.Args) < 2 || !strings.Contains(l.Args[1], "}:s:") {
			continue
		}
		if len(l.Args) == 3 && strings.EqualFold(l.Args[0], "HGET") && l.Args[2] == "u" {
			continue
		}
		switch strings.ToUpper(l.Args[0]) {
		case "HMGET", "HGETALL", "HGET":
			n++
		}
	}
	return n
}
