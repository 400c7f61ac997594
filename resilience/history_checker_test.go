package resilience

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// A Jepsen-style history checker: the requests, the writes and the
// faults of a run, each with when it started and ended by the test's
// clock, and the properties the whole history must keep (check).

// histRequest is one proxied request.
type histRequest struct {
	gateway          int
	account, session string // session: the session's hash
	start, end       time.Time
	status           int  // 0: no answer (transport error)
	retryAfter       bool // the answer carried Retry-After
	idleIn           int  // Session-Idle-Expires-In of a 200, seconds
	expiresIn        int  // Session-Expires-In of a 200, seconds
	err              string
}

// histWrite is one revocation or policy change through an admin API.
// A revocation of session "" is of the whole account; idle > 0 makes it
// a PATCH of the account's idle override to idle seconds. status 0: no
// answer.
type histWrite struct {
	account, session string
	idle             int
	start, end       time.Time
	status           int
}

// histFault is one injected fault, from its injection until it was
// healed. gateway is the gateway process it hit, -1 for Redis.
type histFault struct {
	kind       string
	gateway    int
	start, end time.Time
}

// The kinds of violation check reports.
const (
	violStale      = "stale 200"       // a 200 contradicting a write that returned 2xx before the request started
	violLongIdle   = "idle too long"   // a 200 with an idle deadline longer than an override that had returned
	violUnexplain  = "unexplained 401" // a 401 neither a revocation started before the answer nor the expiry explains
	violBadAnswer  = "bad answer"      // an answer other than 200, 401 and 503 with Retry-After
	violNoAnswer   = "no answer"       // a transport error not explained by a fault of that gateway
	violUnrecovery = "not recovered"   // 503 after every fault was healed and the store recovered
)

type violation struct{ kind, msg string }

func (v violation) String() string { return v.kind + ": " + v.msg }

// faultSlack is how long after a gateway fault healed a transport error
// is still its effect (a reload closes connections as it hands over).
const faultSlack = time.Second

