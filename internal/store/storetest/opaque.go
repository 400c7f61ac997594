package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// RunOpaque runs the suite of store.OpaqueStore and store.SecretStore
// (the opaque-cookie key is a store secret) against stores made by open.
func RunOpaque(t *testing.T, open Open) {
	run(t, open, opaqueTests)
	run(t, open, opaqueLimitTests)
}

var opaqueTests = []struct {
	name string
	fn   func(t *testing.T, s *clocked)
}{
	{"OpaqueBindAndLookup", testOpaqueBindAndLookup},
	{"OpaqueTouchesCoalesced", func(t *testing.T, s *clocked) { testCoalescing(t, s, "opaque") }},
	{"OpaqueExpiry", testOpaqueExpiry},
	{"OpaqueRebindReplaces", testOpaqueRebind},
	{"OpaqueRevokeAndListing", testOpaqueRevoke},
	{"OpaqueApplyImmediately", testOpaqueApplyImmediately},
	{"Secret", testSecret},
}

func bindReq(c *policy.Config, acct, sid, user string, now time.Time) *timedReq {
	r := req(c, acct, sid, user, time.Time{}, now)
	r.op, r.NotAfter = "bind", time.Time{}
	return r
}

// lookupReq carries no account and no user, as the gateway's does.
func lookupReq(c *policy.Config, sid string, now time.Time) *timedReq {
	return &timedReq{&store.TouchRequest{SessionHash: session.HashID(sid), Policy: c}, now, "lookup"}
}

func testOpaqueBindAndLookup(t *testing.T, s *clocked) {
	c := cfg() // strict: 15m / 12h
	wantStatus(t, touch(t, s, lookupReq(c, "c1", t0)), session.Unbound)
	// An unbound lookup creates nothing.
	wantStatus(t, touch(t, s, lookupReq(c, "c1", t0.Add(time.Second))), session.Unbound)
	res := touch(t, s, bindReq(c, "acme", "c1", "alice", t0))
	wantStatus(t, res, session.Active)
	if !res.Created {
		t.Fatal("bind did not report a creation")
	}
	wantTime(t, "absolute deadline", res.AbsoluteExpiresAt, t0.Add(12*time.Hour))
	now := t0.Add(10 * time.Minute)
	res = touch(t, s, lookupReq(c, "c1", now))
	wantStatus(t, res, session.Active)
	if res.Created || res.Account != "acme" || res.User != "alice" || res.Role != "member" || res.Name != "N alice" || res.Email != "alice@example.com" {
		t.Fatalf("lookup result: %+v", res)
	}
	wantTime(t, "idle deadline", res.IdleExpiresAt, now.Add(15*time.Minute))
	wantTime(t, "absolute deadline", res.AbsoluteExpiresAt, t0.Add(12*time.Hour))
	if res.Policy != (policy.Policy{Idle: 15 * time.Minute, Absolute: 12 * time.Hour}) {
		t.Fatalf("policy: %+v", res.Policy)
	}
	// Passive lookups do not extend idle.
	p := lookupReq(c, "c1", now.Add(5*time.Minute))
	p.Passive = true
	wantTime(t, "passive idle deadline", touch(t, s, p).IdleExpiresAt, now.Add(15*time.Minute))
	// Another cookie of the same account stays unbound.
	wantStatus(t, touch(t, s, lookupReq(c, "c2", now)), session.Unbound)
	// The ordinary Touch of a token session with the same hash in the
	// account sees the same record: one session, one state.
	list, err := s.Sessions(context.Background(), "acme", c, now)
	if err != nil || len(list) != 1 || list[0].Hash != session.HashID("c1") || list[0].User != "alice" {
		t.Fatalf("listing: %+v %v", list, err)
	}
	wantTime(t, "created_at", list[0].CreatedAt, t0)
}

func testOpaqueExpiry(t *testing.T, s *clocked) {
	c := cfg()
	touch(t, s, bindReq(c, "acme", "idle", "alice", t0))
	wantStatus(t, touch(t, s, lookupReq(c, "idle", t0.Add(15*time.Minute))), session.ExpiredIdle)
	// final, even though a later request comes "in time" again
	wantStatus(t, touch(t, s, lookupReq(c, "idle", t0.Add(15*time.Minute+time.Second))), session.ExpiredIdle)

	touch(t, s, bindReq(c, "acme", "abs", "alice", t0))
	for now := t0.Add(10 * time.Minute); now.Before(t0.Add(12 * time.Hour)); now = now.Add(10 * time.Minute) {
		wantStatus(t, touch(t, s, lookupReq(c, "abs", now)), session.Active)
	}
	wantStatus(t, touch(t, s, lookupReq(c, "abs", t0.Add(12*time.Hour))), session.ExpiredAbsolute)
	// Past retention the record is gone: unbound, never active again.
	wantStatus(t, touch(t, s, lookupReq(c, "abs", t0.Add(13*time.Hour))), session.Unbound)
}

