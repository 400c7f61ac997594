package caddymodule

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gaugeValue reads caddy_session_guard_live_sessions from reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "caddy_session_guard_live_sessions" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("caddy_session_guard_live_sessions not registered")
	return 0
}

func TestLiveTrackerSeenForgetSweep(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	lt := newLiveTracker("memory", 1000)
	lt.seen("a", now.Add(time.Minute))
	lt.seen("b", now.Add(2*time.Minute))
	lt.seen("c", now.Add(3*time.Minute))
	lt.seen("a", now.Add(4*time.Minute)) // refreshed, not added
	lt.seen("", now.Add(time.Hour))      // no hash: ignored
	if n := lt.sweep(now); n != 3 {
		t.Fatalf("live = %d, want 3", n)
	}
	lt.forget("c")
	lt.forget("unknown")
	if n := lt.sweep(now); n != 2 {
		t.Fatalf("after forget: live = %d, want 2", n)
	}
	// b's deadline passes; a's was moved to +4m by the second sighting.
	if n := lt.sweep(now.Add(2 * time.Minute)); n != 1 {
		t.Fatalf("after b's deadline: live = %d, want 1", n)
	}
	if n := lt.sweep(now.Add(4 * time.Minute)); n != 0 {
		t.Fatalf("at a's deadline: live = %d, want 0", n)
	}
	var nilTracker *liveTracker
	nilTracker.seen("x", now)
	nilTracker.forget("x")
	nilTracker.release()
}

// TestLiveTrackerBounded: past its capacity the tracker evicts, never
// grows, and prefers the entries closest to expiry.
func TestLiveTrackerBounded(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const capacity = 64 * liveShards
	lt := newLiveTracker("memory", capacity)
	for i := 0; i < 10*capacity; i++ {
		lt.seen(fmt.Sprintf("s-%d", i), now.Add(time.Hour+time.Duration(i)*time.Second))
	}
	n := lt.sweep(now)
	if n > capacity || n < capacity*9/10 {
		t.Fatalf("live = %d after %d sessions, want at most (and about) %d", n, 10*capacity, capacity)
	}
	// Evicting the earliest deadline of each sample keeps mostly recent
	// sessions: the oldest tenth is nearly gone.
	old := 0
	for i := 0; i < capacity; i++ {
		s, k := lt.shard(fmt.Sprintf("s-%d", i))
		s.mu.Lock()
		if _, ok := s.m[k]; ok {
			old++
		}
		s.mu.Unlock()
	}
	if old > capacity/10 {
		t.Fatalf("%d of the %d oldest sessions kept", old, capacity)
	}
}

// TestLiveTrackerSeenDoesNotAllocate: recording a known session is
// allocation-free (the request path).
func TestLiveTrackerSeenDoesNotAllocate(t *testing.T) {
	now := time.Now()
	lt := newLiveTracker("memory", 1000)
	lt.seen("known", now)
	if a := testing.AllocsPerRun(1000, func() { lt.seen("known", now.Add(time.Minute)) }); a != 0 {
		t.Fatalf("seen allocates %v times per call", a)
	}
}

// TestLiveTrackerHandover: the tracker of a new config takes the entries
// of the old one when both track the same store, and only the owner
// sets the gauge.
func TestLiveTrackerHandover(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	ctx1, cancel1 := context.WithCancel(context.Background())
	old := newLiveTracker("memory", 1000)
	old.claim()
	old.seen("a", now.Add(time.Minute))
	old.seen("b", now.Add(time.Minute))
	old.publish(ctx1, old.sweep(now))
	if v := gaugeValue(t, reg); v != 2 {
		t.Fatalf("gauge = %v, want 2", v)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	cur := newLiveTracker("memory", 1000)
	cur.seen("b", now.Add(time.Hour))
	cur.claim() // adopts a and b, keeps b's later deadline
	if n := cur.sweep(now.Add(30 * time.Minute)); n != 1 {
		t.Fatalf("new tracker: live = %d at +30m, want 1 (b)", n)
	}
	old.publish(ctx1, 99) // the replaced config no longer owns the gauge
	cur.publish(ctx2, 1)
	if v := gaugeValue(t, reg); v != 1 {
		t.Fatalf("gauge = %v, want 1 (the old config overwrote it?)", v)
	}
	cancel1()
	old.release()

	other := newLiveTracker("redis:abc", 1000)
	other.claim() // another store: nothing adopted
	if n := other.sweep(now); n != 0 {
		t.Fatalf("tracker of another store adopted %d sessions", n)
	}
	other.release()
	cancel2()
	cur.release()
}

// BenchmarkLiveTrackerSeen is the tracker's cost on the request path:
// recording one of 1000 known sessions.
func BenchmarkLiveTrackerSeen(b *testing.B) {
	lt := newLiveTracker("memory", DefaultLiveSessionsCap)
	hashes := make([]string, 1000)
	deadline := time.Now().Add(time.Hour)
	for i := range hashes {
		hashes[i] = fmt.Sprintf("session-hash-%016d", i)
		lt.seen(hashes[i], deadline)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			lt.seen(hashes[i%len(hashes)], deadline)
			i++
		}
	})
}
