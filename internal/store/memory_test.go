package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testclock"
)

func TestMemoryConformance(t *testing.T) {
	open := func(t *testing.T, now func() time.Time) store.Store { return store.NewMemory(now) }
	storetest.Run(t, open)
	storetest.RunOpaque(t, open)
}

func TestMemoryPrune(t *testing.T) {
	now := time.Now()
	clock := testclock.New(now)
	m := store.NewMemory(clock.Now)
	c := policy.NewConfig()
	for _, sid := range []string{"a", "b"} {
		_, err := m.Touch(context.Background(), &store.TouchRequest{
			Account: "acme", SessionHash: session.HashID(sid), User: "u", LoginAt: now, NotAfter: now.Add(time.Hour), Policy: &c,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(now.Add(11 * time.Hour))
	if n := m.Prune(); n != 0 {
		t.Fatalf("pruned %d live sessions", n)
	}
	clock.Set(now.Add(13 * time.Hour))
	if n := m.Prune(); n != 2 {
		t.Fatalf("pruned %d, want 2", n)
	}
	if n := m.Prune(); n != 0 {
		t.Fatalf("second prune removed %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, time.Millisecond); close(done) }()
	cancel()
	<-done
}

func TestMemoryEvents(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T, now func() time.Time) store.Store {
		m := store.NewMemory(now)
		m.EnableEvents(1000, nil)
		return m
	})
}
