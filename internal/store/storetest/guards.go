package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// guardTests defend rules that a store could break without changing any
// everyday outcome: how long an ended record and a cutoff are kept, and
// the cap on the touch interval.
var guardTests = []struct {
	name string
	fn   func(t *testing.T, s *clocked)
}{
	{"EndedRecordKeptUntilTokenExpiry", testEndedKeptUntilExp},
	{"RetentionBoundary", testRetentionBoundary},
	{"UserCutoffOutlivesShortestAbsolute", testUserCutoffLasts},
	{"TouchIntervalCappedAtQuarterIdle", testTouchIntervalCap},
	{"AuditKeepsTheNewest", testAuditCap},
}

// testEndedKeptUntilExp: an ended session's record is kept until its
// token expires even when that is after the absolute deadline, so that
// raising the account's absolute limit cannot revive the same token.
func testEndedKeptUntilExp(t *testing.T, s *clocked) {
	c := cfg()
	c.Default = "tiny" // 5m idle, 20m absolute
	for _, end := range []session.Status{session.Revoked, session.ExpiredAbsolute} {
		t.Run(end.String(), func(t *testing.T) {
			acct := "keep-" + end.String()
			r := req(c, acct, "s1", "alice", t0, t0)
			r.NotAfter = t0.Add(time.Hour)
			touch(t, s, r)
			if end == session.Revoked {
				revoke(t, s, t0.Add(time.Minute), store.RevokeRequest{Account: acct, Scope: store.ScopeSession, Sessions: []string{r.SessionHash}, Policy: c})
				wantStatus(t, touch(t, s, at(r, t0.Add(2*time.Minute))), end)
			} else {
				wantStatus(t, touch(t, s, at(r, t0.Add(20*time.Minute))), end)
			}
			if _, err := s.SetOverride(context.Background(), acct, ov(0, 90)); err != nil {
				t.Fatal(err)
			}
			// Past the old deadline plus slack, before the token's
			// expiry: the same token stays ended.
			wantStatus(t, touch(t, s, at(r, t0.Add(22*time.Minute))), end)
			wantStatus(t, touch(t, s, at(r, t0.Add(time.Hour))), end)
		})
	}
}

// testRetentionBoundary: the record of a revoked session is kept until a
// minute after the later of its absolute deadline and its token's
// expiry, and no longer: at that instant the token starts over from its
// login time (absolute-expired by then).
func testRetentionBoundary(t *testing.T, s *clocked) {
	c := cfg()
	c.Default = "tiny"
	for _, tc := range []struct {
		name      string
		notAfter  time.Duration
		retention time.Duration
	}{
		{"absolute later", 10 * time.Minute, 21 * time.Minute},
		{"expiry later", 30 * time.Minute, 31 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req(c, "acme", "b-"+tc.name, "alice", t0, t0)
			r.NotAfter = t0.Add(tc.notAfter)
			touch(t, s, r)
			revoke(t, s, t0, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{r.SessionHash}, Policy: c})
			wantStatus(t, touch(t, s, at(r, t0.Add(tc.retention-time.Millisecond))), session.Revoked)
			wantStatus(t, touch(t, s, at(r, t0.Add(tc.retention))), session.ExpiredAbsolute)
		})
	}
}

// testUserCutoffLasts: a user cutoff rejects that user's unseen older
// tokens for as long as any session may last (the absolute bound's
// maximum), not only the shortest absolute limit.
func testUserCutoffLasts(t *testing.T, s *clocked) {
	c := cfg() // strict: 12h absolute; bounds 15m..2160h
	revoke(t, s, t0, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "alice", Policy: c})
	later := t0.Add(c.Bounds.Absolute.Min + time.Hour)
	wantStatus(t, touch(t, s, req(c, "acme", "old", "alice", t0.Add(-time.Second), later)), session.Revoked)
	wantStatus(t, touch(t, s, req(c, "acme", "new", "alice", t0.Add(time.Second), later)), session.Active)
}

// testTouchIntervalCap: a touch interval longer than a quarter of the
// session's idle timeout is capped there, so that coalescing never
// loses more than a quarter of the idle window.
func testTouchIntervalCap(t *testing.T, s *clocked) {
	c := cfg()
	c.Default = "tiny" // 5m idle: the cap is 75s
	for _, mode := range []string{"token", "opaque"} {
		t.Run(mode, func(t *testing.T) {
			r := start(t, s, c, mode, "cap-"+mode)
			r.TouchInterval = time.Hour
			res := touch(t, s, at(r, t0.Add(75*time.Second-time.Millisecond)))
			wantTime(t, "idle deadline inside the cap", res.IdleExpiresAt, t0.Add(5*time.Minute))
			res = touch(t, s, at(r, t0.Add(75*time.Second)))
			wantStatus(t, res, session.Active)
			wantTime(t, "idle deadline at the cap", res.IdleExpiresAt, t0.Add(75*time.Second+5*time.Minute))
		})
	}
}

// testAuditCap: past AuditCap events an account keeps the newest
// AuditCap, listed newest first, with or without a limit.
func testAuditCap(t *testing.T, s *clocked) {
	ctx := context.Background()
	const n = store.AuditCap + 7
	for i := 0; i < n; i++ {
		data, _ := json.Marshal(map[string]int{"i": i})
		if err := s.AppendAudit(ctx, "acme", store.Event{Type: "t", Time: t0.Add(time.Duration(i) * time.Millisecond), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, 3, store.AuditCap, store.AuditCap + 1} {
		evs, err := s.Audit(ctx, "acme", limit)
		want := min(limit, store.AuditCap)
		if limit == 0 {
			want = store.AuditCap
		}
		if err != nil || len(evs) != want {
			t.Fatalf("limit %d: %d events, %v", limit, len(evs), err)
		}
		for j, ev := range evs {
			var d map[string]int
			if err := json.Unmarshal(ev.Data, &d); err != nil || d["i"] != n-1-j {
				t.Fatalf("limit %d: event %d: %s", limit, j, ev.Data)
			}
		}
	}
}

// start creates a session of alice at t0, a token session or a bound
// opaque one by mode, and returns the request that touches it.
func start(t *testing.T, s *clocked, c *policy.Config, mode, sid string) *timedReq {
	t.Helper()
	if mode == "token" {
		r := req(c, "acme", sid, "alice", t0, t0)
		touch(t, s, r)
		return r
	}
	touch(t, s, bindReq(c, "acme", sid, "alice", t0))
	return lookupReq(c, sid, t0)
}
