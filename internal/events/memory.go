package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// Memory is an Outbox kept in the process, for the memory store: the
// same events, delivered the same way, lost with the process.
type Memory struct {
	now   func() time.Time
	max   int
	hooks *Hooks
	nonce string // makes ids unique across restarts

	mu      sync.Mutex
	base    uint64  // sequence number of entries[0]
	entries []Event // oldest first
	groups  map[string]*memGroup
	wake    chan struct{}
}

type memGroup struct {
	next    uint64               // first entry not handed out yet
	pending map[uint64]time.Time // handed out, not acknowledged: when
}

// NewMemory returns an empty outbox keeping at most limit undelivered
// events (at least 1), on clock now.
func NewMemory(now func() time.Time, limit int, hooks *Hooks) *Memory {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Memory{now: now, max: max(limit, 1), hooks: hooks, nonce: "evt_" + hex.EncodeToString(b[:]),
		groups: make(map[string]*memGroup), wake: make(chan struct{}, 1)}
}

// Append adds an event, giving it its id and the outbox's time when it
// has none, and drops the oldest when full.
func (m *Memory) Append(ev Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := m.base + uint64(len(m.entries))
	ev.ID = m.nonce + "_" + strconv.FormatUint(seq, 10)
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	m.entries = append(m.entries, ev)
	m.hooks.Emit(ev.Type)
	if over := len(m.entries) - m.max; over > 0 {
		m.dropOldest(over)
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Wake is signalled when an event is appended.
func (m *Memory) Wake() <-chan struct{} { return m.wake }

// dropOldest drops the n oldest entries, with m.mu held.
func (m *Memory) dropOldest(n int) {
	m.entries = m.entries[n:] // append reallocates in time; no copy per event
	m.base += uint64(n)
	for _, g := range m.groups {
		g.next = max(g.next, m.base)
		for s := range g.pending {
			if s < m.base {
				delete(g.pending, s)
			}
		}
	}
	m.hooks.Drop(n)
}

func (m *Memory) group(name string) *memGroup {
	g := m.groups[name]
	if g == nil {
		g = &memGroup{next: m.base, pending: make(map[uint64]time.Time)}
		m.groups[name] = g
	}
	return g
}

// Read implements Outbox.
func (m *Memory) Read(ctx context.Context, group, _ string, n int, reclaim time.Duration) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.group(group)
	var out []Event
	for s := m.base; s < g.next && len(out) < n; s++ {
		if at, ok := g.pending[s]; ok && !now.Before(at.Add(reclaim)) {
			g.pending[s] = now
			out = append(out, m.entries[s-m.base])
		}
	}
	for ; g.next < m.base+uint64(len(m.entries)) && len(out) < n; g.next++ {
		g.pending[g.next] = now
		out = append(out, m.entries[g.next-m.base])
	}
	return out, nil
}

// Ack implements Outbox; it also forgets entries every group delivered.
func (m *Memory) Ack(ctx context.Context, group string, evs []Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.group(group)
	for _, ev := range evs {
		if s, ok := m.seqOf(ev.ID); ok {
			delete(g.pending, s)
		}
	}
	m.trim()
	return nil
}

// seqOf parses the sequence number of an id of this outbox.
func (m *Memory) seqOf(id string) (uint64, bool) {
	if len(id) <= len(m.nonce)+1 || id[:len(m.nonce)] != m.nonce {
		return 0, false
	}
	s, err := strconv.ParseUint(id[len(m.nonce)+1:], 10, 64)
	return s, err == nil
}

// trim forgets the entries every group has delivered, with m.mu held.
func (m *Memory) trim() {
	if len(m.groups) == 0 {
		return
	}
	low := m.base + uint64(len(m.entries))
	for _, g := range m.groups {
		low = min(low, g.next)
		for s := range g.pending {
			low = min(low, s)
		}
	}
	if low > m.base {
		m.entries = m.entries[low-m.base:]
		m.base = low
	}
}

// Queued implements Outbox.
func (m *Memory) Queued(ctx context.Context, group string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.group(group)
	return int64(m.base+uint64(len(m.entries))-g.next) + int64(len(g.pending)), nil
}

var _ Outbox = (*Memory)(nil)
