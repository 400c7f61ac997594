package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// walk pages through an account at now with limit, calling between(i)
// before page i > 0, and checks what every page must hold: at most
// limit sessions, in listing order across the whole walk, and for each
// user on a page its account-wide live count as want says (nil: not
// checked). It returns every session listed, in order.
func walk(t *testing.T, s *clocked, acct string, c *policy.Config, now time.Time, limit int, between func(i int), want func() map[string]int) []store.SessionInfo {
	t.Helper()
	var all []store.SessionInfo
	p := store.Page{Limit: limit}
	for i := 0; ; i++ {
		if i > 0 && between != nil {
			between(i)
		}
		if i > 1000 {
			t.Fatal("listing does not end")
		}
		s.clock.Set(now)
		pg, err := s.Store.Sessions(context.Background(), acct, c, p)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		if len(pg.Sessions) > limit {
			t.Fatalf("page %d holds %d sessions, limit %d", i, len(pg.Sessions), limit)
		}
		var counts map[string]int
		if want != nil {
			counts = want()
		}
		for _, in := range pg.Sessions {
			if n := len(all); n > 0 && !inOrder(all[n-1], in) {
				t.Fatalf("page %d: %s (login %v) listed after %s (login %v)", i, in.Hash, in.CreatedAt, all[n-1].Hash, all[n-1].CreatedAt)
			}
			all = append(all, in)
			if counts != nil && pg.Users[in.User] != counts[in.User] {
				t.Fatalf("page %d: user %q has %d live sessions, page says %d", i, in.User, counts[in.User], pg.Users[in.User])
			}
		}
		if pg.Next == "" {
			return all
		}
		p.Cursor = pg.Next
	}
}

// inOrder reports whether b strictly follows a in listing order.
func inOrder(a, b store.SessionInfo) bool {
	x, y := a.CreatedAt.UnixMilli(), b.CreatedAt.UnixMilli()
	if x != y {
		return x < y
	}
	return a.Hash < b.Hash // session.HashID is keyEscape-safe
}

// testPages: pages of every size list each live session once, skip
// ended ones, and count each user's live sessions in the whole account.
func testPages(t *testing.T, s *clocked) {
	c := cfg()
	users := []string{"alice", "b:{ob}", "ü ser", ""}
	live := map[string]bool{}
	counts := map[string]int{}
	for i := 0; i < 23; i++ {
		u := users[i%len(users)]
		// logins repeat, so that order within one millisecond is by hash
		login := t0.Add(-time.Duration(i%5) * time.Minute)
		touch(t, s, req(c, "acme", fmt.Sprint("p", i), u, login, t0))
		live[session.HashID(fmt.Sprint("p", i))] = true
		counts[u]++
	}
	for _, i := range []int{3, 8} {
		revoke(t, s, t0, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID(fmt.Sprint("p", i))}, Policy: c})
		delete(live, session.HashID(fmt.Sprint("p", i)))
		counts[users[i%len(users)]]--
	}
	touch(t, s, req(c, "acme", "idle", "alice", t0.Add(-time.Hour), t0.Add(-time.Hour)))
	touch(t, s, req(c, "other", "elsewhere", "alice", t0, t0))
	at := t0.Add(time.Second)
	for _, limit := range []int{1, 2, 5, 21, 22, 100} {
		got := walk(t, s, "acme", c, at, limit, nil, func() map[string]int { return counts })
		if seen := once(t, got); len(seen) != len(live) {
			t.Fatalf("limit %d: listed %d sessions, want %d", limit, len(seen), len(live))
		}
		for _, in := range got {
			if !live[in.Hash] {
				t.Fatalf("limit %d: listed %s, which is not live", limit, in.Hash)
			}
		}
	}
	// a user's revocation takes their sessions off the pages and counts
	n := revoke(t, s, at, store.RevokeRequest{Account: "acme", Scope: store.ScopeUser, User: "b:{ob}", Policy: c})
	if n != counts["b:{ob}"] {
		t.Fatalf("revoking b:{ob} ended %d sessions, want %d", n, counts["b:{ob}"])
	}
	for i := 1; i < 23; i += len(users) {
		delete(live, session.HashID(fmt.Sprint("p", i)))
	}
	// a new session of the user counts alone
	touch(t, s, req(c, "acme", "again", "b:{ob}", at, at))
	live[session.HashID("again")] = true
	counts["b:{ob}"] = 1
	got := walk(t, s, "acme", c, at.Add(time.Second), 7, nil, func() map[string]int { return counts })
	if seen := once(t, got); len(seen) != len(live) {
		t.Fatalf("after revoking a user: listed %d sessions, want %d", len(seen), len(live))
	}
	for _, bad := range []string{"x", "!!", "MTIz", "YWJj"} {
		_, err := s.Store.Sessions(context.Background(), "acme", c, store.Page{Cursor: bad})
		if !errors.Is(err, store.ErrBadCursor) {
			t.Fatalf("cursor %q: %v, want ErrBadCursor", bad, err)
		}
	}
}

// once fails on a session listed twice and returns the set listed.
func once(t *testing.T, l []store.SessionInfo) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, in := range l {
		if seen[in.Hash] {
			t.Fatalf("%s listed twice", in.Hash)
		}
		seen[in.Hash] = true
	}
	return seen
}

// testPagesUnderChange: sessions created and ended between pages (the
// ended one the cursor points at included) neither repeat nor hide the
// sessions that stay live for the whole walk.
func testPagesUnderChange(t *testing.T, s *clocked) {
	c := cfg()
	stay := map[string]bool{}
	for i := 0; i < 12; i++ {
		touch(t, s, req(c, "acme", fmt.Sprint("k", i), "alice", t0.Add(time.Duration(i)*time.Second), t0.Add(time.Minute)))
		stay[session.HashID(fmt.Sprint("k", i))] = true
	}
	now := t0.Add(time.Minute)
	var created []string
	got := walk(t, s, "acme", c, now, 3, func(i int) {
		// a session listed on the page just read ends; one logged in
		// before it, one between the pages and one at the end start
		gone := fmt.Sprint("k", 3*i-1)
		revoke(t, s, now, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID(gone)}, Policy: c})
		delete(stay, session.HashID(gone))
		for j, login := range []time.Time{t0.Add(-time.Second), t0.Add(time.Duration(3*i)*time.Second + time.Millisecond), now} {
			id := fmt.Sprintf("n%d-%d", i, j)
			touch(t, s, req(c, "acme", id, "bob", login, now))
			created = append(created, session.HashID(id))
		}
	}, nil)
	seen := once(t, got)
	for h := range stay {
		if !seen[h] {
			t.Fatalf("session %s, live for the whole walk, was not listed", h)
		}
	}
	if len(created) == 0 {
		t.Fatal("no session created during the walk")
	}
}
