package caddymodule_test

import (
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessionguard/sessionguard/caddymodule"
	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// scrapeMetric returns the value of the sample name{labels} (labels ""
// for none) at the admin /metrics endpoint, or -1 when there is none.
func scrapeMetric(t *testing.T, g *gatewaytest.Gateway, name, labels string) float64 {
	t.Helper()
	r := g.AdminDo(t, "GET", "/metrics", nil)
	wantCode(t, r, 200)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`).FindSubmatch(r.Body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitLive waits until caddy_session_guard_live_sessions is want.
func waitLive(t *testing.T, g *gatewaytest.Gateway, want float64, what string) {
	t.Helper()
	var got float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = scrapeMetric(t, g, "caddy_session_guard_live_sessions", ""); got == want {
			return
		}
	}
	t.Fatalf("%s: live sessions = %v, want %v", what, got, want)
}

// trackerGoroutines counts the running live-session sweepers.
func trackerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "caddymodule.(*liveTracker).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func waitGoroutines(t *testing.T, want int, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if trackerGoroutines() == want {
			return
		}
	}
	t.Fatalf("%s: %d live-session sweepers running, want %d", what, trackerGoroutines(), want)
}

// TestLiveSessionsGauge: the per-instance gauge counts the sessions this
// gateway allowed, drops them on logout, on a revoked or expired
// decision, and, by the sweep on the injected clock, after idle expiry.
func TestLiveSessionsGauge(t *testing.T) {
	defer caddymodule.SetLiveSweepInterval(20 * time.Millisecond)()
	each(t, "", func(t *testing.T, e *env) {
		g := e.Gateway
		waitLive(t, g, 0, "fresh gateway")
		toks := map[string]string{}
		for _, sid := range []string{"s1", "s2", "s3", "s4"} {
			toks[sid] = e.mint(t, devtoken.Claims{Session: sid})
			wantCode(t, e.Do(t, "GET", "/", toks[sid], nil), 200)
		}
		wantCode(t, e.Do(t, "GET", "/.session/status", toks["s1"], nil), 200) // no new session
		waitLive(t, g, 4, "four sessions")

		wantCode(t, e.Do(t, "POST", "/.session/logout", toks["s1"], nil), 200)
		waitLive(t, g, 3, "after logout")

		// A revocation through the admin API is only seen here on the
		// session's next request.
		wantCode(t, g.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"session","session":"s2"}`)), 200)
		wantCode(t, e.Do(t, "GET", "/", toks["s2"], nil), 401)
		waitLive(t, g, 2, "after a revoked decision")

		// strict: idle 15m. s3 stays active, s4 goes idle.
		g.Clock.Advance(10 * time.Minute)
		wantCode(t, e.Do(t, "GET", "/", toks["s3"], nil), 200)
		g.Clock.Advance(6 * time.Minute)
		waitLive(t, g, 1, "after s4's idle expiry")
		g.Clock.Advance(10 * time.Minute)
		waitLive(t, g, 0, "after s3's idle expiry")

		// A new session counts again.
		tok := e.mint(t, devtoken.Claims{Session: "s5"})
		wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
		waitLive(t, g, 1, "new session")
		if v := scrapeMetric(t, g, "caddy_session_guard_decisions_total", `{endpoint="logout",outcome="allowed"}`); v < 1 {
			t.Fatalf("logout decisions = %v", v)
		}
	})
}

// TestLiveSessionsSweeperLifecycle: one sweeper per loaded config; a
// reload replaces it (and keeps the count), unloading stops it.
func TestLiveSessionsSweeperLifecycle(t *testing.T) {
	defer caddymodule.SetLiveSweepInterval(20 * time.Millisecond)()
	waitGoroutines(t, 0, "before the test")
	globals := "session_guard {\n\t\tstore memory\n\t}"
	g := gatewaytest.Start(t, globals, site, t0)
	e := &env{Gateway: g}
	waitGoroutines(t, 1, "after start")
	for _, sid := range []string{"a", "b"} {
		wantCode(t, e.Do(t, "GET", "/", e.mint(t, devtoken.Claims{Session: sid}), nil), 200)
	}
	waitLive(t, g, 2, "two sessions")
	for i := 0; i < 3; i++ {
		g.Load(t, globals, strings.Replace(site, "login_url /login", "login_url /login"+strconv.Itoa(i), 1))
		waitGoroutines(t, 1, "after a reload")
	}
	// The new config took the old one's sessions over; a sweep of the
	// new tracker still reports them.
	g.Clock.Advance(time.Minute)
	waitLive(t, g, 2, "after reloads")
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, 0, "after unloading the config")
}
