package store

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// Memory is the embedded in-memory store, for a single gateway instance.
// Its state lives as long as the value; the Caddy app keeps one across
// config reloads.
type Memory struct {
	now func() time.Time

	mu       sync.Mutex
	accounts map[string]*memAccount
	seq      uint64
	opaque   map[string]string // bound opaque session hash -> account
	secrets  map[string][]byte
	idx      memIndex       // SubjectIndex and OnceStore (memory_index.go)
	outbox   *events.Memory // lifecycle events (memory_events.go); nil: none
}

type memAccount struct {
	sessions   map[string]*memSession
	order      *btree.BTreeG[memOrder]        // every record, in listing order (memory_page.go)
	users      map[string]map[string]struct{} // user -> session hashes (memory_limit.go)
	override   policy.Override
	cutoff     time.Time
	userCutoff map[string]memCutoff
	audit      []Event // ring, oldest first once full
	auditNext  int
}

type memSession struct {
	rec    session.Record
	retain time.Time
}

type memCutoff struct {
	at, until time.Time
}

// NewMemory returns an empty memory store whose clock is now (time.Now
// when nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, accounts: make(map[string]*memAccount), opaque: make(map[string]string), secrets: make(map[string][]byte)}
}

func (m *Memory) account(name string) *memAccount {
	a := m.accounts[name]
	if a == nil {
		a = &memAccount{sessions: make(map[string]*memSession), order: newOrder(), users: make(map[string]map[string]struct{}), userCutoff: make(map[string]memCutoff)}
		m.accounts[name] = a
	}
	return a
}

