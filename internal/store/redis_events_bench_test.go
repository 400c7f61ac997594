package store_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// BenchmarkRedisEventDelivery measures how many events one gateway's
// dispatcher delivers per second from the Redis outbox (2000 session
// creations over 50 accounts per round) to a local webhook receiver
// that answers 204 at once: the rate of the delivery path itself.
func BenchmarkRedisEventDelivery(b *testing.B) {
	srv := testredis.Start(b)
	client := srv.Client(b)
	var got atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	const perRound = 2000
	b.StopTimer()
	for round := 0; round < b.N; round++ {
		s := store.NewRedis(client, store.RedisOptions{KeyPrefix: fmt.Sprint("ev", round), Timeout: 2 * time.Second})
		ob := s.EnableEvents(1<<20, nil)
		c, now := cfg(), time.Now()
		for i := 0; i < perRound; i++ {
			_, err := s.Touch(b.Context(), &store.TouchRequest{Account: fmt.Sprint("acct-", i%50), SessionHash: session.HashID(fmt.Sprint("s", i)),
				User: fmt.Sprint("u", i), LoginAt: now, NotAfter: now.Add(time.Hour), Policy: c})
			if err != nil {
				b.Fatal(err)
			}
		}
		sink, err := events.NewWebhook(rcv.URL, []byte("events-secret-0123456789abcdef01"), rcv.Client(), time.Now)
		if err != nil {
			b.Fatal(err)
		}
		got.Store(0)
		ctx, cancel := context.WithCancel(b.Context())
		b.StartTimer()
		start := time.Now()
		d := &events.Dispatcher{Outbox: ob, Group: "webhook", Consumer: "c", Sink: sink, Poll: time.Millisecond}
		done := make(chan struct{})
		go func() { defer close(done); d.Run(ctx) }()
		for got.Load() < perRound {
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		b.ReportMetric(float64(perRound)/elapsed.Seconds(), "events/s")
	}
}

// BenchmarkRedisCreateEvents measures a session creation (one touch of a
// new session) with events off and on: on, the script also appends the
// event and the gateway bumps the account in the registry.
func BenchmarkRedisCreateEvents(b *testing.B) {
	srv := testredis.Start(b)
	client := srv.Client(b)
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprint("events=", on), func(b *testing.B) {
			s := store.NewRedis(client, store.RedisOptions{KeyPrefix: fmt.Sprint("cr", on), Timeout: 2 * time.Second})
			if on {
				s.EnableEvents(1<<20, nil)
			}
			c, now := cfg(), time.Now()
			for i := 0; i < b.N; i++ {
				_, err := s.Touch(b.Context(), &store.TouchRequest{Account: fmt.Sprint("acct-", i%50), SessionHash: session.HashID(fmt.Sprint("s", i)),
					User: fmt.Sprint("u", i), LoginAt: now, NotAfter: now.Add(time.Hour), Policy: c})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRedisSweep100k measures sweeping 100k sessions over 1000
// accounts that all idled out unobserved: the SweepExpired calls (each up
// to 100 accounts x 200 sessions) until none is left, and the cost of a
// sweep that finds nothing due.
func BenchmarkRedisSweep100k(b *testing.B) {
	srv := testredis.Start(b)
	client := srv.Client(b)
	const sessions, accounts = 100000, 1000
	for round := 0; round < b.N; round++ {
		b.StopTimer()
		clock := time.Now()
		now := func() time.Time { return clock }
		s := store.NewRedis(client, store.RedisOptions{KeyPrefix: fmt.Sprint("sw", round), Timeout: 5 * time.Second, Now: now})
		s.EnableEvents(1<<20, nil)
		c := cfg()
		for i := 0; i < sessions; i++ {
			_, err := s.Touch(b.Context(), &store.TouchRequest{Account: fmt.Sprint("acct-", i%accounts), SessionHash: session.HashID(fmt.Sprint("s", i)),
				User: fmt.Sprint("u", i), LoginAt: clock, NotAfter: clock.Add(time.Hour), Policy: c})
			if err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if n, err := s.SweepExpired(b.Context(), c); err != nil || n != 0 {
			b.Fatalf("sweep before any deadline: %d %v", n, err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds()), "µs-nothing-due")
		clock = clock.Add(20 * time.Minute)
		b.StartTimer()
		start, ended, calls := time.Now(), 0, 0
		for ended < sessions {
			n, err := s.SweepExpired(b.Context(), c)
			if err != nil || n == 0 {
				b.Fatalf("sweep %d: ended %d (of %d so far), %v", calls, n, ended, err)
			}
			ended += n
			calls++
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-per-100k")
		b.ReportMetric(float64(calls), "sweeps")
	}
}
