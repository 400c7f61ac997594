package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testclock"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRevokeUserInSteps: between the steps of a revocation of a user, a
// session of the user that logs in after it is created and survives, one
// that logged in before it is refused, and a session not reached yet
// still passes (the revocation has not answered); at the end every
// session of before is revoked and the count is theirs.
func TestRevokeUserInSteps(t *testing.T) {
	s, client, clock, t0 := clockedStore(t, "")
	cfg := policy.NewConfig()
	ctx := context.Background()
	touch := func(sid string, login time.Time) session.Status {
		t.Helper()
		res, err := s.Touch(ctx, &TouchRequest{Account: "acme", SessionHash: session.HashID(sid), User: "alice",
			LoginAt: login, NotAfter: clock.Now().Add(time.Hour), Policy: &cfg})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	for i := range 400 {
		touch(fmt.Sprint("old", i), t0)
	}
	clock.Advance(time.Minute)
	bob := &TouchRequest{Account: "acme", SessionHash: session.HashID("bob"), User: "bob",
		LoginAt: t0, NotAfter: clock.Now().Add(time.Hour), Policy: &cfg}
	if res, err := s.Touch(ctx, bob); err != nil || res.Status != session.Active {
		t.Fatalf("bob: %+v %v", res, err)
	}
	req := RevokeRequest{Account: "acme", Scope: ScopeUser, User: "alice", Policy: &cfg}
	st := revokeStep{}
	total, steps := 0, 0
	for st.Cursor != "0" {
		n, err := s.revokeStep(ctx, client, &req, &st)
		if err != nil {
			t.Fatal(err)
		}
		total, steps = total+n, steps+1
		if st.Cursor == "0" {
			break
		}
		clock.Advance(time.Millisecond)
		if got := touch(fmt.Sprint("new", steps), clock.Now()); got != session.Active {
			t.Fatalf("step %d: a login after the revocation: %v", steps, got)
		}
		if got := touch(fmt.Sprint("late", steps), t0); got != session.Revoked {
			t.Fatalf("step %d: a first-seen login before the revocation: %v", steps, got)
		}
	}
	if steps < 3 || total != 400 {
		t.Fatalf("%d steps ended %d sessions, want several steps and 400", steps, total)
	}
	clock.Advance(time.Second)
	for i := range 400 {
		if got := touch(fmt.Sprint("old", i), t0); got != session.Revoked {
			t.Fatalf("old%d after the revocation: %v", i, got)
		}
	}
	for i := 1; i < steps; i++ {
		if got := touch(fmt.Sprint("new", i), clock.Now()); got != session.Active {
			t.Fatalf("new%d after the revocation: %v", i, got)
		}
	}
	if res, err := s.Touch(ctx, bob); err != nil || res.Status != session.Active {
		t.Fatalf("another user's session after the revocation: %+v %v", res, err)
	}
}

// clockedStore is a Redis store with keys under prefix ("" for the
// default) on a redis-server of its own, its client, and a test clock
// at a whole second.
func clockedStore(t *testing.T, prefix string) (*Redis, *redis.Client, *testclock.Clock, time.Time) {
	t.Helper()
	srv := testredis.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { client.Close() })
	t0 := time.Now().Truncate(time.Second)
	clock := testclock.New(t0)
	return NewRedis(client, RedisOptions{KeyPrefix: prefix, Timeout: 2 * time.Second, Now: clock.Now}), client, clock, t0
}
