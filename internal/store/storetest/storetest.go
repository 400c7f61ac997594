// Package storetest is the conformance suite every store.Store passes.
// Each implementation's tests call Run with a constructor of fresh,
// empty stores.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testclock"
)

// Open returns a fresh, empty store for one subtest, constructed with
// the clock now.
type Open func(t *testing.T, now func() time.Time) store.Store

// clocked is a store under test and its clock: the suite sets the clock
// to each request's time before making it.
type clocked struct {
	store.Store
	clock *testclock.Clock
}

// timedReq is a request, the time it is made at and what it asks: a
// Touch, or an OpaqueStore's Lookup or Bind.
type timedReq struct {
	*store.TouchRequest
	now time.Time
	op  string // "", "lookup", "bind"
}

func (s *clocked) touch(r *timedReq) (store.OpaqueResult, error) {
	s.clock.Set(r.now)
	ctx := context.Background()
	if r.op == "" {
		res, err := s.Store.Touch(ctx, r.TouchRequest)
		return store.OpaqueResult{TouchResult: res}, err
	}
	os, ok := s.Store.(store.OpaqueStore)
	if !ok {
		return store.OpaqueResult{}, fmt.Errorf("%T does not implement store.OpaqueStore", s.Store)
	}
	if r.op == "bind" {
		return os.Bind(ctx, r.TouchRequest)
	}
	return os.Lookup(ctx, r.TouchRequest)
}

// Sessions lists at now, all pages.
func (s *clocked) Sessions(ctx context.Context, account string, cfg *policy.Config, now time.Time) ([]store.SessionInfo, error) {
	s.clock.Set(now)
	return store.ListAll(ctx, s.Store, account, cfg)
}

// Run runs the suite of store.Store against stores made by open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *clocked)
	}{
		{"CreateAndTouch", testCreateAndTouch},
		{"IdleExpiryIsFinal", testIdleExpiry},
		{"AbsoluteNeverExtended", testAbsolute},
		{"PassiveDoesNotExtend", testPassive},
		{"LoginInFutureCountsAsNow", testFutureLogin},
		{"PolicyPrecedence", testPolicyPrecedence},
		{"ApplyNextLogin", testApplyNextLogin},
		{"ApplyImmediately", testApplyImmediately},
		{"OverrideRoundTrip", testOverride},
		{"RevokeSession", testRevokeSession},
		{"RevokeUser", testRevokeUser},
		{"RevokeAllAndCutoff", testRevokeAll},
		{"RevokeOthers", testRevokeOthers},
		{"SessionsListing", testSessions},
		{"SessionsPages", testPages},
		{"SessionsPagesUnderChange", testPagesUnderChange},
		{"AccountIsolation", testIsolation},
		{"Audit", testAudit},
		{"RetentionPassedStartsOver", testRetention},
		{"ConcurrentTouches", testConcurrent},
		{"SessionBelongsToItsUser", testWrongUser},
		{"CutoffMillisecondPrecision", testCutoffMillis},
		{"TouchesCoalesced", func(t *testing.T, s *clocked) { testCoalescing(t, s, "token") }},
		{"Generations", testGenerations},
		{"RevokeRejectsBadRequests", func(t *testing.T, s *clocked) {
			c := cfg()
			touch(t, s, req(c, "acme", "s1", "alice", t0, t0))
			for _, rr := range []store.RevokeRequest{
				{Account: "acme", Scope: "everything", Policy: c},
				{Account: "acme", Scope: "", Policy: c},
				{Account: "acme", Scope: store.ScopeUser, Policy: c},
			} {
				if n, err := s.Revoke(context.Background(), rr); err == nil {
					t.Fatalf("revoke %+v: no error (ended %d)", rr, n)
				}
			}
			wantStatus(t, touch(t, s, req(c, "acme", "s1", "alice", t0, t0.Add(time.Second))), session.Active)
		}},
		{"Ping", func(t *testing.T, s *clocked) {
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("ping: %v", err)
			}
		}},
	}
	tests = append(tests, guardTests...)
	tests = append(tests, limitTests...)
	run(t, open, tests)
}

func run(t *testing.T, open Open, tests []struct {
	name string
	fn   func(t *testing.T, s *clocked)
}) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(t0)
			tc.fn(t, &clocked{open(t, clock.Now), clock})
		})
	}
}

var t0 = time.Now().Truncate(time.Second)

