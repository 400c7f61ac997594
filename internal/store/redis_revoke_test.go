package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRevokeAccountByGeneration: revoking an account ends every session
// at once, before the background has recorded any of them: the revoked
// ones are refused, the one kept and the logins after it pass, the
// count is exact, and a second revocation counts only what lived since.
// After the cleaning every revoked session has exactly one event,
// whether a request or the cleaning recorded it, and the per-user
// counts are the live sessions again.
func TestRevokeAccountByGeneration(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s, clock := clockedRedis(client, store.RedisOptions{KeyPrefix: "g", Timeout: 2 * time.Second})
	s.EnableEvents(10000, &events.Hooks{})
	c := cfg()
	ctx := context.Background()
	status := func(sid, user string, login time.Time) session.Status {
		t.Helper()
		return mustTouch(t, s, treq(c, "acme", sid, user, login)).Status
	}
	for i := range 200 {
		status(fmt.Sprint("old", i), fmt.Sprint("u", i%7), t0)
	}
	clock.Advance(time.Minute)
	n, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeOthers,
		Sessions: []string{session.HashID("old0")}, Policy: c, By: events.ByOwner})
	if err != nil || n != 199 {
		t.Fatalf("revoke others of 200: %d, %v; want 199", n, err)
	}
	clock.Advance(time.Second)
	checks := []struct {
		sid, user string
		login     time.Time
		want      session.Status
	}{
		{"old1", "u1", t0, session.Revoked},        // revoked, recorded by this request
		{"old0", "u0", t0, session.Active},         // the one kept
		{"new", "u0", clock.Now(), session.Active}, // logged in after
		{"late", "u3", t0, session.Revoked},        // logged in before, first seen after
	}
	for _, c := range checks {
		if got := status(c.sid, c.user, c.login); got != c.want {
			t.Fatalf("%s before any cleaning: %v, want %v", c.sid, got, c.want)
		}
	}
	if looked, err := s.CleanRevoked(ctx, c, 1000); err != nil || looked != 200 {
		t.Fatalf("cleaning looked at %d: %v; want the 200 the revocation queued", looked, err)
	}
	if looked, err := s.CleanRevoked(ctx, c, 1000); err != nil || looked != 0 {
		t.Fatalf("cleaning again looked at %d: %v", looked, err)
	}
	for i := range 200 {
		want := session.Revoked
		if i == 0 {
			want = session.Active
		}
		if got := status(fmt.Sprint("old", i), fmt.Sprint("u", i%7), t0); got != want {
			t.Fatalf("old%d after cleaning: %v, want %v", i, got, want)
		}
	}
	if got := countEvents(t, client, "g:{acme}:ev", "session.revoked"); got != 199 {
		t.Fatalf("%d session.revoked events, want exactly 199", got)
	}
	pg, err := s.Sessions(ctx, "acme", c, store.Page{Limit: 100})
	if err != nil || len(pg.Sessions) != 2 || pg.Users["u0"] != 2 || len(pg.Users) != 1 {
		t.Fatalf("after cleaning: %d sessions, users %v, %v; want old0 and new of u0", len(pg.Sessions), pg.Users, err)
	}
	if n, err := s.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); err != nil || n != 2 {
		t.Fatalf("second revocation: %d, %v; want 2", n, err)
	}
}

// countEvents counts the entries of type typ in the event stream key.
func countEvents(t *testing.T, client *redis.Client, key, typ string) int {
	t.Helper()
	msgs, err := client.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Values["t"] == typ {
			n++
		}
	}
	return n
}
