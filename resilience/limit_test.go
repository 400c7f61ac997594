package resilience

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestSessionLimitAcrossGateways fires N new sessions of one user at
// once, alternately at two Caddy processes on one Redis, under a limit
// of 3. Deny: exactly 3 get 200, the rest 403 session_limit_reached.
// Evict: all get 200 and exactly N-3 are evicted, each of which is then
// 401 session_revoked on both gateways. Meanwhile a sampler lists the
// account's live sessions again and again: never more than 3.
func TestSessionLimitAcrossGateways(t *testing.T) {
	const n, limit = 40, 3
	srv := testredis.Start(t)
	up := okUpstream(t)
	globals := redisGlobals([]string{srv.Addr()}, "timeout 2s")
	a, b := startCaddy(t, globals, up), startCaddy(t, globals, up)
	gws := []*proc{a, b}
	for _, mode := range []string{"deny", "evict_oldest"} {
		t.Run(mode, func(t *testing.T) {
			acct := "acme-" + mode
			body := fmt.Sprintf(`{"max_sessions_per_user":%d,"on_limit":%q}`, limit, mode)
			wantCode(t, a.do(t, "PATCH", a.Admin+"/session_guard/accounts/"+acct+"/policy", "", []byte(body)), 200)
			toks := make([]string, n)
			for i := range toks {
				toks[i] = mint(t, time.Now().Add(-time.Second), fmt.Sprintf("%s-%d", mode, i), acct, nil)
			}
			stop, maxLive := sampleLive(b, acct)
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range toks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i] = statusOf(gws[i%2], "/", toks[i])
				}()
			}
			wg.Wait()
			stop()
			byCode := map[int]int{}
			for _, c := range codes {
				byCode[c]++
			}
			live := liveCount(t, b, acct)
			t.Logf("FIGURE session limit %s: %d parallel new sessions on 2 gateways, answers %v, live after %d, most live seen %d", mode, n, byCode, live, maxLive())
			if live != limit || maxLive() > limit {
				t.Fatalf("%d live after, %d at most during; limit %d", live, maxLive(), limit)
			}
			if mode == "deny" {
				if byCode[200] != limit || byCode[403] != n-limit {
					t.Fatalf("answers %v, want %d x 200 and %d x 403", byCode, limit, n-limit)
				}
				return
			}
			if byCode[200] != n {
				t.Fatalf("answers %v, want %d x 200", byCode, n)
			}
			evicted := 0
			for _, tok := range toks {
				ra, rb := a.do(t, "GET", a.URL+"/", tok, nil), b.do(t, "GET", b.URL+"/", tok, nil)
				if ra.StatusCode != rb.StatusCode {
					t.Fatalf("gateways disagree: %d and %d", ra.StatusCode, rb.StatusCode)
				}
				if ra.StatusCode == 401 {
					wantError(t, ra, 401, "session_revoked")
					wantError(t, rb, 401, "session_revoked")
					evicted++
				}
			}
			if evicted != n-limit {
				t.Fatalf("%d sessions 401 after the burst, want %d", evicted, n-limit)
			}
		})
	}
}

// liveCount is the number of live sessions of acct in the admin listing.
func liveCount(t testing.TB, g *proc, acct string) int {
	r := g.do(t, "GET", g.Admin+"/session_guard/accounts/"+acct+"/sessions", "", nil)
	wantCode(t, r, 200)
	var v struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatal(err)
	}
	return len(v.Sessions)
}

// sampleLive lists acct's live sessions in a loop until stop; maxLive is
// the most it saw. Each listing is one atomic script, a consistent view.
func sampleLive(g *proc, acct string) (stop func(), maxLive func() int) {
	var most atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; i < 10000; i++ {
			select {
			case <-done:
				return
			default:
			}
			resp, err := g.Client.Get(g.Admin + "/session_guard/accounts/" + acct + "/sessions")
			if err != nil {
				continue
			}
			var v struct {
				Sessions []json.RawMessage `json:"sessions"`
			}
			if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&v) == nil && int64(len(v.Sessions)) > most.Load() {
				most.Store(int64(len(v.Sessions)))
			}
			resp.Body.Close()
		}
	}()
	return func() { close(done); <-finished }, func() int { return int(most.Load()) }
}

// statusOf sends GET path with tok to g and returns the status, or -1
// when the request failed; safe off the test goroutine.
func statusOf(g *proc, path, tok string) int {
	req, err := http.NewRequest("GET", g.URL+path, nil)
	if err != nil {
		return -1
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := g.Client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