func cfg() *policy.Config {
	c := policy.NewConfig()
	c.Presets["tiny"] = policy.Policy{Idle: 5 * time.Minute, Absolute: 20 * time.Minute}
	return &c
}

func req(c *policy.Config, acct, sid, user string, login, now time.Time) *timedReq {
	return &timedReq{&store.TouchRequest{
		Account: acct, SessionHash: session.HashID(sid), User: user, Role: "member",
		Name: "N " + user, Email: user + "@example.com", IP: "192.0.2.1", UserAgent: "test-agent",
		LoginAt: login, NotAfter: now.Add(time.Hour), Policy: c,
	}, now, ""}
}

func touch(t *testing.T, s *clocked, r *timedReq) store.OpaqueResult {
	t.Helper()
	res, err := s.touch(r)
	if err != nil {
		t.Fatalf("touch: %v", err)
	}
	return res
}

func at(r *timedReq, now time.Time) *timedReq {
	c := *r.TouchRequest
	return &timedReq{&c, now, r.op}
}

func wantStatus(t *testing.T, res store.OpaqueResult, want session.Status) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status = %s, want %s (result %+v)", res.Status, want, res)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

func testCreateAndTouch(t *testing.T, s *clocked) {
	c := cfg() // strict: 15m / 12h
	login := t0.Add(-time.Minute)
	r := req(c, "acme", "s1", "alice", login, t0)
	res := touch(t, s, r)
	wantStatus(t, res, session.Active)
	if !res.Created {
		t.Fatal("first touch did not report creation")
	}
	wantTime(t, "now", res.Now, t0)
	wantTime(t, "idle deadline", res.IdleExpiresAt, t0.Add(15*time.Minute))
	wantTime(t, "absolute deadline", res.AbsoluteExpiresAt, login.Add(12*time.Hour))
	if res.Policy != (policy.Policy{Idle: 15 * time.Minute, Absolute: 12 * time.Hour}) {
		t.Fatalf("policy = %+v", res.Policy)
	}
	res = touch(t, s, at(r, t0.Add(10*time.Minute)))
	wantStatus(t, res, session.Active)
	if res.Created {
		t.Fatal("second touch reported creation")
	}
	wantTime(t, "idle deadline", res.IdleExpiresAt, t0.Add(25*time.Minute))
	// A touch from the past (a retry, a skewed instance) never moves
	// last-seen backwards.
	res = touch(t, s, at(r, t0.Add(5*time.Minute)))
	wantTime(t, "idle deadline after old touch", res.IdleExpiresAt, t0.Add(25*time.Minute))
}

func testIdleExpiry(t *testing.T, s *clocked) {
	c := cfg()
	r := req(c, "acme", "s1", "alice", t0, t0)
	touch(t, s, r)
	wantStatus(t, touch(t, s, at(r, t0.Add(15*time.Minute-time.Millisecond))), session.Active)
	deadline := t0.Add(15*time.Minute - time.Millisecond).Add(15 * time.Minute)
	wantStatus(t, touch(t, s, at(r, deadline)), session.ExpiredIdle)
	// Final: a later policy raise or request never revives it.
	wantStatus(t, touch(t, s, at(r, deadline.Add(time.Second))), session.ExpiredIdle)
	if _, err := s.SetOverride(context.Background(), "acme", ov(60, 600)); err != nil {
		t.Fatal(err)
	}
	c.Apply = policy.ApplyImmediately
	wantStatus(t, touch(t, s, at(r, deadline.Add(2*time.Second))), session.ExpiredIdle)
}

func testAbsolute(t *testing.T, s *clocked) {
	c := cfg()
	c.Default = "tiny" // 5m / 20m
	r := req(c, "acme", "s1", "alice", t0, t0)
	now := t0
	for i := 0; i < 9; i++ { // a request every 2m keeps idle alive
		wantStatus(t, touch(t, s, at(r, now)), session.Active)
		now = now.Add(2 * time.Minute)
	}
	res := touch(t, s, at(r, t0.Add(20*time.Minute-time.Millisecond)))
	wantStatus(t, res, session.Active)
	wantTime(t, "absolute deadline", res.AbsoluteExpiresAt, t0.Add(20*time.Minute))
	wantStatus(t, touch(t, s, at(r, t0.Add(20*time.Minute))), session.ExpiredAbsolute)
	wantStatus(t, touch(t, s, at(r, t0.Add(21*time.Minute))), session.ExpiredAbsolute)
}

