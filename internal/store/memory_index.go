package store

import (
	"context"
	"time"
)

// memIndex is the memory store's SubjectIndex and OnceStore state,
// guarded by Memory.mu. Expired entries are swept every sweepEvery
// writes, so that it does not grow without bound.
type memIndex struct {
	sids, subs map[string]*memSubject
	once       map[string]time.Time // id -> until
	writes     int
}

// memSubject is what is kept per IdP session or user: the members
// (account and session hash or user) with their retention, and the
// latest logout with how long it is kept.
type memSubject struct {
	members       map[Indexed]time.Time
	cut, cutUntil time.Time
}

const sweepEvery = 1024

var (
	_ SubjectIndex = (*Memory)(nil)
	_ OnceStore    = (*Memory)(nil)
)

// subject returns the entry of key in set, made when absent.
func (x *memIndex) subject(set *map[string]*memSubject, key string) *memSubject {
	if *set == nil {
		*set = make(map[string]*memSubject)
	}
	s := (*set)[key]
	if s == nil {
		s = &memSubject{members: make(map[Indexed]time.Time)}
		(*set)[key] = s
	}
	return s
}

// add records member m until until, and returns the subject's logout.
func (s *memSubject) add(m Indexed, until, now time.Time) time.Time {
	if until.After(s.members[m]) {
		s.members[m] = until
	}
	if !now.Before(s.cutUntil) {
		return time.Time{}
	}
	return s.cut
}

// IndexSession implements SubjectIndex; it never fails.
func (m *Memory) IndexSession(ctx context.Context, e IndexEntry) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idx.wrote(now)
	var cut time.Time
	if e.SIDHash != "" {
		cut = m.idx.subject(&m.idx.sids, e.SIDHash).add(Indexed{Account: e.Account, SessionHash: e.SessionHash}, e.Until, now)
	}
	if e.Subject != "" {
		if c := m.idx.subject(&m.idx.subs, e.Subject).add(Indexed{Account: e.Account, User: e.User}, e.Until, now); c.After(cut) {
			cut = c
		}
	}
	return cut, nil
}

// LogoutSID implements SubjectIndex.
func (m *Memory) LogoutSID(ctx context.Context, sidHash string, keep time.Duration) ([]Indexed, error) {
	return m.logout(ctx, &m.idx.sids, sidHash, keep)
}

// LogoutSubject implements SubjectIndex.
func (m *Memory) LogoutSubject(ctx context.Context, sub string, keep time.Duration) ([]Indexed, error) {
	return m.logout(ctx, &m.idx.subs, sub, keep)
}

func (m *Memory) logout(ctx context.Context, set *map[string]*memSubject, key string, keep time.Duration) ([]Indexed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idx.wrote(now)
	s := m.idx.subject(set, key)
	if now.After(s.cut) || !now.Before(s.cutUntil) {
		s.cut = now
	}
	s.cutUntil = now.Add(keep)
	var out []Indexed
	for mem, until := range s.members {
		if now.Before(until) {
			out = append(out, mem)
		}
	}
	return out, nil
}

// Once implements OnceStore.
func (m *Memory) Once(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idx.wrote(now)
	if until, ok := m.idx.once[id]; ok && now.Before(until) {
		return false, nil
	}
	if m.idx.once == nil {
		m.idx.once = make(map[string]time.Time)
	}
	m.idx.once[id] = now.Add(ttl)
	return true, nil
}

// Forget implements OnceStore.
func (m *Memory) Forget(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.idx.once, id)
	return nil
}

// wrote counts a write and sweeps expired entries every sweepEvery.
func (x *memIndex) wrote(now time.Time) {
	if x.writes++; x.writes%sweepEvery != 0 {
		return
	}
	for id, until := range x.once {
		if !now.Before(until) {
			delete(x.once, id)
		}
	}
	for _, set := range []map[string]*memSubject{x.sids, x.subs} {
		for key, s := range set {
			for mem, until := range s.members {
				if !now.Before(until) {
					delete(s.members, mem)
				}
			}
			if len(s.members) == 0 && !now.Before(s.cutUntil) {
				delete(set, key)
			}
		}
	}
}
