package store

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// cacheTable holds the sessions a gateway may answer without Redis.
//
// Entries are never deleted to invalidate them; they are outdated by
// counters instead, so that invalidation and fills need no lock of
// their own:
//
//   - gens: one generation per stripe of accounts. An invalidation of
//     an account (any scope) bumps its stripe's generation.
//   - epoch: bumped when the whole cache must go (the subscription
//     dropped or the lease lapsed).
//
// A fill records the generation and epoch it read before it asked Redis;
// an entry answers only while both are still current. So an entry filled
// from a read that raced with an invalidation is born outdated: the
// classic fill/invalidate race cannot leave a stale entry.
type cacheTable struct {
	lru   *lru.Cache[cacheKey, *cacheEntry]
	seed  maphash.Seed
	gens  [cacheStripes]atomic.Uint64
	epoch atomic.Uint64
}

// cacheStripes is how many generations the accounts share: an
// invalidation outdates the cached sessions of about 1/cacheStripes of
// the accounts, which the next request of each refills.
const cacheStripes = 1024

type cacheKey struct{ account, hash string }

// cacheEntry is what an active Touch answer says about a session, in
// the milliseconds the Redis scripts work in.
type cacheEntry struct {
	user          string
	cfg           *policy.Config // the configuration it was computed under
	pi, pa        time.Duration  // policy in force
	last          int64          // recorded last activity
	idleAt, absAt int64          // deadlines
	retain        int64          // the record's retention
	gen, epoch    uint64         // read before the fill's Redis call
}

// cacheStamp is the generation and epoch a fill read before its Redis
// call.
type cacheStamp struct{ gen, epoch uint64 }

func newCacheTable(size int) *cacheTable {
	l, err := lru.New[cacheKey, *cacheEntry](size)
	if err != nil {
		panic(err) // size > 0 is checked by NewCached
	}
	return &cacheTable{lru: l, seed: maphash.MakeSeed()}
}

func (t *cacheTable) stripe(account string) *atomic.Uint64 {
	return &t.gens[maphash.String(t.seed, account)%cacheStripes]
}

// stamp is read before a fill's Redis call.
func (t *cacheTable) stamp(account string) cacheStamp {
	return cacheStamp{gen: t.stripe(account).Load(), epoch: t.epoch.Load()}
}

// invalidate outdates every entry of account.
func (t *cacheTable) invalidate(account string) { t.stripe(account).Add(1) }

// clear outdates every entry and frees them.
func (t *cacheTable) clear() {
	t.epoch.Add(1)
	t.lru.Purge()
}

// fill remembers an active answer of Redis to req, read under st.
func (t *cacheTable) fill(req *TouchRequest, res *TouchResult, st cacheStamp) {
	if res.Status != session.Active {
		t.lru.Remove(cacheKey{req.Account, req.SessionHash})
		return
	}
	idleAt, absAt := res.IdleExpiresAt.UnixMilli(), res.AbsoluteExpiresAt.UnixMilli()
	t.lru.Add(cacheKey{req.Account, req.SessionHash}, &cacheEntry{
		user: req.User, cfg: req.Policy,
		pi: res.Policy.Idle, pa: res.Policy.Absolute,
		last:   idleAt - res.Policy.Idle.Milliseconds(),
		idleAt: idleAt, absAt: absAt,
		retain: retainMillis(absAt, req.NotAfter),
		gen:    st.gen, epoch: st.epoch,
	})
}

// retainMillis is the retention the touch script records for a session
// whose absolute deadline is absAt under a token valid until notAfter.
func retainMillis(absAt int64, notAfter time.Time) int64 {
	return max(absAt, clampMillis(notAfter.UnixMilli())) + time.Minute.Milliseconds()
}

// answer returns what Redis would answer to req at a time in [now-err,
// now+err] without writing anything, or ok=false when it might answer
// differently or would write: then the request goes to Redis.
func (t *cacheTable) answer(req *TouchRequest, now time.Time, err time.Duration) (TouchResult, bool) {
	e, ok := t.lru.Get(cacheKey{req.Account, req.SessionHash})
	if !ok || e.epoch != t.epoch.Load() || e.gen != t.stripe(req.Account).Load() {
		return TouchResult{}, false
	}
	if e.cfg != req.Policy || e.user != req.User || e.retain != retainMillis(e.absAt, req.NotAfter) {
		return TouchResult{}, false // another user, configuration or retention: Redis decides or writes
	}
	nowMs := now.UnixMilli()
	hi := now.Add(err).UnixMilli()
	if hi >= e.absAt || hi >= e.idleAt {
		return TouchResult{}, false // expiring: Redis records the end
	}
	if !req.Passive {
		every := min(touchEveryMillis(req.TouchInterval), (e.pi / 4).Milliseconds())
		if hi > e.last && hi-e.last >= every {
			return TouchResult{}, false // this touch writes: Redis does it
		}
	}
	return TouchResult{
		Status:            session.Active,
		Now:               time.UnixMilli(nowMs),
		Policy:            policy.Policy{Idle: e.pi, Absolute: e.pa},
		IdleExpiresAt:     time.UnixMilli(e.idleAt),
		AbsoluteExpiresAt: time.UnixMilli(e.absAt),
	}, true
}

// touchEveryMillis is the touch interval as the scripts get it (see
// durMillis): whole milliseconds, a positive sub-millisecond interval
// counting as one, none as zero.
func touchEveryMillis(d time.Duration) int64 {
	d = max(d, 0)
	ms := d.Milliseconds()
	if ms == 0 && d > 0 {
		ms = 1
	}
	return ms
}
