package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisBatchedTouches: 64 concurrent touches of 64 sessions with one
// pipeline in flight. Every caller gets its own session's answer, the
// touches share round trips, and a SCRIPT FLUSH between two bursts is
// recovered inside a batch.
func TestRedisBatchedTouches(t *testing.T) {
	srv := testredis.Start(t)
	var trips counter
	client := gatewayClient(t, srv.Addr(), &trips)
	s, clock := clockedRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Pipelines: 1})
	c := cfg()
	const n = 64
	reqs := make([]*store.TouchRequest, n)
	for i := range reqs {
		reqs[i] = treq(c, fmt.Sprint("acct-", i%4), fmt.Sprint("s", i), fmt.Sprint("u", i), t0)
		// different idle claims tell the answers apart
		reqs[i].Claimed.Idle = time.Duration(10+i) * time.Minute
	}
	burst := func(round int) {
		t.Helper()
		now := t0.Add(time.Duration(round) * time.Second)
		clock.Set(now)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Touch(context.Background(), r)
				switch {
				case err != nil:
					errs <- fmt.Errorf("touch %d: %w", i, err)
				case res.Status != session.Active || res.Policy.Idle != r.Claimed.Idle ||
					!res.IdleExpiresAt.Equal(now.Add(r.Claimed.Idle)):
					errs <- fmt.Errorf("touch %d got another session's answer or a wrong one: %+v", i, res)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	burst(0)
	if err := client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	burst(1)
	burst(2)
	trips.n.Store(0)
	trips.singles.Store(0)
	trips.pipelines.Store(0)
	burst(3)
	sent := trips.singles.Load() + trips.pipelines.Load()
	t.Logf("%d touches: %d single commands, %d pipelines, %d commands in all", n, trips.singles.Load(), trips.pipelines.Load(), trips.n.Load())
	if got := trips.n.Load(); got != n {
		t.Errorf("%d scripts sent for %d touches, want exactly one each", got, n)
	}
	if sent >= n {
		t.Errorf("%d round trips for %d concurrent touches: not batched", sent, n)
	}
}

// TestRedisBatchCallerGivesUp: a caller whose context ends while its
// touch waits for a busy pipeline gets the context's error at once, and
// the batcher keeps working for everyone else.
func TestRedisBatchCallerGivesUp(t *testing.T) {
	srv := testredis.Start(t)
	// a client with go-redis' default (seconds long) socket timeouts
	client := srv.Client(t)
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: uniquePrefix(t.Name()), Timeout: 2 * time.Second, Pipelines: 1})
	c := cfg()
	// Hold the only pipeline: Redis paused for 300ms.
	admin := srv.Client(t)
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", "300", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := s.Touch(context.Background(), treq(c, "acme", "held", "u", t0))
		held <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Touch(ctx, treq(c, "acme", "impatient", "u", t0))
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("queued touch after its deadline: %v, want unavailable", err)
	}
	if d := time.Since(start); d > 60*time.Millisecond {
		t.Fatalf("caller waited %s for a pipeline after its context ended", d)
	}
	if err := <-held; err != nil {
		t.Fatalf("touch in the held pipeline: %v", err)
	}
	res, err := s.Touch(context.Background(), treq(c, "acme", "after", "u", t0))
	if err != nil || res.Status != session.Active {
		t.Fatalf("touch after: %v %v", res.Status, err)
	}
	// The abandoned touch was dropped, not sent late: it created nothing.
	list, err := store.ListAll(context.Background(), s, "acme", c)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range list {
		if si.Hash == session.HashID("impatient") {
			t.Fatal("a touch whose caller gave up was still sent")
		}
	}
	if len(list) != 2 {
		t.Fatalf("%d sessions, want held and after", len(list))
	}
}

// TestRedisBatchDown: with Redis gone, every batched caller gets
// ErrUnavailable within the store timeout, none hangs.
func TestRedisBatchDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	client := gatewayClient(t, addr)
	s := store.NewRedis(client, store.RedisOptions{KeyPrefix: "down", Timeout: 100 * time.Millisecond, Pipelines: 1})
	c := cfg()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Touch(context.Background(), treq(c, "acme", fmt.Sprint("s", i), "u", t0))
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("touch %d with redis down: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("32 touches with redis down took %s", d)
	}
}
