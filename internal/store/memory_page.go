package store

import (
	"context"
	"time"

	"github.com/google/btree"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// memOrder is a record's place in listing order: login time in
// milliseconds, then the escaped hash, as the Redis store's index.
type memOrder struct {
	ms   int64
	m    string
	hash string
}

func orderOf(login time.Time, hash string) memOrder {
	return memOrder{ms: login.UnixMilli(), m: member(hash), hash: hash}
}

func (o memOrder) before(p memOrder) bool {
	if o.ms != p.ms {
		return o.ms < p.ms
	}
	return o.m < p.m
}

func newOrder() *btree.BTreeG[memOrder] {
	return btree.NewG(16, memOrder.before)
}

func (s *memSession) order() memOrder { return orderOf(s.rec.LoginAt, s.rec.Hash) }

// put stores s as the record of its hash, replacing any older one, and
// keeps the listing order.
func (a *memAccount) put(s *memSession) {
	if old := a.sessions[s.rec.Hash]; old != nil {
		a.order.Delete(old.order())
	}
	a.sessions[s.rec.Hash] = s
	a.order.ReplaceOrInsert(s.order())
}

// Sessions implements Store: like the Redis store, a page examines at
// most page.Limit records after the cursor, live or not.
func (m *Memory) Sessions(ctx context.Context, account string, cfg *policy.Config, page Page) (SessionPage, error) {
	if err := ctx.Err(); err != nil {
		return SessionPage{}, err
	}
	cms, cm, start, err := decodeCursor(page.Cursor)
	if err != nil {
		return SessionPage{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := SessionPage{Sessions: []SessionInfo{}, Users: map[string]int{}}
	a := m.accounts[account]
	if a == nil {
		return out, nil
	}
	n, seen := page.limit(), 0
	var last memOrder
	visit := func(o memOrder) bool {
		if !start && o.ms == cms && o.m == cm {
			return true // the cursor itself
		}
		seen, last = seen+1, o
		s := a.sessions[o.hash]
		p := PolicyInForce(cfg, &s.rec, a.override)
		if s.rec.State(now, p) == session.Active {
			out.Sessions = append(out.Sessions, Info(&s.rec, p))
		}
		return seen < n
	}
	if start {
		a.order.Ascend(visit)
	} else {
		a.order.AscendGreaterOrEqual(memOrder{ms: cms, m: cm}, visit)
	}
	if seen == n {
		out.Next = encodeCursorMember(last.ms, last.m)
	}
	for _, in := range out.Sessions {
		if _, ok := out.Users[in.User]; !ok {
			out.Users[in.User] = len(a.liveOf(cfg, in.User, "", now))
		}
	}
	return out, nil
}