func testPassive(t *testing.T, s *clocked) {
	c := cfg()
	r := req(c, "acme", "s1", "alice", t0, t0)
	touch(t, s, r)
	p := at(r, t0.Add(10*time.Minute))
	p.Passive = true
	res := touch(t, s, p)
	wantStatus(t, res, session.Active)
	wantTime(t, "idle deadline after passive", res.IdleExpiresAt, t0.Add(15*time.Minute))
	wantStatus(t, touch(t, s, at(p, t0.Add(15*time.Minute))), session.ExpiredIdle)
	// A passive first request still creates the session.
	q := req(c, "acme", "s2", "alice", t0, t0)
	q.Passive = true
	res = touch(t, s, q)
	if !res.Created || res.Status != session.Active {
		t.Fatalf("passive first touch: %+v", res)
	}
}

func testFutureLogin(t *testing.T, s *clocked) {
	c := cfg()
	r := req(c, "acme", "s1", "alice", t0.Add(time.Hour), t0)
	res := touch(t, s, r)
	wantTime(t, "absolute deadline", res.AbsoluteExpiresAt, t0.Add(12*time.Hour))
}

func ov(idleMin, absMin int) policy.Override {
	var o policy.Override
	if idleMin > 0 {
		d := time.Duration(idleMin) * time.Minute
		o.Idle = &d
	}
	if absMin > 0 {
		d := time.Duration(absMin) * time.Minute
		o.Absolute = &d
	}
	return o
}

func testPolicyPrecedence(t *testing.T, s *clocked) {
	c := cfg()
	ctx := context.Background()
	// Claims win over the default, within bounds.
	r := req(c, "acme", "s1", "alice", t0, t0)
	r.Claimed = policy.Claimed{Idle: 30 * time.Minute, Absolute: 10000 * time.Hour}
	res := touch(t, s, r)
	if res.Policy != (policy.Policy{Idle: 30 * time.Minute, Absolute: 2160 * time.Hour}) {
		t.Fatalf("claimed policy: %+v", res.Policy)
	}
	// The account override wins over claims, per field.
	if _, err := s.SetOverride(ctx, "acme", ov(20, 0)); err != nil {
		t.Fatal(err)
	}
	r2 := req(c, "acme", "s2", "alice", t0, t0)
	r2.Claimed = policy.Claimed{Idle: 30 * time.Minute, Absolute: 2 * time.Hour}
	res = touch(t, s, r2)
	if res.Policy != (policy.Policy{Idle: 20 * time.Minute, Absolute: 2 * time.Hour}) {
		t.Fatalf("override+claim policy: %+v", res.Policy)
	}
	// Idle is capped at absolute.
	r3 := req(c, "other", "s3", "bob", t0, t0)
	r3.Claimed = policy.Claimed{Idle: 10 * time.Hour, Absolute: time.Hour}
	res = touch(t, s, r3)
	if res.Policy != (policy.Policy{Idle: time.Hour, Absolute: time.Hour}) {
		t.Fatalf("capped policy: %+v", res.Policy)
	}
	// Too small values are clamped up to the bounds.
	r4 := req(c, "other", "s4", "bob", t0, t0)
	r4.Claimed = policy.Claimed{Idle: time.Second, Absolute: time.Second}
	res = touch(t, s, r4)
	if res.Policy != (policy.Policy{Idle: 5 * time.Minute, Absolute: 15 * time.Minute}) {
		t.Fatalf("clamped policy: %+v", res.Policy)
	}
}

func testApplyNextLogin(t *testing.T, s *clocked) {
	c := cfg()
	r := req(c, "acme", "s1", "alice", t0, t0)
	touch(t, s, r)
	if _, err := s.SetOverride(context.Background(), "acme", ov(5, 15)); err != nil {
		t.Fatal(err)
	}
	res := touch(t, s, at(r, t0.Add(10*time.Minute)))
	wantStatus(t, res, session.Active)
	if res.Policy.Idle != 15*time.Minute {
		t.Fatalf("live session left its snapshot: %+v", res.Policy)
	}
	res = touch(t, s, req(c, "acme", "s2", "alice", t0, t0))
	if res.Policy != (policy.Policy{Idle: 5 * time.Minute, Absolute: 15 * time.Minute}) {
		t.Fatalf("new session policy: %+v", res.Policy)
	}
}

