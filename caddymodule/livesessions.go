package caddymodule

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultLiveSessionsCap is the most sessions one instance's
	// live-session tracker holds; past it, among a few sampled entries
	// the one closest to expiry is dropped.
	DefaultLiveSessionsCap = 1_000_000

	// DefaultLiveSessionsSweep is how often the tracker drops sessions
	// past their deadline and sets caddy_session_guard_live_sessions.
	DefaultLiveSessionsSweep = 10 * time.Second

	liveShards      = 32 // power of two; spreads lock contention
	liveEvictSample = 8
)

// liveSweepEvery is the sweep interval, in nanoseconds; tests shorten it.
var liveSweepEvery atomic.Int64

func init() { liveSweepEvery.Store(int64(DefaultLiveSessionsSweep)) }

// liveSeed keys the tracker's map. It is per process, not per tracker,
// so that a tracker taking over from the previous config's keeps the
// same keys.
var liveSeed = maphash.MakeSeed()

// liveTracker is one app instance's view of the sessions it knows to be
// live: session hash (itself hashed to 64 bits) to the session's
// expiry as the store last reported it to this instance. It only learns
// from this instance's own decisions, so it is approximate: a session
// used on other instances expires here at its last deadline seen here,
// and one revoked elsewhere is counted until its deadline or its next
// request here. It is safe for concurrent use; recording a session it
// already holds does not allocate.
type liveTracker struct {
	storeKey string // the pooled store's key: whose sessions these are
	perShard int
	shards   [liveShards]liveShard
}

type liveShard struct {
	mu sync.Mutex
	m  map[uint64]int64 // key -> deadline, Unix nanoseconds
	_  [48]byte         // keep shards on separate cache lines
}

// newLiveTracker returns an empty tracker of at most capacity sessions
// of the store with the given pool key.
func newLiveTracker(storeKey string, capacity int) *liveTracker {
	t := &liveTracker{storeKey: storeKey, perShard: max(1, capacity/liveShards)}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]int64)
	}
	return t
}

func (t *liveTracker) shard(hash string) (*liveShard, uint64) {
	k := maphash.String(liveSeed, hash)
	return &t.shards[k&(liveShards-1)], k
}

// seen records that the session with the given hash is live until
// deadline.
func (t *liveTracker) seen(hash string, deadline time.Time) {
	if t == nil || hash == "" {
		return
	}
	s, k := t.shard(hash)
	d := deadline.UnixNano()
	s.mu.Lock()
	if _, ok := s.m[k]; !ok && len(s.m) >= t.perShard {
		s.evict()
	}
	s.m[k] = d
	s.mu.Unlock()
}

// forget drops the session with the given hash (logged out, expired or
// revoked).
func (t *liveTracker) forget(hash string) {
	if t == nil || hash == "" {
		return
	}
	s, k := t.shard(hash)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// evict drops, among a few entries sampled at random (map order), the
// one with the earliest deadline: the least recently active, roughly.
// The caller holds s.mu.
func (s *liveShard) evict() {
	var (
		victim uint64
		first  = int64(1<<63 - 1)
		n      int
	)
	for k, d := range s.m {
		if d < first {
			victim, first = k, d
		}
		if n++; n == liveEvictSample {
			break
		}
	}
	if n > 0 {
		delete(s.m, victim)
	}
}

// sweep drops the sessions whose deadline is not after now and returns
// how many are left.
func (t *liveTracker) sweep(now time.Time) int {
	cut := now.UnixNano()
	total := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, d := range s.m {
			if d <= cut {
				delete(s.m, k)
			}
		}
		total += len(s.m)
		s.mu.Unlock()
	}
	return total
}

// adopt copies the entries of old, the tracker of the config this one
// replaces, so that a reload does not reset the gauge. An entry both
// hold keeps the later deadline.
func (t *liveTracker) adopt(old *liveTracker) {
	for i := range t.shards {
		src, dst := &old.shards[i], &t.shards[i]
		src.mu.Lock()
		dst.mu.Lock()
		for k, d := range src.m {
			if cur, ok := dst.m[k]; ok && cur >= d {
				continue
			}
			if _, ok := dst.m[k]; !ok && len(dst.m) >= t.perShard {
				break
			}
			dst.m[k] = d
		}
		dst.mu.Unlock()
		src.mu.Unlock()
	}
}

// liveGauge decides which tracker sets caddy_session_guard_live_sessions:
// the one of the config started last, until it stops. Across a reload
// the old and the new config run side by side for a moment; only the
// owner publishes, so the old one cannot overwrite the new count.
var liveGauge struct {
	mu    sync.Mutex
	owner *liveTracker
}

// publish sets the gauge to n if t owns it, or takes ownership when
// nobody does (the config that replaced t's failed to start) and t's
// config is still loaded (ctx is not done).
func (t *liveTracker) publish(ctx context.Context, n int) {
	liveGauge.mu.Lock()
	defer liveGauge.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if liveGauge.owner == nil {
		liveGauge.owner = t
	}
	if liveGauge.owner == t && metrics.liveSessions != nil {
		metrics.liveSessions.Set(float64(n))
	}
}

// start takes the gauge over and runs the sweeps in a goroutine that
// ends when ctx is done (the config is unloaded).
func (t *liveTracker) start(ctx context.Context, now func() time.Time) {
	t.claim()
	go t.run(ctx, now)
}

// claim makes t the gauge's owner, with the entries of the previous
// owner (the config being replaced) when it tracked the same store.
func (t *liveTracker) claim() {
	liveGauge.mu.Lock()
	defer liveGauge.mu.Unlock()
	if prev := liveGauge.owner; prev != nil && prev != t && prev.storeKey == t.storeKey {
		t.adopt(prev)
	}
	liveGauge.owner = t
}

// release gives the gauge up if t owns it, so that a config loaded
// after this one was unloaded (not a reload) starts afresh.
func (t *liveTracker) release() {
	if t == nil {
		return
	}
	liveGauge.mu.Lock()
	if liveGauge.owner == t {
		liveGauge.owner = nil
	}
	liveGauge.mu.Unlock()
}

// run sweeps every liveSweepEvery until ctx is done, then gives the
// gauge up if it still owns it.
func (t *liveTracker) run(ctx context.Context, now func() time.Time) {
	tick := time.NewTicker(time.Duration(liveSweepEvery.Load()))
	defer tick.Stop()
	defer t.release()
	t.publish(ctx, t.sweep(now()))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.publish(ctx, t.sweep(now()))
		}
	}
}
