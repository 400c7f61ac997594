package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// failUnbind makes the script that deletes a moved hash's old record
// fail, as a timeout would.
type failUnbind struct{ on bool }

func (f *failUnbind) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failUnbind) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (f *failUnbind) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if f.on && len(a) > 1 && (strings.EqualFold(a[0].(string), "evalsha") && a[1] == scriptOpaqueUnbind.Hash() ||
			strings.EqualFold(a[0].(string), "eval") && a[1] == luaOpaqueUnbind) {
			err := errors.New("i/o timeout (injected)")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// TestClusterRebindFailureKeepsHintsTrue: a rebind to another account
// whose deletion of the old record fails must not move the pointer, so
// a gateway that remembers the old account and one that reads the
// pointer agree on whose session the cookie is.
func TestClusterRebindFailureKeepsHintsTrue(t *testing.T) {
	cl := testredis.StartCluster(t)
	client := cl.Client(t)
	f := &failUnbind{}
	client.AddHook(f)
	ctx := context.Background()
	c := policy.NewConfig()
	hash := session.HashID("cookie")
	gw := func() *Redis { return NewRedis(client, RedisOptions{KeyPrefix: "x", Timeout: 2 * time.Second}) }
	g1, g3 := gw(), gw()
	if _, err := g1.Bind(ctx, &TouchRequest{Account: "acme", SessionHash: hash, User: "alice", Policy: &c}); err != nil {
		t.Fatal(err)
	}
	// g3 now remembers acme for the hash
	if r, err := g3.Lookup(ctx, &TouchRequest{SessionHash: hash, Policy: &c}); err != nil || r.Account != "acme" {
		t.Fatalf("lookup before: %s %q %v", r.Status, r.Account, err)
	}
	f.on = true
	if _, err := g1.Bind(ctx, &TouchRequest{Account: "globex", SessionHash: hash, User: "bob", Policy: &c}); err == nil {
		t.Fatal("rebind succeeded although deleting the old record failed")
	}
	f.on = false
	hinted, err := g3.Lookup(ctx, &TouchRequest{SessionHash: hash, Policy: &c})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := gw().Lookup(ctx, &TouchRequest{SessionHash: hash, Policy: &c})
	if err != nil {
		t.Fatal(err)
	}
	if hinted.Account != fresh.Account || hinted.User != fresh.User || hinted.Status != fresh.Status {
		t.Fatalf("gateways disagree after a failed rebind: remembered %s %s/%s, pointer %s %s/%s",
			hinted.Status, hinted.Account, hinted.User, fresh.Status, fresh.Account, fresh.User)
	}
	// and a rebind that works moves it for everyone
	if _, err := g1.Bind(ctx, &TouchRequest{Account: "globex", SessionHash: hash, User: "bob", Policy: &c}); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*Redis{"remembering": g3, "fresh": gw()} {
		r, err := g.Lookup(ctx, &TouchRequest{SessionHash: hash, Policy: &c})
		if err != nil || r.Account != "globex" || r.User != "bob" {
			t.Fatalf("%s gateway after the rebind: %s %s/%s %v", name, r.Status, r.Account, r.User, err)
		}
	}
}