func testApplyImmediately(t *testing.T, s *clocked) {
	c := cfg()
	c.Apply = policy.ApplyImmediately
	r := req(c, "acme", "s1", "alice", t0, t0)
	touch(t, s, r)
	if _, err := s.SetOverride(context.Background(), "acme", ov(5, 15)); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, touch(t, s, at(r, t0.Add(6*time.Minute))), session.ExpiredIdle)
	r2 := req(c, "acme", "s2", "alice", t0, t0)
	touch(t, s, r2)
	wantStatus(t, touch(t, s, at(r2, t0.Add(4*time.Minute))), session.Active)
	wantStatus(t, touch(t, s, at(r2, t0.Add(8*time.Minute))), session.Active)
	wantStatus(t, touch(t, s, at(r2, t0.Add(15*time.Minute))), session.ExpiredAbsolute)
}

func testOverride(t *testing.T, s *clocked) {
	ctx := context.Background()
	got, err := s.Override(ctx, "acme")
	if err != nil || !got.IsZero() {
		t.Fatalf("fresh override = %+v, %v", got, err)
	}
	old, err := s.SetOverride(ctx, "acme", ov(20, 0))
	if err != nil || !old.IsZero() {
		t.Fatalf("set: old=%+v err=%v", old, err)
	}
	got, _ = s.Override(ctx, "acme")
	if got.Idle == nil || *got.Idle != 20*time.Minute || got.Absolute != nil {
		t.Fatalf("override = %+v", got)
	}
	old, _ = s.SetOverride(ctx, "acme", ov(0, 600))
	if old.Idle == nil || *old.Idle != 20*time.Minute || old.Absolute != nil {
		t.Fatalf("old = %+v", old)
	}
	got, _ = s.Override(ctx, "acme")
	if got.Idle != nil || got.Absolute == nil || *got.Absolute != 600*time.Minute {
		t.Fatalf("override = %+v", got)
	}
	if _, err := s.SetOverride(ctx, "acme", policy.Override{}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Override(ctx, "acme"); !got.IsZero() {
		t.Fatalf("cleared override = %+v", got)
	}
}

func revoke(t *testing.T, s *clocked, now time.Time, rr store.RevokeRequest) int {
	t.Helper()
	s.clock.Set(now)
	n, err := s.Revoke(context.Background(), rr)
	if err != nil {
		t.Fatalf("revoke %s: %v", rr.Scope, err)
	}
	return n
}

func testRevokeSession(t *testing.T, s *clocked) {
	c := cfg()
	a := req(c, "acme", "s1", "alice", t0, t0)
	b := req(c, "acme", "s2", "alice", t0, t0)
	touch(t, s, a)
	touch(t, s, b)
	now := t0.Add(time.Minute)
	// By raw id the caller hashes first; candidates are tried in order.
	if n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{"nope", session.HashID("s1")}, Policy: c}); n != 1 {
		t.Fatalf("revoked %d, want 1", n)
	}
	if n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID("s1")}, Policy: c}); n != 0 {
		t.Fatalf("second revoke counted %d, want 0", n)
	}
	if n := revoke(t, s, now, store.RevokeRequest{Account: "other", Scope: store.ScopeSession, Sessions: []string{session.HashID("s2")}, Policy: c}); n != 0 {
		t.Fatalf("revoke in another account counted %d", n)
	}
	wantStatus(t, touch(t, s, at(a, now.Add(time.Second))), session.Revoked)
	wantStatus(t, touch(t, s, at(b, now.Add(time.Second))), session.Active)
	// No cutoff for a single session: a new session of the same user works.
	wantStatus(t, touch(t, s, req(c, "acme", "s3", "alice", t0, now.Add(time.Second))), session.Active)
}

