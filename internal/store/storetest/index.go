package storetest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// RunIndex runs the suite of store.SubjectIndex and store.OnceStore
// against stores made by open.
func RunIndex(t *testing.T, open Open) {
	run(t, open, []struct {
		name string
		fn   func(t *testing.T, s *clocked)
	}{
		{"IndexLogoutSID", testIndexLogoutSID},
		{"IndexLogoutSubject", testIndexLogoutSubject},
		{"IndexLogoutCutoff", testIndexCutoff},
		{"Once", testOnce},
	})
}

func subjectIndex(t *testing.T, s *clocked) store.SubjectIndex {
	t.Helper()
	x, ok := s.Store.(store.SubjectIndex)
	if !ok {
		t.Fatalf("%T does not implement store.SubjectIndex", s.Store)
	}
	return x
}

// index records an entry at now and returns the logout it reports.
func index(t *testing.T, s *clocked, e store.IndexEntry, now time.Time) time.Time {
	t.Helper()
	s.clock.Set(now)
	cut, err := subjectIndex(t, s).IndexSession(context.Background(), e)
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	return cut
}

func logout(t *testing.T, s *clocked, sid, sub string, now time.Time) []store.Indexed {
	t.Helper()
	s.clock.Set(now)
	x := subjectIndex(t, s)
	var got []store.Indexed
	var err error
	if sid != "" {
		got, err = x.LogoutSID(context.Background(), session.HashID(sid), time.Hour)
	} else {
		got, err = x.LogoutSubject(context.Background(), sub, time.Hour)
	}
	if err != nil {
		t.Fatalf("logout: %v", err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Account+got[i].SessionHash < got[j].Account+got[j].SessionHash })
	return got
}

func wantIndexed(t *testing.T, got []store.Indexed, want ...store.Indexed) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("found %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("found %v, want %v", got, want)
		}
	}
}

// One IdP session in two accounts (and odd characters in both): a
// logout of its sid finds both sessions and nothing of another sid; an
// entry past its retention is not found.
func testIndexLogoutSID(t *testing.T, s *clocked) {
	h1, h2, h3 := session.HashID("s1"), session.HashID("s2"), session.HashID("s3")
	index(t, s, store.IndexEntry{Account: "acme", SessionHash: h1, User: "alice", SIDHash: session.HashID("op-1"), Until: t0.Add(time.Hour)}, t0)
	index(t, s, store.IndexEntry{Account: "b {x}:*", SessionHash: h2, User: "alice", SIDHash: session.HashID("op-1"), Until: t0.Add(time.Hour)}, t0)
	index(t, s, store.IndexEntry{Account: "acme", SessionHash: h3, User: "alice", SIDHash: session.HashID("op-2"), Until: t0.Add(time.Hour)}, t0)
	index(t, s, store.IndexEntry{Account: "old", SessionHash: h3, User: "alice", SIDHash: session.HashID("op-1"), Until: t0.Add(time.Minute)}, t0)
	wantIndexed(t, logout(t, s, "op-1", "", t0.Add(2*time.Minute)),
		store.Indexed{Account: "acme", SessionHash: h1}, store.Indexed{Account: "b {x}:*", SessionHash: h2})
	wantIndexed(t, logout(t, s, "op-9", "", t0.Add(2*time.Minute)))
}

// An IdP user with sessions in two accounts, under a user id of its own
// in one: a logout of the sub names each account once, with its user.
func testIndexLogoutSubject(t *testing.T, s *clocked) {
	for i, e := range []store.IndexEntry{
		{Account: "acme", User: "alice", Subject: "sub|1"},
		{Account: "acme", User: "alice", Subject: "sub|1"},
		{Account: "beta", User: "alice@beta", Subject: "sub|1"},
		{Account: "beta", User: "bob", Subject: "sub|2"},
	} {
		e.SessionHash, e.Until = session.HashID(string(rune('a'+i))), t0.Add(time.Hour)
		index(t, s, e, t0)
	}
	wantIndexed(t, logout(t, s, "", "sub|1", t0.Add(time.Minute)),
		store.Indexed{Account: "acme", User: "alice"}, store.Indexed{Account: "beta", User: "alice@beta"})
}

// A logout is reported to sessions indexed after it (with millisecond
// precision, never moved back by a later one's clock) until it is no
// longer kept; a sid logout does not touch the sub's, and vice versa.
func testIndexCutoff(t *testing.T, s *clocked) {
	e := store.IndexEntry{Account: "acme", SessionHash: session.HashID("s1"), User: "alice", SIDHash: session.HashID("op-1"), Subject: "sub|1", Until: t0.Add(3 * time.Hour)}
	if cut := index(t, s, e, t0); !cut.IsZero() {
		t.Fatalf("logout before any: %v", cut)
	}
	at := t0.Add(1234 * time.Millisecond)
	logout(t, s, "op-1", "", at)
	logout(t, s, "op-1", "", at.Add(-time.Second)) // a gateway with a slow clock
	if cut := index(t, s, e, at.Add(time.Second)); !cut.Equal(at) {
		t.Fatalf("logout %v, want %v", cut, at)
	}
	other := e
	other.SIDHash = session.HashID("op-2")
	if cut := index(t, s, other, at.Add(time.Second)); !cut.IsZero() {
		t.Fatalf("another sid and the same sub: logout %v, want none", cut)
	}
	logout(t, s, "", "sub|1", at.Add(2*time.Second))
	if cut := index(t, s, other, at.Add(3*time.Second)); !cut.Equal(at.Add(2 * time.Second)) {
		t.Fatalf("sub logged out: %v, want %v", cut, at.Add(2*time.Second))
	}
	if cut := index(t, s, e, at.Add(2*time.Hour)); !cut.IsZero() {
		t.Fatalf("after the logout is no longer kept: %v", cut)
	}
}

// A one-time id is new once until its ttl, by the store's clock, and
// again after Forget.
func testOnce(t *testing.T, s *clocked) {
	o, ok := s.Store.(store.OnceStore)
	if !ok {
		t.Fatalf("%T does not implement store.OnceStore", s.Store)
	}
	ctx := context.Background()
	once := func(id string, now time.Time) bool {
		t.Helper()
		s.clock.Set(now)
		ok, err := o.Once(ctx, id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !once("a", t0) || once("a", t0.Add(59*time.Second)) || !once("b", t0) {
		t.Fatal("a first id must be new, its replay within the ttl not, another id new")
	}
	if !once("a", t0.Add(time.Minute)) {
		t.Fatal("the id was not new again after its ttl")
	}
	if err := o.Forget(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if !once("b", t0.Add(time.Second)) {
		t.Fatal("a forgotten id was not new again")
	}
}
