package resilience

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
)

// histRun is several gateway processes on one Redis topology, a load
// of active and passive requests over a set of sessions, a writer of
// revocations and policy changes, and the history of it all.
type histRun struct {
	gws      []*proc
	accounts []string // their sessions are revoked one by one; the last one's idle is shortened
	whole    []string // revoked as a whole, one after another
	tokens   map[string][]string
	client   *http.Client
	hist     history
	probes   sync.WaitGroup
	probed   atomic.Int64 // probe requests sent
}

// histGlobals renders the session_guard global options of a history
// run: a Redis store on addrs with extra lines in its block, and policy
// changes applied immediately.
func histGlobals(addrs []string, extra ...string) string {
	g := redisGlobals(addrs, append([]string{"timeout 500ms"}, extra...)...)
	return strings.TrimSuffix(g, "}") + "\tapply immediately\n\t}"
}

// startHistRun starts gateways processes with globals, and creates
// sessions sessions in each of accounts accounts and of whole accounts
// revoked as a whole, each answered 200 once.
func startHistRun(t *testing.T, globals string, gateways, accounts, whole, sessions int) *histRun {
	up := okUpstream(t)
	r := &histRun{tokens: map[string][]string{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	t.Cleanup(r.client.CloseIdleConnections)
	for range gateways {
		r.gws = append(r.gws, startCaddy(t, globals, up))
	}
	for a := range accounts + whole {
		acct := fmt.Sprintf("acct-%d", a)
		if a < accounts {
			r.accounts = append(r.accounts, acct)
		} else {
			acct = fmt.Sprintf("whole-%d", a-accounts)
			r.whole = append(r.whole, acct)
		}
		for s := range sessions {
			r.tokens[acct] = append(r.tokens[acct], mint(t, time.Now().Add(-time.Second), fmt.Sprintf("%s-s%d", acct, s), acct, nil))
			// every session exists before the first revocation: revoking
			// a session never seen leaves nothing to enforce
			if got := r.send(context.Background(), r.client, s%gateways, acct, s, false); got.status != 200 {
				t.Fatalf("creating a session: %+v", got)
			}
		}
	}
	return r
}

// sid is the session hash of the i-th session of acct.
func sid(acct string, i int) string { return session.HashID(fmt.Sprintf("%s-s%d", acct, i)) }

// send asks gateway g for session i of acct and records the request,
// unless ctx ended meanwhile.
func (r *histRun) send(ctx context.Context, client *http.Client, g int, acct string, i int, passive bool) histRequest {
	req, _ := http.NewRequestWithContext(ctx, "GET", r.gws[g].URL+"/", nil)
	req.Header.Set("Authorization", "Bearer "+r.tokens[acct][i])
	if passive {
		req.Header.Set("Session-Passive", "1")
	}
	h := histRequest{gateway: g, account: acct, session: sid(acct, i), start: time.Now()}
	resp, err := client.Do(req)
	h.end = time.Now()
	if ctx.Err() != nil {
		if err == nil {
			resp.Body.Close()
		}
		return h
	}
	if err != nil {
		h.err = err.Error()
	} else {
		resp.Body.Close()
		h.status, h.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After") != ""
		h.idleIn, _ = strconv.Atoi(resp.Header.Get("Session-Idle-Expires-In"))
		h.expiresIn, _ = strconv.Atoi(resp.Header.Get("Session-Expires-In"))
	}
	r.hist.request(h)
	return h
}

// load sends requests from workers goroutines to random gateways and
// sessions, half of them passive, until ctx ends.
func (r *histRun) load(ctx context.Context, workers int) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	all := append(append([]string(nil), r.accounts...), r.whole...)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for ctx.Err() == nil {
				acct := all[rng.Intn(len(all))]
				r.send(ctx, r.client, rng.Intn(len(r.gws)), acct, rng.Intn(len(r.tokens[acct])), rng.Intn(2) == 0)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// admin sends one write through gateway g's admin API and records it.
func (r *histRun) admin(g int, w histWrite) histWrite {
	method, path, body := "POST", "/revoke", `{"scope":"all"}`
	switch {
	case w.idle > 0:
		method, path, body = "PATCH", "/policy", fmt.Sprintf(`{"idle_minutes":%d}`, w.idle/60)
	case w.session != "":
		body = fmt.Sprintf(`{"scope":"session","session":%q}`, w.session)
	}
	req, _ := http.NewRequest(method, r.gws[g].Admin+"/session_guard/accounts/"+w.account+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w.start = time.Now()
	resp, err := r.gws[g].Client.Do(req)
	w.end = time.Now()
	if err == nil {
		resp.Body.Close()
		w.status = resp.StatusCode
	}
	r.hist.write(w)
	return w
}

// probe asks every gateway for session i of acct at once, passive and
// not, recording the answers (without waiting for them: a stopped
// gateway answers late).
func (r *histRun) probe(acct string, i int) {
	for g, gw := range r.gws {
		for _, passive := range []bool{false, true} {
			r.probes.Add(1)
			r.probed.Add(1)
			go func() {
				defer r.probes.Done()
				r.send(context.Background(), gw.Client, g, acct, i, passive)
			}()
		}
	}
}

// writer revokes sessions one by one, every eighth time a whole account
// while any is left, and shortens the idle override of the last account
// minute by minute, through random gateways, every period until ctx
// ends; it returns the latencies of the 2xx revocations of sessions.
func (r *histRun) writer(ctx context.Context, period time.Duration) []time.Duration {
	rng := rand.New(rand.NewSource(99))
	patched := r.accounts[len(r.accounts)-1]
	idle, whole := 15*60, 0
	var lat []time.Duration
	for i := 0; ctx.Err() == nil; i++ {
		g := rng.Intn(len(r.gws))
		switch {
		case i%4 == 3 && idle > 6*60:
			idle -= 60
			r.admin(g, histWrite{account: patched, idle: idle})
		case i%8 == 5 && whole < len(r.whole):
			if w := r.admin(g, histWrite{account: r.whole[whole]}); w.status == 200 {
				r.probe(w.account, rng.Intn(len(r.tokens[w.account])))
			}
			whole++
		default:
			acct := r.accounts[rng.Intn(len(r.accounts)-1)]
			i := rng.Intn(len(r.tokens[acct]))
			w := r.admin(g, histWrite{account: acct, session: sid(acct, i)})
			if w.status == 200 {
				lat = append(lat, w.end.Sub(w.start))
				r.probe(acct, i) // right away, where a late invalidation would show
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(period):
		}
	}
	return lat
}

// recovered waits until every gateway answers every session with 200 or
// 401 again, marks the history healed, and asks once more: from then on
// a 503 is a violation.
func (r *histRun) recovered(t *testing.T, timeout time.Duration) {
	t.Helper()
	all := append(append([]string(nil), r.accounts...), r.whole...)
	round := func() bool {
		up := true
		for g := range r.gws {
			for _, acct := range all {
				for i := range r.tokens[acct] {
					if s := r.send(context.Background(), r.client, g, acct, i, true).status; s != 200 && s != 401 {
						up = false
					}
				}
			}
		}
		return up
	}
	waitUntil(t, timeout, "every gateway to answer every session with 200 or 401", round)
	r.hist.mu.Lock()
	r.hist.healed = time.Now()
	r.hist.mu.Unlock()
	round()
}