func testRevokeUser(t *testing.T, s *clocked) {
	c := cfg()
	touch(t, s, req(c, "acme", "a1", "alice", t0, t0))
	touch(t, s, req(c, "acme", "a2", "alice", t0, t0))
	touch(t, s, req(c, "acme", "b1", "bob", t0, t0))
	expired := req(c, "acme", "a3", "alice", t0, t0)
	touch(t, s, expired)
	touch(t, s, at(expired, t0.Add(time.Hour))) // idle-expired: not live
	now := t0.Add(10 * time.Minute)
	touch(t, s, at(req(c, "acme", "a1", "alice", t0, t0), now.Add(-time.Minute)))
	touch(t, s, at(req(c, "acme", "a2", "alice", t0, t0), now.Add(-time.Minute)))
	touch(t, s, at(req(c, "acme", "b1", "bob", t0, t0), now.Add(-time.Minute)))
	if n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "alice", Policy: c}); n != 2 {
		t.Fatalf("revoked %d, want 2", n)
	}
	wantStatus(t, touch(t, s, at(req(c, "acme", "a1", "alice", t0, t0), now.Add(time.Second))), session.Revoked)
	wantStatus(t, touch(t, s, at(req(c, "acme", "b1", "bob", t0, t0), now.Add(time.Second))), session.Active)
	// A token of alice's from before the revocation, never seen: rejected.
	wantStatus(t, touch(t, s, req(c, "acme", "a9", "alice", now.Add(-time.Second), now.Add(time.Second))), session.Revoked)
	// Bob's unseen older token is fine, so is alice's new login.
	wantStatus(t, touch(t, s, req(c, "acme", "b9", "bob", now.Add(-time.Second), now.Add(time.Second))), session.Active)
	wantStatus(t, touch(t, s, req(c, "acme", "a10", "alice", now.Add(time.Second), now.Add(time.Second))), session.Active)
}

func testRevokeAll(t *testing.T, s *clocked) {
	c := cfg()
	for i := 0; i < 5; i++ {
		touch(t, s, req(c, "acme", fmt.Sprint("s", i), fmt.Sprint("u", i%2), t0, t0))
	}
	touch(t, s, req(c, "other", "x", "u0", t0, t0))
	now := t0.Add(time.Minute)
	if n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); n != 5 {
		t.Fatalf("revoked %d, want 5", n)
	}
	if n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); n != 0 {
		t.Fatalf("second revoke-all counted %d, want 0", n)
	}
	for i := 0; i < 5; i++ {
		wantStatus(t, touch(t, s, req(c, "acme", fmt.Sprint("s", i), "u", t0, now.Add(time.Second))), session.Revoked)
	}
	wantStatus(t, touch(t, s, req(c, "other", "x", "u0", t0, now.Add(time.Second))), session.Active)
	// Cutoff: unseen tokens that logged in before the revocation are
	// rejected; logins after it are not.
	wantStatus(t, touch(t, s, req(c, "acme", "old", "u0", now.Add(-2*time.Second), now.Add(time.Second))), session.Revoked)
	wantStatus(t, touch(t, s, req(c, "acme", "new", "u0", now.Add(time.Second), now.Add(2*time.Second))), session.Active)
	list, err := s.Sessions(context.Background(), "acme", c, now.Add(3*time.Second))
	if err != nil || len(list) != 1 || list[0].Hash != session.HashID("new") {
		t.Fatalf("sessions after revoke-all: %+v %v", list, err)
	}
}

func testRevokeOthers(t *testing.T, s *clocked) {
	c := cfg()
	for i := 0; i < 3; i++ {
		touch(t, s, req(c, "acme", fmt.Sprint("s", i), "alice", t0, t0))
	}
	now := t0.Add(time.Minute)
	n := revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeOthers, Sessions: []string{session.HashID("s1")}, Policy: c})
	if n != 2 {
		t.Fatalf("revoked %d, want 2", n)
	}
	wantStatus(t, touch(t, s, req(c, "acme", "s1", "alice", t0, now.Add(time.Second))), session.Active)
	wantStatus(t, touch(t, s, req(c, "acme", "s0", "alice", t0, now.Add(time.Second))), session.Revoked)
	wantStatus(t, touch(t, s, req(c, "acme", "unseen", "alice", t0, now.Add(time.Second))), session.Revoked)
}

