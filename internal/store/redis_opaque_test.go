package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisOpaqueOneRoundTrip: on a single node every opaque-cookie
// operation is one command; an unbound lookup writes nothing; the
// pointer expires on its own.
func TestRedisOpaqueOneRoundTrip(t *testing.T) {
	srv := testredis.Start(t)
	cnt := &counter{}
	client := gatewayClient(t, srv.Addr(), cnt)
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "op"})
	ctx := context.Background()
	c := cfg()
	now := time.Now()
	lookup := &store.TouchRequest{SessionHash: session.HashID("cookie"), Policy: c, Now: now, Opaque: store.OpaqueLookup}
	bind := &store.TouchRequest{Account: "a:b}c", SessionHash: session.HashID("cookie"), User: "alice", Policy: c, Now: now, Opaque: store.OpaqueBind}
	steps := []struct {
		name string
		op   func() (session.Status, error)
		want session.Status
	}{
		{"lookup (unbound)", func() (session.Status, error) { r, err := s.Touch(ctx, lookup); return r.Status, err }, session.Unbound},
		{"bind", func() (session.Status, error) { r, err := s.Touch(ctx, bind); return r.Status, err }, session.Active},
		{"lookup", func() (session.Status, error) { r, err := s.Touch(ctx, lookup); return r.Status, err }, session.Active},
		{"secret", func() (session.Status, error) { _, err := s.Secret(ctx, "k", []byte("v")); return session.Active, err }, session.Active},
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
		if n := cnt.n.Load() - before; n != 1 {
			t.Errorf("%s sent %d commands, want 1", st.name, n)
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
