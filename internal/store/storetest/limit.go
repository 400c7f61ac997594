package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// limitTests check the session limit per user, enforced by the store
// operation that creates a session, in both modes: tokens (Touch) and
// opaque cookies (Bind). They run in Run and, the opaque ones, in
// RunOpaque.
var limitTests = []struct {
	name string
	fn   func(t *testing.T, s *clocked)
}{
	{"LimitEvictsOldest", func(t *testing.T, s *clocked) { testLimitEvict(t, s, "token") }},
	{"LimitDenies", func(t *testing.T, s *clocked) { testLimitDeny(t, s, "token") }},
	{"LimitCountsLiveSessionsOnly", testLimitLiveOnly},
	{"LimitPerUserAndAccount", testLimitPerUser},
	{"LimitLoweredEvictsDownToIt", testLimitLowered},
	{"LimitFromPreset", testLimitPreset},
	{"LimitConcurrentCreations", func(t *testing.T, s *clocked) { testLimitConcurrent(t, s, "token") }},
}

var opaqueLimitTests = []struct {
	name string
	fn   func(t *testing.T, s *clocked)
}{
	{"OpaqueLimitEvictsOldest", func(t *testing.T, s *clocked) { testLimitEvict(t, s, "opaque") }},
	{"OpaqueLimitDenies", func(t *testing.T, s *clocked) { testLimitDeny(t, s, "opaque") }},
	{"OpaqueLimitConcurrentCreations", func(t *testing.T, s *clocked) { testLimitConcurrent(t, s, "opaque") }},
}

// setLimit sets the account's session limit override.
func setLimit(t *testing.T, s *clocked, acct string, n int, mode policy.OnLimit) {
	t.Helper()
	cur, err := s.Override(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	cur.MaxSessions, cur.OnLimit = &n, &mode
	if _, err := s.SetOverride(context.Background(), acct, cur); err != nil {
		t.Fatal(err)
	}
}

// create starts session sid of user at now (login now), as a token
// session or a bound opaque one by mode, and returns the result and the
// request that touches it later.
func create(t *testing.T, s *clocked, c *policy.Config, mode, acct, sid, user string, now time.Time) (store.OpaqueResult, *timedReq) {
	t.Helper()
	if mode == "token" {
		r := req(c, acct, sid, user, now, now)
		return touch(t, s, r), r
	}
	return touch(t, s, bindReq(c, acct, sid, user, now)), lookupReq(c, sid, now)
}

// liveHashes lists the hashes of the account's live sessions at now.
func liveHashes(t *testing.T, s *clocked, c *policy.Config, acct string, now time.Time) []string {
	t.Helper()
	infos, err := s.Sessions(context.Background(), acct, c, now)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range infos {
		out = append(out, in.Hash)
	}
	slices.Sort(out)
	return out
}

func hashes(sids ...string) []string {
	out := make([]string, 0, len(sids))
	for _, sid := range sids {
		out = append(out, session.HashID(sid))
	}
	slices.Sort(out)
	return out
}

func wantLive(t *testing.T, s *clocked, c *policy.Config, now time.Time, sids ...string) {
	t.Helper()
	if got, want := liveHashes(t, s, c, "acme", now), hashes(sids...); !slices.Equal(got, want) {
		t.Fatalf("live sessions %v, want %v (%v)", got, want, sids)
	}
}

// testLimitEvict: at the limit, a new session ends the oldest-login live
// one, reports it, and the ended one's next request is revoked.
func testLimitEvict(t *testing.T, s *clocked, mode string) {
	c := cfg()
	setLimit(t, s, "acme", 2, policy.EvictOldest)
	_, r1 := create(t, s, c, mode, "acme", "s1", "alice", t0)
	_, r2 := create(t, s, c, mode, "acme", "s2", "alice", t0.Add(time.Minute))
	res, r3 := create(t, s, c, mode, "acme", "s3", "alice", t0.Add(2*time.Minute))
	wantStatus(t, res, session.Active)
	if !res.Created || !slices.Equal(res.Evicted, []string{session.HashID("s1")}) {
		t.Fatalf("third session: created %v, evicted %v; want created, s1 evicted", res.Created, res.Evicted)
	}
	now := t0.Add(3 * time.Minute)
	wantLive(t, s, c, now, "s2", "s3")
	wantStatus(t, touch(t, s, at(r1, now)), session.Revoked)
	wantStatus(t, touch(t, s, at(r2, now)), session.Active)
	wantStatus(t, touch(t, s, at(r3, now)), session.Active)
	// The next one evicts s2, the oldest login now.
	res, _ = create(t, s, c, mode, "acme", "s4", "alice", now)
	if !slices.Equal(res.Evicted, []string{session.HashID("s2")}) {
		t.Fatalf("fourth session evicted %v, want s2", res.Evicted)
	}
	wantLive(t, s, c, now, "s3", "s4")
}

// testLimitDeny: at the limit a new session is refused and nothing is
// written; the live ones go on; once one ends there is room again.
func testLimitDeny(t *testing.T, s *clocked, mode string) {
	c := cfg()
	setLimit(t, s, "acme", 2, policy.Deny)
	_, r1 := create(t, s, c, mode, "acme", "s1", "alice", t0)
	create(t, s, c, mode, "acme", "s2", "alice", t0)
	res, _ := create(t, s, c, mode, "acme", "s3", "alice", t0.Add(time.Minute))
	wantStatus(t, res, session.LimitReached)
	if res.Created || len(res.Evicted) > 0 {
		t.Fatalf("refused session: created %v, evicted %v", res.Created, res.Evicted)
	}
	now := t0.Add(2 * time.Minute)
	wantLive(t, s, c, now, "s1", "s2")
	if mode == "opaque" {
		wantStatus(t, touch(t, s, lookupReq(c, "s3", now)), session.Unbound)
	}
	wantStatus(t, touch(t, s, at(r1, now)), session.Active)
	revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: hashes("s1"), Policy: c})
	res, _ = create(t, s, c, mode, "acme", "s3", "alice", now.Add(time.Second))
	wantStatus(t, res, session.Active)
	wantLive(t, s, c, now.Add(time.Second), "s2", "s3")
}