func testOpaqueRebind(t *testing.T, s *clocked) {
	c := cfg()
	touch(t, s, bindReq(c, "acme", "c1", "alice", t0))
	revoke(t, s, t0.Add(time.Minute), store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID("c1")}, Policy: c})
	wantStatus(t, touch(t, s, lookupReq(c, "c1", t0.Add(2*time.Minute))), session.Revoked)
	// The upstream logs the same cookie value in again: a new session.
	later := t0.Add(3 * time.Minute)
	res := touch(t, s, bindReq(c, "acme", "c1", "bob", later))
	wantStatus(t, res, session.Active)
	res = touch(t, s, lookupReq(c, "c1", later.Add(time.Minute)))
	wantStatus(t, res, session.Active)
	if res.User != "bob" {
		t.Fatalf("user after rebind = %q", res.User)
	}
	wantTime(t, "absolute deadline", res.AbsoluteExpiresAt, later.Add(12*time.Hour))
	// Binding is never stopped by a revoke-all cutoff: its login is now.
	revoke(t, s, later.Add(2*time.Minute), store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c})
	touch(t, s, bindReq(c, "acme", "c3", "carol", later.Add(2*time.Minute)))
	wantStatus(t, touch(t, s, lookupReq(c, "c3", later.Add(3*time.Minute))), session.Active)
}

func testOpaqueRevoke(t *testing.T, s *clocked) {
	c := cfg()
	for i := 0; i < 4; i++ {
		touch(t, s, bindReq(c, "acme", fmt.Sprint("o", i), fmt.Sprint("u", i%2), t0))
	}
	// a JWT session of the same account counts too
	touch(t, s, req(c, "acme", "jwt", "u0", t0, t0))
	touch(t, s, bindReq(c, "other", "x", "u0", t0))
	now := t0.Add(time.Minute)
	if n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "u1", Policy: c}); n != 2 {
		t.Fatalf("revoke user counted %d, want 2", n)
	}
	wantStatus(t, touch(t, s, lookupReq(c, "o1", now.Add(time.Second))), session.Revoked)
	wantStatus(t, touch(t, s, lookupReq(c, "o0", now.Add(time.Second))), session.Active)
	list, err := s.Sessions(context.Background(), "acme", c, now.Add(time.Second))
	if err != nil || len(list) != 3 {
		t.Fatalf("listing: %+v %v", list, err)
	}
	if n := revoke(t, s, now.Add(2*time.Second), store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); n != 3 {
		t.Fatalf("revoke all counted %d, want 3", n)
	}
	for i := 0; i < 4; i++ {
		wantStatus(t, touch(t, s, lookupReq(c, fmt.Sprint("o", i), now.Add(3*time.Second))), session.Revoked)
	}
	wantStatus(t, touch(t, s, lookupReq(c, "x", now.Add(3*time.Second))), session.Active)
}

func testOpaqueApplyImmediately(t *testing.T, s *clocked) {
	c := cfg()
	c.Apply = policy.ApplyImmediately
	touch(t, s, bindReq(c, "acme", "c1", "alice", t0))
	idle := 5 * time.Minute
	if _, err := s.SetOverride(context.Background(), "acme", policy.Override{Idle: &idle}); err != nil {
		t.Fatal(err)
	}
	res := touch(t, s, lookupReq(c, "c1", t0.Add(time.Minute)))
	wantStatus(t, res, session.Active)
	wantTime(t, "idle deadline", res.IdleExpiresAt, t0.Add(6*time.Minute))
	wantStatus(t, touch(t, s, lookupReq(c, "c1", t0.Add(6*time.Minute))), session.ExpiredIdle)
}

func testSecret(t *testing.T, s *clocked) {
	ss, ok := s.Store.(store.SecretStore)
	if !ok {
		t.Fatalf("%T does not implement store.SecretStore", s)
	}
	ctx := context.Background()
	first := []byte("first-secret-\x00\xff-bytes")
	got, err := ss.Secret(ctx, "opaque", first)
	if err != nil || string(got) != string(first) {
		t.Fatalf("first secret: %q %v", got, err)
	}
	got, err = ss.Secret(ctx, "opaque", []byte("second"))
	if err != nil || string(got) != string(first) {
		t.Fatalf("second call: %q %v, want the first secret", got, err)
	}
	got, err = ss.Secret(ctx, "other", []byte("second"))
	if err != nil || string(got) != "second" {
		t.Fatalf("other name: %q %v", got, err)
	}
}
