package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/eventtest"
	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// RunEvents runs the lifecycle events suite against stores made by open,
// which must implement store.EventSource with events enabled: a scripted
// history, with retried operations and repeated sweeps, writes each
// expected event exactly once.
func RunEvents(t *testing.T, open Open) {
	run(t, open, []struct {
		name string
		fn   func(t *testing.T, s *clocked)
	}{{"ExactlyOnce", testEventsExactlyOnce}, {"OpaqueExactlyOnce", testOpaqueEvents}})
}

// drain reads and acknowledges every event of the group.
func drain(t *testing.T, s *clocked) []events.Event {
	t.Helper()
	src, ok := s.Store.(store.EventSource)
	if !ok || src.EventOutbox() == nil {
		t.Fatalf("%T writes no events", s.Store)
	}
	ob, ctx := src.EventOutbox(), context.Background()
	var out []events.Event
	for {
		evs, err := ob.Read(ctx, "test", "c", 100, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		if err := ob.Ack(ctx, "test", evs); err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
	}
}

func testEventsExactlyOnce(t *testing.T, s *clocked) {
	c := cfg() // strict: idle 15m, absolute 12h
	ctx := context.Background()
	h := session.HashID
	want := map[string]int{}
	expect := func(typ, sid, by string) { want[typ+" "+h(sid)+" "+by]++ }
	for _, r := range []struct{ sid, user string }{{"a", "alice"}, {"b", "alice"}, {"c", "bob"}, {"d", "bob"}} {
		touch(t, s, req(c, "acme", r.sid, r.user, t0, t0))
		expect(events.Created, r.sid, "")
	}
	touch(t, s, req(c, "acme", "a", "alice", t0, t0.Add(time.Minute))) // activity: no event
	revoke := func(rr store.RevokeRequest, now time.Time) {
		s.clock.Set(now)
		rr.Account, rr.Policy = "acme", c
		if _, err := s.Revoke(ctx, rr); err != nil {
			t.Fatal(err)
		}
	}
	logoutC := store.RevokeRequest{Scope: store.ScopeSession, Sessions: []string{h("c")}, By: events.ByLogout}
	revoke(logoutC, t0.Add(2*time.Minute))
	revoke(logoutC, t0.Add(2*time.Minute)) // retried: nothing more
	expect(events.Revoked, "c", events.ByLogout)

	// a observed idle by a request (twice); b and d idle unobserved, swept
	idleAt := t0.Add(20 * time.Minute)
	wantStatus(t, touch(t, s, req(c, "acme", "a", "alice", t0, idleAt)), session.ExpiredIdle)
	wantStatus(t, touch(t, s, req(c, "acme", "a", "alice", t0, idleAt.Add(time.Second))), session.ExpiredIdle)
	expect(events.IdleExpired, "a", "")
	expire(t, s, idleAt, 2, session.ExpiredIdle, req(c, "acme", "b", "alice", t0, idleAt), req(c, "acme", "d", "bob", t0, idleAt))
	// a request after the sweep sees the end, and adds no event
	wantStatus(t, touch(t, s, req(c, "acme", "b", "alice", t0, idleAt.Add(2*time.Second))), session.ExpiredIdle)
	expect(events.IdleExpired, "b", "")
	expect(events.IdleExpired, "d", "")

	// an admin revoke of a user, retried; a policy update
	touch(t, s, req(c, "acme", "e", "carol", idleAt, idleAt))
	expect(events.Created, "e", "")
	byUser := store.RevokeRequest{Scope: store.ScopeUser, User: "carol"}
	revoke(byUser, idleAt.Add(time.Second))
	revoke(byUser, idleAt.Add(time.Second))
	expect(events.Revoked, "e", events.ByAdmin)
	one, evict := 1, policy.EvictOldest
	s.clock.Set(idleAt.Add(2 * time.Second))
	if _, err := s.SetOverride(ctx, "acme", policy.Override{MaxSessions: &one, OnLimit: &evict}); err != nil {
		t.Fatal(err)
	}
	want[events.PolicyUpdate+"  "]++
	// the same override again (a retried write) changes nothing: no event
	if _, err := s.SetOverride(ctx, "acme", policy.Override{MaxSessions: &one, OnLimit: &evict}); err != nil {
		t.Fatal(err)
	}

	// the session limit evicts f for g; h is kept active to its absolute end
	later := idleAt.Add(time.Minute)
	touch(t, s, req(c, "acme", "f", "dave", later, later))
	touch(t, s, req(c, "acme", "g", "dave", later.Add(time.Second), later.Add(time.Second)))
	touch(t, s, req(c, "acme", "h", "erin", later, later))
	expect(events.Created, "f", "")
	expect(events.Created, "g", "")
	expect(events.Created, "h", "")
	expect(events.Revoked, "f", events.ByLimit)
	for now := later; now.Before(later.Add(12*time.Hour + 5*time.Minute)); now = now.Add(10 * time.Minute) {
		touch(t, s, req(c, "acme", "h", "erin", later, now))
	}
	expect(events.AbsoluteExpired, "h", "")
	// g idled long ago, unobserved, and is past its absolute deadline too
	// when first looked at: the event says what a request would see
	expect(events.AbsoluteExpired, "g", "")
	expire(t, s, later.Add(13*time.Hour), 1, session.ExpiredAbsolute, req(c, "acme", "g", "dave", later.Add(time.Second), later.Add(13*time.Hour)))

	got := map[string]int{}
	for _, ev := range drain(t, s) {
		got[eventtest.Key(ev)]++
		if ev.Account != "acme" || ev.ID == "" || ev.Time.IsZero() {
			t.Errorf("event %+v: want account acme, an id and a time", ev)
		}
		if p := string(ev.Payload()); strings.Contains(p, `"a"`) || strings.Contains(p, "N ") {
			t.Errorf("payload %s carries more than hashes", p)
		}
	}
	if diff := eventtest.Diff(got, want); diff != "" {
		t.Fatalf("events differ from the history (got/want):\n%s", diff)
	}
}

// expire has the store find the expiries due at now: a store that can
// sweep sweeps twice (the second ending nothing) and must end want
// sessions; any other is shown the sessions by requests, twice each,
// which must answer st.
func expire(t *testing.T, s *clocked, now time.Time, want int, st session.Status, reqs ...*timedReq) {
	t.Helper()
	sw, ok := s.Store.(store.ExpirySweeper)
	if !ok {
		for _, r := range reqs {
			wantStatus(t, touch(t, s, at(r, now)), st)
			wantStatus(t, touch(t, s, at(r, now.Add(time.Second))), st)
		}
		return
	}
	for i, w := range []int{want, 0} {
		s.clock.Set(now.Add(time.Duration(i) * time.Second))
		n, err := sw.SweepExpired(context.Background(), cfg())
		if err != nil {
			t.Fatal(err)
		}
		if n != w {
			t.Fatalf("sweep %d at %s ended %d sessions, want %d", i+1, now.Format(time.RFC3339), n, w)
		}
	}
}

// testOpaqueEvents: opaque-cookie sessions report their creation and
// their expiry, observed by a lookup or swept, once each.
func testOpaqueEvents(t *testing.T, s *clocked) {
	c := cfg() // strict: idle 15m
	touch(t, s, bindReq(c, "acme", "o1", "alice", t0))
	touch(t, s, bindReq(c, "acme", "o2", "bob", t0))
	touch(t, s, lookupReq(c, "o1", t0.Add(time.Minute)))
	idleAt := t0.Add(20 * time.Minute)
	for i := 0; i < 2; i++ {
		wantStatus(t, touch(t, s, lookupReq(c, "o1", idleAt.Add(time.Duration(i)*time.Second))), session.ExpiredIdle)
	}
	expire(t, s, idleAt.Add(time.Minute), 1, session.ExpiredIdle, lookupReq(c, "o2", idleAt))
	got := map[string]int{}
	for _, ev := range drain(t, s) {
		got[eventtest.Key(ev)]++
	}
	h := session.HashID
	want := map[string]int{
		events.Created + " " + h("o1") + " ": 1, events.Created + " " + h("o2") + " ": 1,
		events.IdleExpired + " " + h("o1") + " ": 1, events.IdleExpired + " " + h("o2") + " ": 1,
	}
	if d := eventtest.Diff(got, want); d != "" {
		t.Fatalf("events differ (got/want):\n%s", d)
	}
}
