package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testclock"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisOpaqueRoundTrips: on a single node a lookup is one round
// trip when the gateway remembers the hash's account (it bound or looked
// it up before), two when it reads the pointer first; an unbound lookup
// is one and writes nothing; a bind is two (the record, then the
// pointer); the pointer expires on its own.
func TestRedisOpaqueRoundTrips(t *testing.T) {
	srv := testredis.Start(t)
	cnt := &counter{}
	client := gatewayClient(t, srv.Addr(), cnt)
	gateway := func() *store.Redis {
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: "op", Timeout: 2 * time.Second})
	}
	s := gateway()
	ctx := context.Background()
	c := cfg()
	lookup := &store.TouchRequest{SessionHash: session.HashID("cookie"), Policy: c}
	bind := &store.TouchRequest{Account: "a:b}c", SessionHash: session.HashID("cookie"), User: "alice", Policy: c}
	steps := []struct {
		name  string
		op    func() (session.Status, error)
		want  session.Status
		trips int64
	}{
		{"lookup (unbound)", func() (session.Status, error) { r, err := s.Lookup(ctx, lookup); return r.Status, err }, session.Unbound, 1},
		{"bind", func() (session.Status, error) { r, err := s.Bind(ctx, bind); return r.Status, err }, session.Active, 2},
		{"lookup", func() (session.Status, error) { r, err := s.Lookup(ctx, lookup); return r.Status, err }, session.Active, 1},
		{"first lookup", func() (session.Status, error) { r, err := gateway().Lookup(ctx, lookup); return r.Status, err }, session.Active, 2},
		{"secret", func() (session.Status, error) { _, err := s.Secret(ctx, "k", []byte("v")); return session.Active, err }, session.Active, 1},
	}
	for i, st := range steps {
		if i == 0 {
			if keys := keysOf(t, srv.Client(t), "op"); len(keys) != 0 {
				t.Fatalf("keys before anything: %q", keys)
			}
		}
		_, _ = st.op() // loads the script
		before := cnt.n.Load()
		got, err := st.op()
		if err != nil || got != st.want {
			t.Fatalf("%s: %s %v, want %s", st.name, got, err, st.want)
		}
		if n := cnt.n.Load() - before; n != st.trips {
			t.Errorf("%s sent %d commands, want %d", st.name, n, st.trips)
		}
		if i == 0 {
			if keys := keysOf(t, srv.Client(t), "op"); len(keys) != 0 {
				t.Fatalf("an unbound lookup wrote keys: %q", keys)
			}
		}
	}
	for _, k := range keysOf(t, srv.Client(t), "op") {
		if strings.Contains(k, "{~secret}") || strings.HasSuffix(k, ":pol") {
			continue
		}
		if pttl, err := srv.Client(t).PTTL(ctx, k).Result(); err != nil || pttl <= 0 {
			t.Errorf("key %q: PTTL %v %v, want > 0", k, pttl, err)
		}
	}
}

// TestRedisClusterOpaquePointerCache: on a real three-master Redis
// Cluster an opaque lookup takes two round trips the first time (the
// pointer in the hash's slot, then the account's slot) and one after
// that, from the account the gateway remembers. A second gateway moving
// the hash to another account, or revoking it, is still seen at once:
// the remembered account's record is gone (moved) or ended (revoked).
func TestRedisClusterOpaquePointerCache(t *testing.T) {
	cl := testredis.StartCluster(t)
	cnt := &counter{}
	client := cl.Client(t)
	client.AddHook(cnt)
	ctx := context.Background()
	c := cfg()
	const prefix = "pc"
	hash := session.HashID("cookie-value")
	ptrKey := prefix + ":{~" + hash + "}:o"
	if ptrSlot, acctSlot := cl.Slot(t, ptrKey), cl.Slot(t, prefix+":{acme}:pol"); ptrSlot == acctSlot {
		t.Fatalf("pointer and account share slot %d; pick other names", ptrSlot)
	}
	newGateway := func() *store.Redis {
		return store.NewRedis(client, store.RedisOptions{KeyPrefix: prefix, Timeout: 2 * time.Second})
	}
	bind := func(s *store.Redis, account, user string) {
		t.Helper()
		res, err := s.Bind(ctx, &store.TouchRequest{Account: account, SessionHash: hash, User: user, Policy: c})
		if err != nil || res.Status != session.Active {
			t.Fatalf("bind to %s: %s %v", account, res.Status, err)
		}
	}
	// lookup checks the answer and returns the commands it took.
	lookup := func(s *store.Redis, h string, want session.Status, account, user string) int64 {
		t.Helper()
		before := cnt.n.Load()
		res, err := s.Lookup(ctx, &store.TouchRequest{SessionHash: h, Policy: c})
		n := cnt.n.Load() - before
		if err != nil || res.Status != want || res.Account != account || res.User != user {
			t.Fatalf("lookup: %s %q %q %v, want %s %q %q", res.Status, res.Account, res.User, err, want, account, user)
		}
		return n
	}
	wantTrips := func(what string, got, want int64) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %d round trips, want %d", what, got, want)
		}
	}

	// A throwaway gateway loads the scripts on the nodes of both
	// accounts and of the pointer (go-redis falls back from EVALSHA to
	// EVAL once per node), so that the counts below are steady state.
	warm := newGateway()
	for _, acct := range []string{"globex", "acme"} {
		bind(warm, acct, "warm")
		lookup(warm, hash, session.Active, acct, "warm")
		lookup(newGateway(), hash, session.Active, acct, "warm")
	}

	g1, g2 := newGateway(), newGateway()
	bind(g2, "acme", "alice")
	wantTrips("first lookup", lookup(g1, hash, session.Active, "acme", "alice"), 2)
	for i := 0; i < 3; i++ {
		wantTrips("repeated lookup", lookup(g1, hash, session.Active, "acme", "alice"), 1)
	}
	wantTrips("lookup after own bind", lookup(g2, hash, session.Active, "acme", "alice"), 1)

	// The second gateway moves the hash to another account: the first
	// finds no record under the account it remembers, reads the pointer
	// and answers for the new account.
	bind(g2, "globex", "bob")
	wantTrips("lookup after a move", lookup(g1, hash, session.Active, "globex", "bob"), 3)
	wantTrips("repeated lookup after a move", lookup(g1, hash, session.Active, "globex", "bob"), 1)
	if list, err := store.ListAll(ctx, g1, "acme", c); err != nil || len(list) != 0 {
		t.Fatalf("the moved session is still listed under acme: %+v %v", list, err)
	}

	// Revoked through the second gateway: the first's remembered account
	// holds the ended record, answered in one trip.
	n, err := g2.Revoke(ctx, store.RevokeRequest{Account: "globex", Scope: store.ScopeSession, Sessions: []string{hash}, Policy: c})
	if err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	wantTrips("lookup after a revocation", lookup(g1, hash, session.Revoked, "globex", "bob"), 1)

	// A hash never bound: one trip (the pointer), and nothing is
	// remembered for it.
	other := session.HashID("never-bound")
	for i := 0; i < 2; i++ {
		wantTrips("unbound lookup", lookup(g1, other, session.Unbound, "", ""), 1)
	}

	// Bound again, in the first account, by the second gateway: the
	// first gateway's stale hint (globex, revoked) must not win.
	bind(g2, "acme", "carol")
	wantTrips("lookup after a move back", lookup(g1, hash, session.Active, "acme", "carol"), 3)
	if list, err := store.ListAll(ctx, g1, "globex", c); err != nil || len(list) != 0 {
		t.Fatalf("the moved session is still listed under globex: %+v %v", list, err)
	}
}