// testLimitLiveOnly: expired and revoked sessions do not count.
func testLimitLiveOnly(t *testing.T, s *clocked) {
	c := cfg() // strict: idle 15m
	setLimit(t, s, "acme", 1, policy.Deny)
	create(t, s, c, "token", "acme", "s1", "alice", t0)
	now := t0.Add(20 * time.Minute) // s1 idle-expired, never touched again
	res, _ := create(t, s, c, "token", "acme", "s2", "alice", now)
	wantStatus(t, res, session.Active)
	revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: hashes("s2"), Policy: c})
	res, _ = create(t, s, c, "token", "acme", "s3", "alice", now.Add(time.Second))
	wantStatus(t, res, session.Active)
	res, _ = create(t, s, c, "token", "acme", "s4", "alice", now.Add(time.Second))
	wantStatus(t, res, session.LimitReached)
}

// testLimitPerUser: the limit counts one user of one account.
func testLimitPerUser(t *testing.T, s *clocked) {
	c := cfg()
	setLimit(t, s, "acme", 1, policy.Deny)
	for _, u := range []struct{ acct, sid, user string }{{"acme", "a1", "alice"}, {"acme", "b1", "bob"}, {"other", "o1", "alice"}, {"other", "o2", "alice"}} {
		res := touch(t, s, req(c, u.acct, u.sid, u.user, t0, t0))
		wantStatus(t, res, session.Active)
	}
	wantStatus(t, touch(t, s, req(c, "acme", "a2", "alice", t0, t0)), session.LimitReached)
}

// testLimitLowered: sessions created while the account had no limit are
// counted too; a creation under a lower limit evicts down to it.
func testLimitLowered(t *testing.T, s *clocked) {
	c := cfg()
	for i := range 4 {
		create(t, s, c, "token", "acme", fmt.Sprint("s", i), "alice", t0.Add(time.Duration(i)*time.Second))
	}
	setLimit(t, s, "acme", 2, policy.EvictOldest)
	now := t0.Add(time.Minute)
	res, _ := create(t, s, c, "token", "acme", "s9", "alice", now)
	if want := []string{session.HashID("s0"), session.HashID("s1"), session.HashID("s2")}; !slices.Equal(res.Evicted, want) {
		t.Fatalf("evicted %v, want s0 s1 s2 oldest first", res.Evicted)
	}
	wantLive(t, s, c, now, "s3", "s9")
}

// testLimitPreset: a limit carried by the default preset applies to an
// account without an override; the override beats it.
func testLimitPreset(t *testing.T, s *clocked) {
	c := cfg()
	c.Presets["kiosk"] = policy.Policy{Idle: 15 * time.Minute, Absolute: 12 * time.Hour}
	c.PresetLimits = map[string]policy.Limit{"kiosk": {Max: 1, OnLimit: policy.Deny}}
	c.Default = "kiosk"
	create(t, s, c, "token", "acme", "s1", "alice", t0)
	res, _ := create(t, s, c, "token", "acme", "s2", "alice", t0)
	wantStatus(t, res, session.LimitReached)
	setLimit(t, s, "acme", 2, policy.Deny)
	res, _ = create(t, s, c, "token", "acme", "s2", "alice", t0)
	wantStatus(t, res, session.Active)
}

// testLimitConcurrent: many new sessions of one user at once: never more
// than the limit live; with deny exactly the limit of them are created.
func testLimitConcurrent(t *testing.T, s *clocked, mode string) {
	const n, limit = 24, 3
	for _, onLimit := range []policy.OnLimit{policy.Deny, policy.EvictOldest} {
		c := cfg()
		acct := "acme-" + string(onLimit)
		setLimit(t, s, acct, limit, onLimit)
		s.clock.Set(t0)
		results := make([]store.OpaqueResult, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := req(c, acct, fmt.Sprint("c", i), "alice", t0, t0)
				if mode == "opaque" {
					r = bindReq(c, acct, fmt.Sprint("c", i), "alice", t0)
				}
				results[i], _ = s.touch(r) // errors show as a zero result
			}()
		}
		wg.Wait()
		active, evicted := 0, 0
		for _, res := range results {
			if res.Status == session.Active && res.Created {
				active++
			}
			evicted += len(res.Evicted)
		}
		infos, err := s.Sessions(context.Background(), acct, c, t0)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(infos) != limit:
			t.Fatalf("%s: %d live sessions, want %d", onLimit, len(infos), limit)
		case onLimit == policy.Deny && active != limit:
			t.Fatalf("deny: %d sessions created, want exactly %d", active, limit)
		case onLimit == policy.EvictOldest && (active != n || evicted != n-limit):
			t.Fatalf("evict_oldest: %d created, %d evicted; want %d and %d", active, evicted, n, n-limit)
		}
	}
}
