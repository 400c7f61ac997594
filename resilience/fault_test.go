package resilience

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// faultSite is site without keep-alive to the upstream (see
// newLoadClient).
var faultSite = strings.Replace(site, "reverse_proxy {UPSTREAM}", `reverse_proxy {UPSTREAM} {
		transport http {
			keepalive off
		}
	}`, 1)

// tokens mints n tokens of distinct sessions over a few accounts.
func tokens(t testing.TB, now time.Time, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = mint(t, now, fmt.Sprintf("load-%d", i), fmt.Sprintf("acct-%d", i%4), nil)
	}
	return out
}

// warm sends each token once and wants 200.
func warm(t testing.TB, g *gatewaytest.Gateway, toks []string) {
	t.Helper()
	for _, tok := range toks {
		wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	}
}

// goroutineBaseline returns the goroutine count, and a check that waits
// up to 5s for the count to come back to it (a few of slack for the
// runtime and idle HTTP connections) and reports the difference.
func goroutineBaseline(t *testing.T, g *gatewaytest.Gateway) func() int {
	g.Client.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	return func() int {
		t.Helper()
		g.Client.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for {
			after := runtime.NumGoroutine()
			if after <= before+3 {
				return 0
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after\n%s", before, after, buf)
				return after - before
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// onlyStatuses fails unless every response had one of the allowed codes,
// every 503 carried Retry-After and no transport error happened.
func onlyStatuses(t *testing.T, ta *tally, allowed ...int) {
	t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ok := map[int]bool{}
	for _, c := range allowed {
		ok[c] = true
	}
	for code, n := range ta.byStatus {
		if !ok[code] {
			t.Errorf("%d responses with status %d", n, code)
		}
	}
	if ta.bad503 > 0 {
		t.Errorf("%d 503 responses without Retry-After", ta.bad503)
	}
	if ta.transport > 0 {
		t.Errorf("%d transport errors: %q", ta.transport, ta.errs)
	}
}

func newLoadClient() *http.Client {
	// No keep-alive, so that the goroutine count measures the gateway,
	// not idle HTTP connections.
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// TestRedisKilledUnderLoad kills redis-server while requests flow: every
// answer is 200 or 503 with Retry-After (never 401: the store being down
// must not log anyone out), and once Redis is back traffic recovers by
// itself.
func TestRedisKilledUnderLoad(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 100ms"), faultSite, t0)
	toks := tokens(t, t0, 16)
	warm(t, g, toks)
	leaks := goroutineBaseline(t, g)

	ta := newTally()
	client := newLoadClient()
	stop := load(context.Background(), client, g.URL+"/", toks, 8, ta)
	time.Sleep(300 * time.Millisecond)
	srv.Stop(t)
	waitUntil(t, 5*time.Second, "503s while Redis is down", func() bool { return ta.count(503) >= 50 })
	srv.Restart(t) // data is lost: sessions start over, which is a 200
	ok := ta.count(200)
	waitUntil(t, 10*time.Second, "traffic to recover", func() bool { return ta.count(200) >= ok+50 })
	stop()
	client.CloseIdleConnections()

	t.Logf("FIGURE redis-killed: %s", ta)
	onlyStatuses(t, ta, 200, 503)
	for _, tok := range toks {
		wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	}
	if n := leaks(); n != 0 {
		t.Errorf("goroutine leak: %d", n)
	}
}

// TestScriptFlushUnderLoad flushes Redis's script cache repeatedly while
// requests flow: go-redis falls back from EVALSHA to EVAL, nothing fails.
func TestScriptFlushUnderLoad(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 500ms"), faultSite, t0)
	toks := tokens(t, t0, 16)
	warm(t, g, toks)
	ta := newTally()
	client := newLoadClient()
	stop := load(context.Background(), client, g.URL+"/", toks, 8, ta)
	for i := 0; i < 20; i++ {
		srv.CLI(t, "SCRIPT", "FLUSH")
		time.Sleep(25 * time.Millisecond)
	}
	stop()
	client.CloseIdleConnections()
	t.Logf("FIGURE script-flush: 20 flushes, %s", ta)
	onlyStatuses(t, ta, 200)
}

// TestSentinelFailoverUnderLoad forces a Sentinel failover while
// requests flow, with one revoked session among the load: answers are
// 200 or 503 with Retry-After, the revoked session never gets a 200, and
// traffic recovers by itself on the new master.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	s := testredis.StartSentinel(t)
	g := gatewaytest.Start(t, redisGlobals(s.Addrs(), "master_name "+testredis.SentinelMaster, "timeout 200ms"), faultSite, t0)
	toks := tokens(t, t0, 12)
	warm(t, g, toks)
	revoked := mint(t, t0, "revoked-1", "victim", nil)
	wantCode(t, g.Do(t, "GET", "/", revoked, nil), 200)
	wantCode(t, g.AdminDo(t, "POST", "/session_guard/accounts/victim/revoke", []byte(`{"scope":"all"}`)), 200)
	// Wait for the replica to have every write (what a failover can lose
	// is the subject of RELIABILITY.md, not of this test). Not WAIT from
	// a fresh connection: that returns at once, as that connection wrote
	// nothing; the replica's offset must reach the master's.
	testredis.WaitReplicated(t, s.Master(t), []*testredis.Server{s.Nodes[1]}, 5*time.Second)

	ta := newTally()
	client := newLoadClient()
	stop := load(context.Background(), client, g.URL+"/", toks, 6, ta)
	revTally := newTally()
	stopRev := load(context.Background(), client, g.URL+"/", []string{revoked}, 2, revTally)
	time.Sleep(300 * time.Millisecond)
	s.Failover(t)
	ok := ta.count(200)
	waitUntil(t, 15*time.Second, "traffic to recover on the new master", func() bool { return ta.count(200) >= ok+50 })
	stop()
	stopRev()
	client.CloseIdleConnections()

	t.Logf("FIGURE sentinel-failover: %s; revoked session: %s", ta, revTally)
	onlyStatuses(t, ta, 200, 503)
	if n := revTally.count(200); n != 0 {
		t.Errorf("the revoked session got %d answers 200 during the failover", n)
	}
	onlyStatuses(t, revTally, 401, 503)
	for _, tok := range toks {
		wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	}
	wantError(t, g.Do(t, "GET", "/", revoked, nil), 401, "session_revoked")
}

// TestPoolExhaustion runs with one pooled connection and Redis paused:
// concurrent requests wait at most about the store timeout and get 503
// with Retry-After; none hangs.
func TestPoolExhaustion(t *testing.T) {
	srv := testredis.Start(t)
	// cache off: the requests must reach the exhausted pool (with the
	// cache, the warmed sessions are answered from memory)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 100ms", "pool_size 1", "cache off"), faultSite, t0)
	toks := tokens(t, t0, 8)
	warm(t, g, toks)
	leaks := goroutineBaseline(t, g)

	srv.CLI(t, "CLIENT", "PAUSE", "1500", "ALL")
	const n = 64
	var wg sync.WaitGroup
	ta := newTally()
	var mu sync.Mutex
	var slowest time.Duration
	client := newLoadClient()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("GET", g.URL+"/", nil)
			req.Header.Set("Authorization", "Bearer "+toks[i%len(toks)])
			start := time.Now()
			resp, err := client.Do(req)
			d := time.Since(start)
			if err == nil {
				resp.Body.Close()
			}
			ta.add(resp, err)
			mu.Lock()
			slowest = max(slowest, d)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	client.CloseIdleConnections()
	t.Logf("FIGURE pool-exhaustion: %d concurrent requests, pool_size 1, Redis paused: %s; slowest %v", n, ta, slowest)
	onlyStatuses(t, ta, 503)
	if slowest > time.Second {
		t.Errorf("slowest request took %v with a 100ms store timeout", slowest)
	}
	srv.CLI(t, "CLIENT", "UNPAUSE")
	waitUntil(t, 5*time.Second, "recovery after unpause", func() bool {
		return g.Do(t, "GET", "/", toks[0], nil).StatusCode == 200
	})
	if n := leaks(); n != 0 {
		t.Errorf("goroutine leak: %d", n)
	}
}

// clientCount returns how many connections named sessionguard Redis has.
func clientCount(t testing.TB, srv *testredis.Server) int {
	n := 0
	for _, l := range strings.Split(srv.CLI(t, "CLIENT", "LIST"), "\n") {
		if strings.Contains(l, " name=sessionguard ") {
			n++
		}
	}
	return n
}

// TestReloadUnderLoad reloads the config 20 times through the admin
// API's /load while requests flow, then 20 times more with store
// settings that change on every reload, so that a new pooled Redis
// client replaces the old one each time. Neither kind of reload fails a
// request: the old client stays open for the old server's requests in
// flight (it was closed at once before, and 6 of 772 requests failed
// closed with "redis: client is closed"); the old clients are closed
// afterwards (CLIENT LIST back to at most the pool size).
//
// The store timeout is 1s, not the 100ms default: on a loaded 2-core CI
// machine under -race, a reload can stall the process for more than
// 300ms, and such a 503 (context deadline exceeded) would hide what
// this test is about. A closed client fails at once, whatever the
// timeout.
func TestReloadUnderLoad(t *testing.T) {
	srv := testredis.Start(t)
	const pool = 4
	globals := func(i int, storeChanges bool) string {
		timeout := 1000
		if storeChanges {
			timeout += i % 2 * 100
		}
		return strings.Replace(redisGlobals([]string{srv.Addr()}, fmt.Sprintf("timeout %dms", timeout), fmt.Sprintf("pool_size %d", pool)),
			"session_guard {", fmt.Sprintf("session_guard {\n\t\twarn_before %dm", 5+i%2), 1)
	}
	g := gatewaytest.Start(t, globals(0, false), faultSite, t0)
	toks := tokens(t, t0, 16)
	warm(t, g, toks)
	baseline := clientCount(t, srv)
	leaks := goroutineBaseline(t, g)

	for _, storeChanges := range []bool{false, true} {
		ta := newTally()
		// Keep-alive: without it Caddy resets a few new connections
		// accepted while a listener is handed over (measured: 16 resets
		// in 20 reloads), which is Caddy's own behaviour, not ours.
		client := &http.Client{Timeout: 5 * time.Second}
		stop := load(context.Background(), client, g.URL+"/", toks, 4, ta)
		for i := 1; i <= 20; i++ {
			r := g.AdminDo(t, "POST", "/load", g.Config(t, globals(i, storeChanges), faultSite), "Cache-Control", "must-revalidate")
			wantCode(t, r, 200)
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		stop()
		client.CloseIdleConnections()
		var after int
		waitUntil(t, 5*time.Second, "Redis clients back to the pool size", func() bool {
			after = clientCount(t, srv)
			return after <= pool
		})
		t.Logf("FIGURE reload (store settings change: %v): 20 reloads, %s; sessionguard Redis clients before %d, after %d (pool_size %d)",
			storeChanges, ta, baseline, after, pool)
		// Transport errors (EOF, reset) come from Caddy closing
		// connections of the old server during the handover; they are
		// reported in the figure and bounded, not hidden. Every HTTP
		// answer must be the gateway's correct one.
		ta.mu.Lock()
		resets, total := ta.transport, int(ta.total.Load())
		ta.transport = 0
		ta.mu.Unlock()
		if resets*20 > total {
			t.Errorf("%d of %d requests reset during reloads", resets, total)
		}
		onlyStatuses(t, ta, 200)
	}
	if n := leaks(); n != 0 {
		t.Errorf("goroutine leak: %d", n)
	}
}
