package store

import (
	"sort"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// The session limit per user in the memory store. Each account keeps,
// per user, the hashes of the sessions created for that user (a set
// kept up to date on creation, lazily cleaned of ended ones), so that a
// creation looks only at that user's sessions.

// admit enforces the account's session limit for a new session of user
// (whose hash, if it had a record, is being replaced and does not
// count), with m.mu held. It reports false when the new session is
// refused (on_limit deny); otherwise it has ended the oldest-login live
// sessions that make room (evict_oldest) and returns their hashes.
func (a *memAccount) admit(cfg *policy.Config, user, hash string, now time.Time) ([]string, bool) {
	lim := cfg.EffectiveLimit(a.override)
	if lim.Max <= 0 {
		return nil, true
	}
	live := a.liveOf(cfg, user, hash, now)
	if len(live) < lim.Max {
		return nil, true
	}
	if lim.OnLimit == policy.Deny {
		return nil, false
	}
	var evicted []string
	for _, s := range live[:len(live)-lim.Max+1] {
		s.rec.Ended, s.rec.EndedAt = session.Revoked, now
		delete(a.users[user], s.rec.Hash)
		evicted = append(evicted, s.rec.Hash)
	}
	return evicted, true
}

// liveOf returns the live sessions of user other than except, oldest
// login first, and drops the user's ended or gone ones from the index.
func (a *memAccount) liveOf(cfg *policy.Config, user, except string, now time.Time) []*memSession {
	var live []*memSession
	for h := range a.users[user] {
		s := a.sessions[h]
		if s == nil || s.rec.User != user || !now.Before(s.retain) ||
			s.rec.State(now, PolicyInForce(cfg, &s.rec, a.override)) != session.Active {
			delete(a.users[user], h)
			continue
		}
		if h != except {
			live = append(live, s)
		}
	}
	sort.Slice(live, func(i, j int) bool {
		if !live[i].rec.LoginAt.Equal(live[j].rec.LoginAt) {
			return live[i].rec.LoginAt.Before(live[j].rec.LoginAt)
		}
		return live[i].rec.Hash < live[j].rec.Hash
	})
	return live
}

// addUser records that hash is a session of user.
func (a *memAccount) addUser(user, hash string) {
	set := a.users[user]
	if set == nil {
		set = make(map[string]struct{})
		a.users[user] = set
	}
	set[hash] = struct{}{}
}

// drop deletes the session record of hash, and its user-index entry.
func (a *memAccount) drop(hash string) {
	if s := a.sessions[hash]; s != nil {
		if set := a.users[s.rec.User]; set != nil {
			delete(set, hash)
			if len(set) == 0 {
				delete(a.users, s.rec.User)
			}
		}
		a.order.Delete(s.order())
	}
	delete(a.sessions, hash)
}

// limitReached is the answer to a new session refused by the limit.
func limitReached(rec *session.Record, p policy.Policy, now time.Time) TouchResult {
	return Deadlines(rec, p, session.LimitReached, now, false)
}