type history struct {
	mu     sync.Mutex
	reqs   []histRequest
	writes []histWrite
	faults []histFault
	// healed: from then on every answer must be 200 or 401 (zero: never).
	healed time.Time
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

func (h *history) fault(f histFault) {
	h.mu.Lock()
	h.faults = append(h.faults, f)
	h.mu.Unlock()
}

// check returns every violation in the history.
func (h *history) check() []violation {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.stale()
	oks := h.okBySession()
	for _, r := range h.reqs {
		if v, ok := h.answer(r, oks); !ok {
			out = append(out, v)
		}
	}
	return out
}

// okBySession returns the 200s of each account/session by start.
func (h *history) okBySession() map[string][]histRequest {
	oks := map[string][]histRequest{}
	for _, r := range h.reqs {
		if r.status == 200 {
			k := r.account + "/" + r.session
			oks[k] = append(oks[k], r)
		}
	}
	for _, rs := range oks {
		sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
	}
	return oks
}

// touchSlack is how much earlier than a 200 announced a session may
// end: activity is recorded at most once per touch interval (1s).
const touchSlack = time.Second

// expired reports whether r may have come after its session's end: the
// last 200 that started before r announced an expiry before r ended.
// A session no 200 was seen for is not known to be live.
func expired(r histRequest, oks map[string][]histRequest) bool {
	rs := oks[r.account+"/"+r.session]
	i := sort.Search(len(rs), func(i int) bool { return !rs[i].start.Before(r.start) })
	if i == 0 {
		return true
	}
	last := rs[i-1]
	return last.start.Add(time.Duration(last.expiresIn)*time.Second - touchSlack).Before(r.end)
}

// answer checks one request on its own: its status, a 401's cause, a
// transport error's cause.
func (h *history) answer(r histRequest, oks map[string][]histRequest) (violation, bool) {
	switch {
	case r.status == 401:
		if !h.revokeStarted(r) && !expired(r, oks) {
			return violation{violUnexplain, fmt.Sprintf("gateway %d answered 401 for %s/%s (live, no revocation had started)",
				r.gateway, r.account, r.session)}, false
		}
	case r.status == 0:
		if !h.gatewayFault(r) {
			return violation{violNoAnswer, fmt.Sprintf("gateway %d: %s", r.gateway, r.err)}, false
		}
	case r.status == 503 && r.retryAfter:
		if !h.healed.IsZero() && r.start.After(h.healed) {
			return violation{violUnrecovery, fmt.Sprintf("gateway %d answered 503 %s after every fault healed",
				r.gateway, r.start.Sub(h.healed))}, false
		}
	case r.status != 200:
		return violation{violBadAnswer, fmt.Sprintf("gateway %d answered %d (Retry-After %v)", r.gateway, r.status, r.retryAfter)}, false
	}
	return violation{}, true
}

// revokeStarted reports whether a revocation of r's session or account
// started before r's answer ended: whatever its answer, it may have
// taken effect.
func (h *history) revokeStarted(r histRequest) bool {
	for _, w := range h.writes {
		if w.idle == 0 && w.account == r.account && (w.session == "" || w.session == r.session) && w.start.Before(r.end) {
			return true
		}
	}
	return false
}

// gatewayFault reports whether a fault of r's gateway overlapped r.
func (h *history) gatewayFault(r histRequest) bool {
	for _, f := range h.faults {
		if f.gateway == r.gateway && f.start.Before(r.end) && r.start.Before(f.end.Add(faultSlack)) {
			return true
		}
	}
	return false
}

// stale returns every answer that contradicts a write which had returned
// 2xx before the request started: a 200 for a revoked session, or a 200
// whose idle deadline is longer than the last idle override applied.
// Overrides of one account must only ever shorten the idle timeout.
func (h *history) stale() []violation {
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
	var out []violation
	for _, r := range h.reqs {
		if r.status != 200 {
			continue
		}
		for _, k := range []string{r.account + "/" + r.session, r.account + "/"} {
			if at, ok := revokedAt[k]; ok && r.start.After(at) {
				out = append(out, violation{violStale, fmt.Sprintf("gateway %d answered 200 for %s, started %s after its revocation returned",
					r.gateway, k, r.start.Sub(at))})
			}
		}
		limit := 0
		for _, p := range patches[r.account] {
			if r.start.After(p.end) && (limit == 0 || p.idle < limit) {
				limit = p.idle
			}
		}
		if limit > 0 && r.idleIn > limit {
			out = append(out, violation{violLongIdle, fmt.Sprintf("gateway %d answered idle %ds for account %s, whose idle override of %ds had returned",
				r.gateway, r.idleIn, r.account, limit)})
		}
	}
	return out
}

// TestHistoryChecker feeds the checker hand-made histories: a clean one
// of every kind of answer it must accept, then the same with one
// violation of each kind added.
func TestHistoryChecker(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(g, from, to int, sess string) histRequest {
		return histRequest{gateway: g, account: "a", session: sess, start: at(from), end: at(to), status: 200, expiresIn: 900}
	}
	with := func(r histRequest, status int, retry bool) histRequest {
		r.status, r.retryAfter = status, retry
		return r
	}
	clean := func() *history {
		h := &history{healed: at(5000)}
		h.write(histWrite{account: "a", session: "s1", start: at(100), end: at(200), status: 200})
		h.write(histWrite{account: "a", session: "s2", start: at(100), end: at(200), status: 503}) // may or may not have applied
		h.write(histWrite{account: "b", start: at(300), end: at(400), status: 200})                // the whole account
		h.write(histWrite{account: "c", idle: 600, start: at(300), end: at(400), status: 200})
		h.fault(histFault{kind: "stop", gateway: 1, start: at(1000), end: at(2000)})
		for _, r := range []histRequest{
			ok(0, 0, 10, "s1"), ok(0, 0, 10, "s2"), ok(0, 0, 10, "s3"),
			ok(0, 150, 250, "s1"),                   // started before the revoke returned
			with(ok(1, 150, 250, "s1"), 401, false), // the revoke had started
			with(ok(0, 210, 220, "s1"), 401, false),
			ok(0, 300, 310, "s2"), with(ok(1, 310, 320, "s2"), 401, false), // either way after a 503 revoke
			{gateway: 0, account: "b", session: "x", start: at(10), end: at(20), status: 200, expiresIn: 900},
			{gateway: 0, account: "b", session: "x", start: at(350), end: at(360), status: 401},
			{gateway: 0, account: "c", session: "y", start: at(500), end: at(510), status: 200, idleIn: 600, expiresIn: 600},
			with(ok(0, 600, 700, "s3"), 503, true),
			{gateway: 1, account: "a", session: "s3", start: at(1500), end: at(1600), err: "connection reset"}, // gateway 1 stopped
			{gateway: 1, account: "a", session: "s3", start: at(2500), end: at(2600), err: "EOF"},              // within faultSlack
			with(ok(2, 900_020, 900_030, "s3"), 401, false),                                                    // expired: 15 min after its last 200
		} {
			h.request(r)
		}
		return h
	}
	if v := clean().check(); len(v) != 0 {
		t.Fatalf("a clean history: %v", v)
	}
	for _, tc := range []struct {
		kind string
		add  func(h *history)
	}{
		{violStale, func(h *history) { h.request(ok(2, 201, 300, "s1")) }},
		{violStale, func(h *history) {
			h.request(histRequest{gateway: 2, account: "b", session: "z", start: at(401), end: at(410), status: 200, expiresIn: 900})
		}},
		{violLongIdle, func(h *history) {
			h.request(histRequest{gateway: 1, account: "c", session: "y", start: at(401), end: at(410), status: 200, idleIn: 900, expiresIn: 900})
		}},
		{violUnexplain, func(h *history) { h.request(with(ok(0, 20, 99, "s1"), 401, false)) }},
		{violUnexplain, func(h *history) { h.request(with(ok(0, 500, 600, "s3"), 401, false)) }},
		{violBadAnswer, func(h *history) { h.request(with(ok(0, 500, 600, "s3"), 503, false)) }},
		{violBadAnswer, func(h *history) { h.request(with(ok(0, 500, 600, "s3"), 502, true)) }},
		{violNoAnswer, func(h *history) {
			h.request(histRequest{gateway: 0, account: "a", session: "s3", start: at(1500), end: at(1600), err: "connection reset"})
		}},
		{violNoAnswer, func(h *history) {
			h.request(histRequest{gateway: 1, account: "a", session: "s3", start: at(3100), end: at(3200), err: "EOF"})
		}},
		{violUnrecovery, func(h *history) { h.request(with(ok(0, 5001, 5100, "s3"), 503, true)) }},
	} {
		h := clean()
		tc.add(h)
		v := h.check()
		if len(v) != 1 || v[0].kind != tc.kind {
			t.Errorf("want one %q, got %v", tc.kind, v)
		}
	}
}
