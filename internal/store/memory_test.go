package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory(nil) })
}

func TestMemoryPrune(t *testing.T) {
	now := time.Now()
	m := store.NewMemory(func() time.Time { return now })
	c := policy.NewConfig()
	for _, sid := range []string{"a", "b"} {
		_, err := m.Touch(context.Background(), &store.TouchRequest{
			Account: "acme", SessionHash: session.HashID(sid), User: "u", LoginAt: now, NotAfter: now.Add(time.Hour), Policy: &c,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Prune(now.Add(11 * time.Hour)); n != 0 {
		t.Fatalf("pruned %d live sessions", n)
	}
	if n := m.Prune(now.Add(13 * time.Hour)); n != 2 {
		t.Fatalf("pruned %d, want 2", n)
	}
	if n := m.Prune(now.Add(13 * time.Hour)); n != 0 {
		t.Fatalf("second prune removed %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, time.Millisecond); close(done) }()
	cancel()
	<-done
}