func testSessions(t *testing.T, s *clocked) {
	c := cfg()
	ctx := context.Background()
	list, err := s.Sessions(ctx, "acme", c, t0)
	if err != nil || len(list) != 0 || list == nil {
		t.Fatalf("empty listing: %#v %v", list, err)
	}
	touch(t, s, req(c, "acme", "s1", "alice", t0.Add(-2*time.Minute), t0))
	touch(t, s, req(c, "acme", "s2", "bob", t0.Add(-time.Minute), t0))
	gone := req(c, "acme", "s3", "carol", t0, t0)
	touch(t, s, gone)
	revoke(t, s, t0, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID("s3")}, Policy: c})
	idle := req(c, "acme", "s4", "dave", t0.Add(-time.Hour), t0.Add(-time.Hour))
	touch(t, s, idle) // idle-expired by t0
	list, err = s.Sessions(ctx, "acme", c, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listing: %+v", list)
	}
	a := list[0]
	if a.Hash != session.HashID("s1") || a.User != "alice" || a.Name != "N alice" || a.Email != "alice@example.com" ||
		a.IP != "192.0.2.1" || a.UserAgent != "test-agent" || a.Role != "member" {
		t.Fatalf("entry: %+v", a)
	}
	wantTime(t, "created_at", a.CreatedAt, t0.Add(-2*time.Minute))
	wantTime(t, "last_seen_at", a.LastSeenAt, t0)
	wantTime(t, "idle_expires_at", a.IdleExpiresAt, t0.Add(15*time.Minute))
	wantTime(t, "absolute_expires_at", a.AbsoluteExpiresAt, t0.Add(-2*time.Minute).Add(12*time.Hour))
	if list[1].User != "bob" {
		t.Fatalf("order: %+v", list)
	}
	// Idle expiry takes sessions off the listing without a request.
	list, _ = s.Sessions(ctx, "acme", c, t0.Add(15*time.Minute))
	if len(list) != 0 {
		t.Fatalf("listing after idle: %+v", list)
	}
}

func testIsolation(t *testing.T, s *clocked) {
	c := cfg()
	accts := []string{"a:b", "a", "b", "a}b", "{a}", "a*", "*", "a%3Ab", "a%b", "ａ", "a b", "a\u200bb", "x:s:y"}
	for _, acct := range accts {
		touch(t, s, req(c, acct, "same-sid", "u", t0, t0))
	}
	for _, acct := range accts {
		list, err := s.Sessions(context.Background(), acct, c, t0)
		if err != nil || len(list) != 1 {
			t.Fatalf("account %q: %d sessions, %v", acct, len(list), err)
		}
	}
	if n := revoke(t, s, t0.Add(time.Minute), store.RevokeRequest{Account: "*", Scope: store.ScopeAll, Policy: c}); n != 1 {
		t.Fatalf("revoke-all of %q ended %d sessions", "*", n)
	}
	if n := revoke(t, s, t0.Add(time.Minute), store.RevokeRequest{Account: "a:b", Scope: store.ScopeUser, User: "u", Policy: c}); n != 1 {
		t.Fatalf("revoke-user in %q ended %d sessions", "a:b", n)
	}
	for _, acct := range accts {
		want := session.Active
		if acct == "*" || acct == "a:b" {
			want = session.Revoked
		}
		wantStatus(t, touch(t, s, req(c, acct, "same-sid", "u", t0, t0.Add(2*time.Minute))), want)
	}
	if _, err := s.SetOverride(context.Background(), "a*", ov(30, 0)); err != nil {
		t.Fatal(err)
	}
	for _, acct := range accts {
		o, _ := s.Override(context.Background(), acct)
		if (acct == "a*") == o.IsZero() {
			t.Fatalf("override of %q = %+v", acct, o)
		}
	}
}

