package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisKeyLifetimes checks the physical lifetime (PTTL) of every key
// the Redis store writes against what the contract needs: Redis expires
// keys on real time, which no injected clock in the conformance suite
// reaches. A key expiring early forgets a revocation; a key the table
// does not know fails the test, so that a new kind of key gets a row.
func TestRedisKeyLifetimes(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "life", Timeout: 2 * time.Second})
	ctx := context.Background()
	c := cfg() // strict 15m/12h; absolute bounds 15m..2160h
	amax := c.Bounds.Absolute.Max
	now := time.Now()

	long := treq(c, "acme", "long", "alice", now)
	long.NotAfter = now.Add(24 * time.Hour) // token outlives the 12h absolute
	short := treq(c, "acme", "short", "bob", now)
	short.NotAfter = now.Add(time.Minute)
	mustTouch(t, s, long)
	mustTouch(t, s, short)
	mustTouch(t, s, treq(c, "acme", "kept", "dave", now)) // survives the revocations
	if _, err := s.Bind(ctx, &store.TouchRequest{Account: "acme", SessionHash: session.HashID("cookie"), User: "carol", Policy: c}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOverride(ctx, "acme", policy.Override{Idle: ptr(20 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, "acme", store.Event{Type: "policy.update", Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	for _, rr := range []store.RevokeRequest{
		{Account: "acme", Scope: store.ScopeUser, User: "bob", Policy: c},
		{Account: "acme", Scope: store.ScopeOthers, Sessions: []string{session.HashID("kept")}, Policy: c},
	} {
		if _, err := s.Revoke(ctx, rr); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Secret(ctx, "opaque", []byte("k")); err != nil {
		t.Fatal(err)
	}
	base := "life:{acme}:"
	// the revocation's queue outlives every session it holds
	queues, err := client.ZRange(ctx, base+"rqs", 0, -1).Result()
	if err != nil || len(queues) != 1 {
		t.Fatalf("queues %q, %v; want the revocation's", queues, err)
	}
	for _, k := range []string{base + "rq:" + queues[0], base + "rqs"} {
		if pttl := client.PTTL(ctx, k).Val(); pttl < amax || pttl > amax+2*time.Minute {
			t.Errorf("key %q: PTTL %v, want %v", k, pttl, amax+time.Minute)
		}
	}
	if _, err := s.CleanRevoked(ctx, c, 1000); err != nil {
		t.Fatal(err)
	}

	const forever = -1 // no expiry
	want := map[string]time.Duration{
		// ended records outlive the later of absolute deadline and exp
		base + "s:" + session.HashID("long"):   24*time.Hour + time.Minute,
		base + "s:" + session.HashID("short"):  12*time.Hour + time.Minute,
		base + "s:" + session.HashID("cookie"): 12*time.Hour + time.Minute,
		base + "s:" + session.HashID("kept"):   12*time.Hour + time.Minute,
		// the live indexes outlive their longest-kept record (the ended
		// sessions have left them)
		base + "us:dave": 12*time.Hour + time.Minute,
		base + "ord":     12*time.Hour + time.Minute,
		base + "dl":      12*time.Hour + time.Minute,
		// a cutoff lasts as long as any session may: the longest absolute
		base + "cut":    amax,
		base + "uc:bob": amax,
		// the opaque pointer outlives any absolute limit the bounds allow
		"life:{~" + session.HashID("cookie") + "}:o": amax + time.Minute,
		base + "pol":            forever,
		base + "audit":          forever,
		base + "rv":             forever, // a revocation generation, lost, would revive what it ended
		"life:{~secret}:opaque": forever,
		"life:{~rq}":            forever, // accounts with revocations to record; entries leave when done
	}
	keys := keysOf(t, client, "life")
	if len(keys) != len(want) {
		t.Errorf("keys %q, want the %d of the table", keys, len(want))
	}
	slack := time.Since(now) + time.Second
	for _, k := range keys {
		need, ok := want[k]
		if !ok {
			t.Errorf("key %q: not in the lifetime table", k)
			continue
		}
		pttl, err := client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case need == forever && pttl != forever:
			t.Errorf("key %q: PTTL %v, want no expiry", k, pttl)
		case need != forever && (pttl < need-slack || pttl > need+slack):
			t.Errorf("key %q: PTTL %v, want %v", k, pttl, need)
		}
	}
}

// TestRedisRetentionFollowsTouches: a touch that moves a session's
// retention (a re-issued token with a later exp) moves the physical
// lifetime of its record and of the account's login index too (touches
// that leave it unchanged skip those writes).
func TestRedisRetentionFollowsTouches(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "ret", Timeout: 2 * time.Second})
	ctx := context.Background()
	now := time.Now()
	req := treq(cfg(), "acme", "sid", "alice", now) // strict 15m/12h, exp in 1h
	mustTouch(t, s, req)
	key, ord := "ret:{acme}:s:"+session.HashID("sid"), "ret:{acme}:ord"
	lifetime := func() (time.Duration, time.Duration) {
		pttl, err := client.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		indexed, err := client.PTTL(ctx, ord).Result()
		if err != nil {
			t.Fatal(err)
		}
		return pttl, indexed
	}
	slack := time.Since(now) + time.Second
	check := func(when string, want time.Duration) {
		t.Helper()
		pttl, indexed := lifetime()
		for _, got := range []time.Duration{pttl, indexed} {
			if got < want-slack || got > want+slack {
				t.Fatalf("%s: record PTTL %v, index %v; want %v", when, pttl, indexed, want)
			}
		}
	}
	check("created", 12*time.Hour+time.Minute)
	req.LoginAt, req.NotAfter = now, now.Add(24*time.Hour) // the same session, a token valid longer
	mustTouch(t, s, req)
	check("re-issued token", 24*time.Hour+time.Minute)
}
