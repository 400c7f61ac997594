package store

import (
	"context"
	"time"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// The memory store's lifecycle events: each transition appends its event
// to the in-process outbox with m.mu held, in the same critical section
// as the transition, so there is exactly one per occurrence.

var (
	_ EventSource   = (*Memory)(nil)
	_ ExpirySweeper = (*Memory)(nil)
)

// EnableEvents makes the store write lifecycle events into an outbox of
// at most limit undelivered events, reporting to hooks, and returns it.
// Later calls return the same outbox (the store outlives config reloads).
func (m *Memory) EnableEvents(limit int, hooks *events.Hooks) *events.Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox == nil {
		m.outbox = events.NewMemory(m.now, limit, hooks)
	}
	return m.outbox
}

// EventOutbox implements EventSource; nil until EnableEvents.
func (m *Memory) EventOutbox() events.Outbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox == nil {
		return nil
	}
	return m.outbox
}

// emit appends an event of rec's session, with m.mu held.
func (m *Memory) emit(typ string, rec *session.Record, by string, at time.Time) {
	if m.outbox == nil {
		return
	}
	m.outbox.Append(events.Event{Type: typ, Time: at, Account: rec.Account, SessionHash: rec.Hash, User: rec.User, By: by})
}

// settle marks s ended when a deadline under p has passed at now and no
// request marked it yet, and emits its expiry, timed at the deadline.
func (m *Memory) settle(s *memSession, p policy.Policy, now time.Time) {
	if s.rec.Ended != session.Active {
		return
	}
	st := s.rec.State(now, p)
	if st == session.Active {
		return
	}
	s.rec.Ended = st
	at := s.rec.IdleExpiresAt(p)
	if st == session.ExpiredAbsolute {
		at = s.rec.AbsoluteExpiresAt(p)
	}
	m.emit(endedEvent(st), &s.rec, "", at)
}

// revoke ends s by a revocation at now, with its event: session.revoked
// when it was live, else the expiry it reached unobserved.
func (m *Memory) revoke(s *memSession, p policy.Policy, by string, now time.Time) {
	if s.rec.Ended != session.Active {
		return
	}
	if s.rec.State(now, p) != session.Active {
		m.settle(s, p, now)
	} else {
		m.emit(events.Revoked, &s.rec, revokedBy(by), now)
	}
	s.rec.Ended, s.rec.EndedAt = session.Revoked, now
}

// SweepExpired implements ExpirySweeper. The memory store looks at every
// session; it holds one process's sessions.
func (m *Memory) SweepExpired(ctx context.Context, cfg *policy.Config) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox == nil {
		return 0, nil
	}
	n := 0
	for _, a := range m.accounts {
		for _, s := range a.sessions {
			if s.rec.Ended == session.Active {
				m.settle(s, PolicyInForce(cfg, &s.rec, a.override), now)
				if s.rec.Ended != session.Active {
					n++
				}
			}
		}
	}
	return n, nil
}

// emitEvicted emits the revocations of the sessions a creation evicted
// to stay within the session limit.
func (m *Memory) emitEvicted(a *memAccount, evicted []string, now time.Time) {
	for _, h := range evicted {
		if s := a.sessions[h]; s != nil {
			m.emit(events.Revoked, &s.rec, events.ByLimit, now)
		}
	}
}

// sameOverride reports whether a and b set the same fields to the same
// values: a policy.update is an override that changed (as the Redis
// script decides, so that a retried write emits nothing).
func sameOverride(a, b policy.Override) bool {
	eq := func(x, y *time.Duration) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.Idle, b.Idle) && eq(a.Absolute, b.Absolute) &&
		(a.MaxSessions == nil) == (b.MaxSessions == nil) && (a.MaxSessions == nil || *a.MaxSessions == *b.MaxSessions) &&
		(a.OnLimit == nil) == (b.OnLimit == nil) && (a.OnLimit == nil || *a.OnLimit == *b.OnLimit)
}