func testAudit(t *testing.T, s *clocked) {
	ctx := context.Background()
	evs, err := s.Audit(ctx, "acme", 10)
	if err != nil || len(evs) != 0 || evs == nil {
		t.Fatalf("empty audit: %#v %v", evs, err)
	}
	for i := 0; i < 5; i++ {
		data, _ := json.Marshal(map[string]int{"n": i})
		if err := s.AppendAudit(ctx, "acme", store.Event{Type: "policy.update", Actor: "ops", Time: t0.Add(time.Duration(i) * time.Second), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAudit(ctx, "other", store.Event{Type: "sessions.revoke", Actor: "x", Time: t0}); err != nil {
		t.Fatal(err)
	}
	evs, err = s.Audit(ctx, "acme", 3)
	if err != nil || len(evs) != 3 {
		t.Fatalf("audit: %+v %v", evs, err)
	}
	for i, ev := range evs {
		var d map[string]int
		if err := json.Unmarshal(ev.Data, &d); err != nil || d["n"] != 4-i {
			t.Fatalf("event %d: %+v (%v)", i, ev, err)
		}
		if ev.ID == "" || ev.Actor != "ops" || ev.Type != "policy.update" || ev.Account != "acme" {
			t.Fatalf("event %d: %+v", i, ev)
		}
		wantTime(t, "event time", ev.Time, t0.Add(time.Duration(4-i)*time.Second))
	}
	all, _ := s.Audit(ctx, "acme", 0)
	if len(all) != 5 {
		t.Fatalf("audit without limit: %d events", len(all))
	}
}

func testRetention(t *testing.T, s *clocked) {
	c := cfg()
	c.Default = "tiny"
	r := req(c, "acme", "s1", "alice", t0, t0)
	r.NotAfter = t0.Add(10 * time.Minute)
	touch(t, s, r)
	revoke(t, s, t0, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{r.SessionHash}, Policy: c})
	// Until retention passes the record keeps the session revoked ...
	wantStatus(t, touch(t, s, at(r, t0.Add(19*time.Minute))), session.Revoked)
	// ... and after it, the same token starts over from its login time,
	// which is absolute-expired by then: nothing is revived.
	wantStatus(t, touch(t, s, at(r, t0.Add(22*time.Minute))), session.ExpiredAbsolute)
}

func testConcurrent(t *testing.T, s *clocked) {
	c := cfg()
	c.Default = "tiny"
	r := req(c, "acme", "s1", "alice", t0, t0)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				now := t0.Add(time.Duration(i*g) * 10 * time.Second)
				res, err := s.touch(at(r, now))
				if err != nil {
					errs <- err
					return
				}
				if res.AbsoluteExpiresAt.After(t0.Add(20 * time.Minute)) {
					errs <- errors.New("absolute deadline moved")
					return
				}
				if res.Status == session.Active && !res.Now.Before(t0.Add(20*time.Minute)) {
					errs <- fmt.Errorf("active at %s, past absolute", res.Now.Sub(t0))
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// testCoalescing: with a touch interval, a request less than the
// interval after the recorded last activity leaves the idle deadline
// where it was; at the interval it moves; the deadline never ends up
// later than without coalescing; expiry and revocation are seen on the
// very next request whatever the interval.
func testCoalescing(t *testing.T, s *clocked, mode string) {
	c := cfg() // strict: 15m idle
	var r *timedReq
	if mode == "token" {
		r = req(c, "acme", "c-"+mode, "alice", t0, t0)
		touch(t, s, r)
	} else {
		touch(t, s, bindReq(c, "acme", "c-"+mode, "alice", t0))
		r = lookupReq(c, "c-"+mode, t0)
	}
	r.TouchInterval = time.Second
	res := touch(t, s, at(r, t0.Add(999*time.Millisecond)))
	wantStatus(t, res, session.Active)
	wantTime(t, "idle deadline inside the interval", res.IdleExpiresAt, t0.Add(15*time.Minute))
	res = touch(t, s, at(r, t0.Add(time.Second)))
	wantTime(t, "idle deadline at the interval", res.IdleExpiresAt, t0.Add(time.Second+15*time.Minute))
	res = touch(t, s, at(r, t0.Add(1500*time.Millisecond)))
	wantTime(t, "idle deadline after a coalesced touch", res.IdleExpiresAt, t0.Add(time.Second+15*time.Minute))
	// The coalesced touch did not keep the session alive past
	// the written deadline.
	wantStatus(t, touch(t, s, at(r, t0.Add(time.Second+15*time.Minute))), session.ExpiredIdle)
	// Ended for good, even for a touch inside the interval of
	// the last written one.
	wantStatus(t, touch(t, s, at(r, t0.Add(time.Second+15*time.Minute+time.Millisecond))), session.ExpiredIdle)
	if mode != "token" {
		return
	}
	t.Run("revoked inside the interval", func(t *testing.T) {
		r := req(c, "acme", "c-rev", "bob", t0, t0)
		r.TouchInterval = time.Minute
		touch(t, s, r)
		revoke(t, s, t0.Add(time.Millisecond), store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{r.SessionHash}, Policy: c})
		wantStatus(t, touch(t, s, at(r, t0.Add(2*time.Millisecond))), session.Revoked)
	})
}

// A live session is its creator's: another user's touch is WrongUser and
// changes nothing, not even the idle clock.
func testWrongUser(t *testing.T, s *clocked) {
	c := cfg()
	touch(t, s, req(c, "acme", "s1", "alice", t0, t0))
	idle := c.Effective(policy.Override{}, policy.Claimed{}).Idle
	almost := t0.Add(idle - time.Second)
	res := touch(t, s, req(c, "acme", "s1", "bob", t0, almost))
	wantStatus(t, res, session.WrongUser)
	p := at(req(c, "acme", "s1", "alice", t0, almost), almost)
	p.Passive = true
	wantTime(t, "idle deadline after bob", touch(t, s, p).IdleExpiresAt, t0.Add(idle))
	wantStatus(t, touch(t, s, req(c, "acme", "s1", "alice", t0, t0.Add(idle))), session.ExpiredIdle)
	// the same session id in another account is another session
	wantStatus(t, touch(t, s, req(c, "globex", "s1", "bob", t0, t0)), session.Active)
}

// Cutoffs compare at millisecond precision: a login earlier in the same
// second as a revoke-all is cut off; one later in that second is not.
func testCutoffMillis(t *testing.T, s *clocked) {
	c := cfg()
	cut := t0.Add(time.Minute + 500*time.Millisecond)
	revoke(t, s, cut, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c})
	after := cut.Add(time.Second)
	wantStatus(t, touch(t, s, req(c, "acme", "early", "u", cut.Add(-499*time.Millisecond), after)), session.Revoked)
	wantStatus(t, touch(t, s, req(c, "acme", "late", "u", cut.Add(time.Millisecond), after)), session.Active)
	revoke(t, s, cut, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "v", Policy: c})
	wantStatus(t, touch(t, s, req(c, "acme", "v-early", "v", cut.Add(-time.Millisecond), after)), session.Revoked)
	wantStatus(t, touch(t, s, req(c, "acme", "v-late", "v", cut.Add(time.Millisecond), after)), session.Active)
}

// testGenerations: an SSO re-issue (same session key and login time)
// issued after the idle end starts a new session; after absolute expiry
// or revocation only a later login does.
func testGenerations(t *testing.T, s *clocked) {
	c := cfg() // strict: 15m / 12h
	issued := func(r *timedReq, iat, now time.Time) *timedReq {
		r = at(r, now)
		r.IssuedAt = iat
		return r
	}
	r := req(c, "acme", "s1", "alice", t0, t0)
	r.IssuedAt = t0
	touch(t, s, r)
	end := t0.Add(15 * time.Minute)
	later := end.Add(time.Hour)
	wantStatus(t, touch(t, s, issued(r, t0, later)), session.ExpiredIdle)
	wantStatus(t, touch(t, s, issued(r, end, later)), session.ExpiredIdle) // iat not after the end
	res := touch(t, s, issued(r, end.Add(time.Second), later))
	wantStatus(t, res, session.Active)
	if !res.Created {
		t.Fatal("re-issue after idle expiry did not start a new session")
	}
	wantTime(t, "idle deadline of the new session", res.IdleExpiresAt, later.Add(15*time.Minute))
	wantTime(t, "absolute deadline (from the login)", res.AbsoluteExpiresAt, t0.Add(12*time.Hour))

	// Revoked: a re-issue for the same login stays refused; a new login
	// after the revocation starts a new session.
	revokedAt := later.Add(time.Minute)
	revoke(t, s, revokedAt, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{r.SessionHash}, Policy: c})
	after := revokedAt.Add(time.Hour)
	wantStatus(t, touch(t, s, issued(r, after, after)), session.Revoked)
	relogin := req(c, "acme", "s1", "alice", revokedAt.Add(-time.Second), after)
	relogin.IssuedAt = after
	wantStatus(t, touch(t, s, relogin), session.Revoked) // login before the revocation
	relogin = req(c, "acme", "s1", "alice", revokedAt.Add(2*time.Second), after)
	relogin.IssuedAt = after
	wantStatus(t, touch(t, s, relogin), session.Active)

	// Absolute: only a login after the absolute end.
	c.Default = "tiny" // 5m / 20m
	a := req(c, "acme", "s2", "alice", t0, t0)
	for now := t0; now.Before(t0.Add(20 * time.Minute)); now = now.Add(4 * time.Minute) {
		touch(t, s, issued(a, now, now))
	}
	past := t0.Add(21 * time.Minute)
	wantStatus(t, touch(t, s, issued(a, past, past)), session.ExpiredAbsolute)
	fresh := req(c, "acme", "s2", "alice", t0.Add(20*time.Minute+time.Second), past)
	fresh.IssuedAt = past
	wantStatus(t, touch(t, s, fresh), session.Active)
}
