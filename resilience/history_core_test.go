package resilience

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// A minimal history checker (issue 16): the requests and the writes of
// a run, each with when it started and ended by the test's clock, and
// the one property that matters for a cache — no answer to a request
// that started after a write returned 2xx contradicts that write.
// (Issue 15 builds the general checker; this core is meant to merge
// into it.)

// histRequest is one proxied request.
type histRequest struct {
	gateway          int
	account, session string // session: the session's hash
	start, end       time.Time
	status           int
	idleIn           int // Session-Idle-Expires-In of a 200, seconds
}

// histWrite is one revocation or policy change through an admin API.
// A revocation of session "" is of the whole account; idle > 0 makes it
// a PATCH of the account's idle override to idle seconds.
type histWrite struct {
	account, session string
	idle             int
	start, end       time.Time
	status           int
}

type history struct {
	mu     sync.Mutex
	reqs   []histRequest
	writes []histWrite
}

func (h *history) request(r histRequest) {
	h.mu.Lock()
	h.reqs = append(h.reqs, r)
	h.mu.Unlock()
}

func (h *history) write(w histWrite) {
	h.mu.Lock()
	h.writes = append(h.writes, w)
	h.mu.Unlock()
}

// stale returns every answer that contradicts a write which had returned
// 2xx before the request started: a 200 for a revoked session, or a 200
// whose idle deadline is longer than the last idle override applied.
// Overrides of one account must only ever shorten the idle timeout.
func (h *history) stale() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	revokedAt := map[string]time.Time{} // account/session or account/ -> earliest 2xx end
	type patch struct {
		end  time.Time
		idle int
	}
	patches := map[string][]patch{}
	for _, w := range h.writes {
		if w.status/100 != 2 {
			continue
		}
		if w.idle > 0 {
			patches[w.account] = append(patches[w.account], patch{w.end, w.idle})
			continue
		}
		k := w.account + "/" + w.session
		if at, ok := revokedAt[k]; !ok || w.end.Before(at) {
			revokedAt[k] = w.end
		}
	}
	for _, ps := range patches {
		sort.Slice(ps, func(i, j int) bool { return ps[i].end.Before(ps[j].end) })
	}
	var out []string
	for _, r := range h.reqs {
		if r.status != 200 {
			continue
		}
		for _, k := range []string{r.account + "/" + r.session, r.account + "/"} {
			if at, ok := revokedAt[k]; ok && r.start.After(at) {
				out = append(out, fmt.Sprintf("gateway %d answered 200 for %s, started %s after its revocation returned",
					r.gateway, k, r.start.Sub(at)))
			}
		}
		limit := 0
		for _, p := range patches[r.account] {
			if r.start.After(p.end) && (limit == 0 || p.idle < limit) {
				limit = p.idle
			}
		}
		if limit > 0 && r.idleIn > limit {
			out = append(out, fmt.Sprintf("gateway %d answered idle %ds for account %s, whose idle override of %ds had returned",
				r.gateway, r.idleIn, r.account, limit))
		}
	}
	return out
}
