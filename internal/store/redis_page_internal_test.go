package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// TestListingRechecksWhatItFound: between the range of ord and the
// sessions' script, one member moves in ord, one record goes and one
// ends without leaving the indexes. The script lists only the member
// still where it was found, leaves the moved one listed where it now is
// (the walk meets it there), and unlists the gone and the ended one.
func TestListingRechecksWhatItFound(t *testing.T) {
	s, client, clock, t0 := clockedStore(t, "p")
	cfg := policy.NewConfig()
	ctx := context.Background()
	users := []string{"alice", "bob", "carol", "dave"}
	for i, u := range users {
		_, err := s.Touch(ctx, &TouchRequest{Account: "acme", SessionHash: session.HashID(u), User: u,
			LoginAt: t0.Add(time.Duration(i-len(users)) * time.Second), NotAfter: t0.Add(time.Hour), Policy: &cfg})
		if err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(5 * time.Second)
	k := s.keys("acme")
	found, err := scriptPageMembers.Run(ctx, client, []string{k.order()}, "0", "", "10").StringSlice()
	if err != nil || len(found) != 8 {
		t.Fatalf("members found: %v %v", found, err)
	}
	m := func(u string) string { return member(session.HashID(u)) }
	moved := float64(t0.Add(time.Minute).UnixMilli())
	client.ZAdd(ctx, k.order(), redis.Z{Score: moved, Member: m("bob")})
	client.Del(ctx, k.session(session.HashID("carol")))
	client.HSet(ctx, k.session(session.HashID("dave")), "x", "revoked")

	pg, err := s.liveOf(ctx, "acme", &cfg, found)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Sessions) != 1 || pg.Sessions[0].User != "alice" || fmt.Sprint(pg.Users) != "map[alice:1]" {
		t.Fatalf("listed %+v, users %v; want alice's session alone", pg.Sessions, pg.Users)
	}
	ord, _ := client.ZRangeWithScores(ctx, k.order(), 0, -1).Result()
	if len(ord) != 2 || ord[0].Member != m("alice") || ord[1].Member != m("bob") || ord[1].Score != moved {
		t.Fatalf("ord after: %v; want alice, and bob where he moved", ord)
	}
	if n, _ := client.ZCard(ctx, k.userIndex("dave")).Result(); n != 0 {
		t.Fatalf("the ended session stays in its user's index")
	}
	if n, _ := client.ZCard(ctx, k.userIndex("bob")).Result(); n != 1 {
		t.Fatalf("the moved session left its user's index")
	}
	// a walk meets the moved session where it is now
	all, err := ListAll(ctx, s, "acme", &cfg)
	if err != nil || len(all) != 2 || all[1].User != "bob" {
		t.Fatalf("walk after: %+v %v; want alice then bob", all, err)
	}
}