// TestRedisOpaqueDeclaresKeys: every key an opaque-cookie script touches
// is one it was given in KEYS (seen through MONITOR), through a bind, a
// lookup through the pointer and a remembered one, a record of a user
// the gateway did not remember, ends that a revocation of the account
// left to record, a move to another account and an expiry. (Without a
// session limit: the limit's walk of the user's sessions in a bind,
// redis_limit.go, still builds their keys.)
func TestRedisOpaqueDeclaresKeys(t *testing.T) {
	srv := testredis.Start(t)
	client := gatewayClient(t, srv.Addr())
	clock := testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	gateway := func() *store.Redis {
		s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "dk", Timeout: 2 * time.Second, Now: clock.Now})
		s.EnableEvents(1000, nil)
		return s
	}
	g1, g2 := gateway(), gateway()
	ctx := context.Background()
	c := cfg()
	hash := session.HashID("cookie")
	bind := func(account, user string) {
		t.Helper()
		if r, err := g1.Bind(ctx, &store.TouchRequest{Account: account, SessionHash: hash, User: user, Policy: c}); err != nil || r.Status != session.Active {
			t.Fatalf("bind %s/%s: %s %v", account, user, r.Status, err)
		}
	}
	lookup := func(want session.Status, user string) {
		t.Helper()
		r, err := g2.Lookup(ctx, &store.TouchRequest{SessionHash: hash, Policy: c})
		if err != nil || r.Status != want || r.User != user {
			t.Fatalf("lookup: %s %q %v, want %s %q", r.Status, r.User, err, want, user)
		}
	}
	revokeAll := func() {
		t.Helper()
		if _, err := g1.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeAll, Policy: c}); err != nil {
			t.Fatal(err)
		}
	}
	stop := watchScripts(t, srv.Addr())
	bind("acme", "alice")
	lookup(session.Active, "alice") // through the pointer
	clock.Advance(time.Minute)
	lookup(session.Active, "alice") // remembered; moves last seen
	bind("acme", "bob")             // g2 still remembers alice
	lookup(session.Active, "bob")
	revokeAll()
	lookup(session.Revoked, "bob") // records the end the revocation left
	bind("acme", "carol")
	revokeAll()
	bind("acme", "dave") // records carol's end, then replaces it
	bind("globex", "erin")
	lookup(session.Active, "erin")
	clock.Advance(48 * time.Hour)
	lookup(session.Unbound, "") // retention passed
	runs := stop()

	n, cmds := 0, 0
	for _, r := range runs {
		if slices.Contains(store.OpaqueScripts, r.sha) {
			n, cmds = n+1, cmds+len(r.cmds)
		}
	}
	t.Logf("%d opaque script runs, %d commands in them", n, cmds)
	if n < 12 {
		t.Fatalf("MONITOR saw %d opaque script runs, want at least 12, one per operation", n)
	}
	if bad := undeclared(t, srv.Client(t), runs, store.OpaqueScripts); len(bad) > 0 {
		t.Fatalf("opaque scripts touched keys not in their KEYS:\n%s", strings.Join(bad, "\n"))
	}
}