// Touch implements Store.
func (m *Memory) Touch(ctx context.Context, req *TouchRequest) (TouchResult, error) {
	if err := ctx.Err(); err != nil {
		return TouchResult{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.account(req.Account)
	s := a.sessions[req.SessionHash]
	if s != nil && !now.Before(s.retain) {
		m.settle(s, PolicyInForce(req.Policy, &s.rec, a.override), now)
		a.drop(req.SessionHash)
		s = nil
	}
	if s != nil {
		p := PolicyInForce(req.Policy, &s.rec, a.override)
		if st := s.rec.State(now, p); st != session.Active && s.rec.Restarts(st, p, req.IssuedAt, req.LoginAt) {
			m.settle(s, p, now) // the old generation's expiry event
			s = nil             // a new generation, created below
		}
	}
	if s != nil && s.rec.Ended == session.Active && s.rec.User != req.User {
		return TouchResult{Status: session.WrongUser, Now: now, IdleExpiresAt: now, AbsoluteExpiresAt: now}, nil
	}
	created := false
	var evicted []string
	if s == nil {
		p := req.Policy.Effective(a.override, req.Claimed)
		rec := session.New(req.SessionHash, req.LoginAt, now, p)
		if session.Before(rec.LoginAt, a.cutoff) || session.Before(rec.LoginAt, a.userCutoffAt(req.User, now)) {
			res := Deadlines(rec, p, session.Revoked, now, false)
			return res, nil
		}
		var ok bool
		if evicted, ok = a.admit(req.Policy, req.User, req.SessionHash, now); !ok {
			return limitReached(rec, p, now), nil
		}
		rec.Account, rec.User, rec.Role, rec.Name, rec.Email = req.Account, req.User, req.Role, req.Name, req.Email
		rec.IP, rec.UserAgent, rec.Claimed = req.IP, req.UserAgent, req.Claimed
		s = &memSession{rec: *rec}
		a.put(s)
		a.addUser(req.User, req.SessionHash)
		created = true
		m.emitEvicted(a, evicted, now)
		if st := s.rec.State(now, p); st != session.Active {
			s.rec.Ended = st // born past its deadline (an old login): never lived, no events
		} else {
			m.emit(events.Created, &s.rec, "", now)
		}
	}
	p := PolicyInForce(req.Policy, &s.rec, a.override)
	m.settle(s, p, now) // an expiry this request observes: its event
	st := s.rec.Touch(now, p, req.Passive, req.TouchInterval)
	s.retain = Retention(s.rec.AbsoluteExpiresAt(p), req.NotAfter)
	res := Deadlines(&s.rec, p, st, now, created)
	res.Evicted = evicted
	return res, nil
}

// Lookup implements OpaqueStore.
func (m *Memory) Lookup(ctx context.Context, req *TouchRequest) (OpaqueResult, error) {
	if err := ctx.Err(); err != nil {
		return OpaqueResult{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookup(req, now), nil
}

// Bind implements OpaqueStore.
func (m *Memory) Bind(ctx context.Context, req *TouchRequest) (OpaqueResult, error) {
	if err := ctx.Err(); err != nil {
		return OpaqueResult{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bind(req, now), nil
}

// lookup is Lookup with m.mu held.
func (m *Memory) lookup(req *TouchRequest, now time.Time) OpaqueResult {
	acct, ok := m.opaque[req.SessionHash]
	var s *memSession
	var a *memAccount
	if ok {
		if a = m.accounts[acct]; a != nil {
			s = a.sessions[req.SessionHash]
		}
	}
	if s == nil || !now.Before(s.retain) {
		if s != nil {
			m.settle(s, PolicyInForce(req.Policy, &s.rec, a.override), now)
			a.drop(req.SessionHash)
		}
		delete(m.opaque, req.SessionHash)
		return OpaqueResult{TouchResult: TouchResult{Status: session.Unbound, Now: now}}
	}
	p := PolicyInForce(req.Policy, &s.rec, a.override)
	m.settle(s, p, now)
	st := s.rec.Touch(now, p, req.Passive, req.TouchInterval)
	s.retain = Retention(s.rec.AbsoluteExpiresAt(p), time.Time{})
	return opaqueResult(Deadlines(&s.rec, p, st, now, false), &s.rec)
}

// bind is Bind with m.mu held.
func (m *Memory) bind(req *TouchRequest, now time.Time) OpaqueResult {
	a := m.account(req.Account)
	p := req.Policy.Effective(a.override, policy.Claimed{})
	rec := session.New(req.SessionHash, now, now, p)
	evicted, ok := a.admit(req.Policy, req.User, req.SessionHash, now)
	if !ok {
		return OpaqueResult{TouchResult: limitReached(rec, p, now)}
	}
	rec.Account, rec.User, rec.Role, rec.Name, rec.Email = req.Account, req.User, req.Role, req.Name, req.Email
	rec.IP, rec.UserAgent = req.IP, req.UserAgent
	a.drop(req.SessionHash)
	a.put(&memSession{rec: *rec, retain: Retention(rec.AbsoluteExpiresAt(p), time.Time{})})
	a.addUser(req.User, req.SessionHash)
	m.opaque[req.SessionHash] = req.Account
	m.emitEvicted(a, evicted, now)
	m.emit(events.Created, rec, "", now)
	res := opaqueResult(Deadlines(rec, p, session.Active, now, true), rec)
	res.Evicted = evicted
	return res
}

// opaqueResult is res with the session's account and user from rec.
func opaqueResult(res TouchResult, rec *session.Record) OpaqueResult {
	return OpaqueResult{TouchResult: res, Account: rec.Account, User: rec.User, Role: rec.Role, Name: rec.Name, Email: rec.Email}
}

// Secret implements SecretStore.
func (m *Memory) Secret(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.secrets[name]; ok {
		return append([]byte(nil), v...), nil
	}
	m.secrets[name] = append([]byte(nil), fresh...)
	return append([]byte(nil), fresh...), nil
}

func (a *memAccount) userCutoffAt(user string, now time.Time) time.Time {
	c, ok := a.userCutoff[user]
	if !ok {
		return time.Time{}
	}
	if !now.Before(c.until) {
		delete(a.userCutoff, user)
		return time.Time{}
	}
	return c.at
}

// Revoke implements Store.
func (m *Memory) Revoke(ctx context.Context, req RevokeRequest) (int, error) {
	if err := checkRevoke(ctx, &req); err != nil {
		return 0, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.account(req.Account)
	pick := func() string {
		for _, h := range req.Sessions {
			if _, ok := a.sessions[h]; ok {
				return h
			}
		}
		return ""
	}
	var target, keep string
	switch req.Scope {
	case ScopeSession:
		if target = pick(); target == "" {
			return 0, nil
		}
	case ScopeOthers:
		keep = pick()
	}
	n := 0
	for h, s := range a.sessions {
		switch req.Scope {
		case ScopeSession:
			if h != target {
				continue
			}
		case ScopeUser:
			if s.rec.User != req.User {
				continue
			}
		case ScopeOthers:
			if h == keep {
				continue
			}
		}
		p := PolicyInForce(req.Policy, &s.rec, a.override)
		if s.rec.State(now, p) == session.Active {
			n++
		}
		m.revoke(s, p, req.By, now)
	}
	until := now.Add(req.Policy.Bounds.Absolute.Max)
	switch req.Scope {
	case ScopeAll, ScopeOthers:
		if now.After(a.cutoff) {
			a.cutoff = now
		}
	case ScopeUser:
		a.userCutoff[req.User] = memCutoff{at: now, until: until}
	}
	return n, nil
}

// Override implements Store.
func (m *Memory) Override(ctx context.Context, account string) (policy.Override, error) {
	if err := ctx.Err(); err != nil {
		return policy.Override{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.accounts[account]; a != nil {
		return copyOverride(a.override), nil
	}
	return policy.Override{}, nil
}

// SetOverride implements Store.
func (m *Memory) SetOverride(ctx context.Context, account string, ov policy.Override) (policy.Override, error) {
	if err := ctx.Err(); err != nil {
		return policy.Override{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.account(account)
	old := a.override
	a.override = copyOverride(ov)
	if m.outbox != nil && !sameOverride(old, ov) {
		m.outbox.Append(events.Event{Type: events.PolicyUpdate, Time: m.now(), Account: account})
	}
	return old, nil
}

func copyOverride(ov policy.Override) policy.Override {
	var out policy.Override
	if ov.Idle != nil {
		d := *ov.Idle
		out.Idle = &d
	}
	if ov.Absolute != nil {
		d := *ov.Absolute
		out.Absolute = &d
	}
	if ov.MaxSessions != nil {
		n := *ov.MaxSessions
		out.MaxSessions = &n
	}
	if ov.OnLimit != nil {
		o := *ov.OnLimit
		out.OnLimit = &o
	}
	return out
}

// AppendAudit implements Store.
func (m *Memory) AppendAudit(ctx context.Context, account string, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.account(account)
	m.seq++
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	ev.Account = account
	ev.ID = strconv.FormatInt(ev.Time.UnixMilli(), 10) + "-" + strconv.FormatUint(m.seq, 10)
	if len(a.audit) < AuditCap {
		a.audit = append(a.audit, ev)
		return nil
	}
	a.audit[a.auditNext] = ev
	a.auditNext = (a.auditNext + 1) % AuditCap
	return nil
}

// Audit implements Store.
func (m *Memory) Audit(ctx context.Context, account string, limit int) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Event{}
	a := m.accounts[account]
	if a == nil {
		return out, nil
	}
	n := len(a.audit)
	for i := 0; i < n && (limit <= 0 || len(out) < limit); i++ {
		// newest is just before auditNext (or at the end while filling)
		idx := (a.auditNext - 1 - i + 2*n) % n
		if n < AuditCap {
			idx = n - 1 - i
		}
		out = append(out, a.audit[idx])
	}
	return out, nil
}

// Ping implements Store; the memory store is always reachable.
func (m *Memory) Ping(ctx context.Context) error { return ctx.Err() }

// Prune drops every record whose retention has passed and every
// expired cutoff, so that memory does not grow without bound. The Caddy
// app runs it periodically.
func (m *Memory) Prune() (removed int) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, a := range m.accounts {
		for h, s := range a.sessions {
			if !now.Before(s.retain) {
				m.settle(s, s.rec.Policy, now) // the sweep's fallback
				a.drop(h)
				removed++
			}
		}
		for u, c := range a.userCutoff {
			if !now.Before(c.until) {
				delete(a.userCutoff, u)
			}
		}
		if len(a.sessions) == 0 && len(a.userCutoff) == 0 && a.override.IsZero() && len(a.audit) == 0 && a.cutoff.IsZero() {
			delete(m.accounts, name)
		}
	}
	for h, acct := range m.opaque {
		if a := m.accounts[acct]; a == nil || a.sessions[h] == nil {
			delete(m.opaque, h)
		}
	}
	return removed
}

// Run prunes every interval until ctx is done.
func (m *Memory) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Prune()
		}
	}
}

// Info turns a record into a listing entry under policy p.
func Info(rec *session.Record, p policy.Policy) SessionInfo {
	return SessionInfo{
		Hash: rec.Hash, User: rec.User, Name: rec.Name, Email: rec.Email, Role: rec.Role,
		CreatedAt: rec.LoginAt, LastSeenAt: rec.LastSeen,
		IdleExpiresAt: rec.IdleExpiresAt(p), AbsoluteExpiresAt: rec.AbsoluteExpiresAt(p),
		IP: rec.IP, UserAgent: rec.UserAgent,
	}
}

// SortSessions puts sessions in listing order: login time in
// milliseconds, oldest first, then the escaped hash (the order of the
// Redis store's index, which cursors rely on).
func SortSessions(s []SessionInfo) {
	sort.Slice(s, func(i, j int) bool {
		return orderOf(s[i].CreatedAt, s[i].Hash).before(orderOf(s[j].CreatedAt, s[j].Hash))
	})
}

var (
	_ Store       = (*Memory)(nil)
	_ SecretStore = (*Memory)(nil)
	_ OpaqueStore = (*Memory)(nil)
)
