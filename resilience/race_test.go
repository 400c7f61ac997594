package resilience

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRevokeRacesRequests revokes sessions through one Caddy process's
// admin API while another process serves their requests: no request that
// started after the revoke returned 2xx may succeed.
func TestRevokeRacesRequests(t *testing.T) {
	srv := testredis.Start(t)
	up := okUpstream(t)
	globals := redisGlobals([]string{srv.Addr()}, "timeout 500ms")
	a, b := startCaddy(t, globals, up), startCaddy(t, globals, up)
	const rounds, workers = 10, 4
	var total, after, wrong atomic.Int64
	for round := 0; round < rounds; round++ {
		acct := fmt.Sprintf("race-%d", round)
		tok := mint(t, time.Now().Add(-time.Second), "race-sess", acct, nil)
		wantCode(t, b.do(t, "GET", b.URL+"/", tok, nil), 200)
		var revokedAt atomic.Int64 // unix nanos when the revoke returned 2xx
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", b.URL+"/", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					start := time.Now().UnixNano()
					resp, err := b.Client.Do(req)
					if err != nil {
						t.Errorf("request: %v", err)
						return
					}
					resp.Body.Close()
					total.Add(1)
					if r := revokedAt.Load(); r != 0 && start > r {
						after.Add(1)
						if resp.StatusCode != 401 {
							wrong.Add(1)
						}
					}
				}
			}()
		}
		time.Sleep(30 * time.Millisecond)
		r := a.do(t, "POST", a.Admin+"/session_guard/accounts/"+acct+"/revoke", "", []byte(`{"scope":"all"}`))
		wantCode(t, r, 200)
		revokedAt.Store(time.Now().UnixNano())
		time.Sleep(30 * time.Millisecond)
		close(stop)
		wg.Wait()
	}
	t.Logf("FIGURE revoke-race: %d rounds, %d requests, %d started after a 2xx revoke, wrong answers %d", rounds, total.Load(), after.Load(), wrong.Load())
	if wrong.Load() != 0 {
		t.Fatalf("%d requests started after the revoke returned and still passed", wrong.Load())
	}
	if after.Load() == 0 {
		t.Fatal("no request started after the revoke: the test proves nothing")
	}
}

// TestConcurrentTouchesKeepAbsolute sends many concurrent requests of one
// session near its absolute limit: no answer reports an expiry past the
// limit, and the session ends exactly at it.
func TestConcurrentTouchesKeepAbsolute(t *testing.T) {
	srv := testredis.Start(t)
	globals := redisGlobals([]string{srv.Addr()}, "timeout 500ms")
	globals = globals[:len(globals)-1] + "\tpreset short 10m 30m\n\t\tdefault_preset short\n\t}"
	g := gatewaytest.Start(t, globals, site, t0)
	tok := mint(t, g.Clock.Now(), "abs-1", "acme", nil)
	wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	for i := 0; i < 5; i++ { // keep it alive to 25m
		g.Clock.Advance(5 * time.Minute)
		wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.Do(t, "GET", "/", tok, nil)
			if r.StatusCode != 200 {
				bad.Add(1)
				return
			}
			// Session-Idle-Expires-In is the idle window on its own (it may
			// be longer than what is left); the session's expiry is
			// Session-Expires-In.
			if r.Header.Get("Session-Expiry-Reason") != "absolute" {
				t.Errorf("reason %q, want absolute", r.Header.Get("Session-Expiry-Reason"))
			}
			for _, h := range []string{"Session-Expires-In", "Session-Absolute-Expires-In"} {
				if v := headerInt(t, r, h); v > 300 {
					t.Errorf("%s = %d, past the absolute limit (300s left)", h, v)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d concurrent requests failed", bad.Load())
	}
	g.Clock.Advance(5 * time.Minute)
	r := g.Do(t, "GET", "/", tok, nil)
	wantError(t, r, 401, "session_expired")
	if r.Header.Get("Session-Expiry-Reason") != "absolute" {
		t.Fatalf("reason %q, want absolute", r.Header.Get("Session-Expiry-Reason"))
	}
}
