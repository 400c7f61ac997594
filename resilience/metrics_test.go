package resilience

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// metricValue returns the value of the sample line of name with the
// given label set (e.g. `{outcome="allowed"}`, or "" for none), or -1.
func metricValue(body, name, labels string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestMetrics checks the caddy_session_guard_* metrics at the admin
// /metrics endpoint, across config reloads (which re-register them).
func TestMetrics(t *testing.T) {
	srv := testredis.Start(t)
	globals := redisGlobals([]string{srv.Addr()}, "timeout 500ms")
	g := gatewaytest.Start(t, globals, site, t0)
	scrape := func() string {
		r := g.AdminDo(t, "GET", "/metrics", nil)
		wantCode(t, r, 200)
		return string(r.Body)
	}
	base := scrape()
	get := func(body, name, labels string) float64 { return max(metricValue(body, name, labels), 0) }

	tok := mint(t, g.Clock.Now().Add(-1), "m-1", "acme", nil)
	for i := 0; i < 3; i++ {
		wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	}
	// The session endpoints are counted under their own endpoint label.
	ep := mint(t, g.Clock.Now().Add(-1), "m-2", "acme", nil)
	wantCode(t, g.Do(t, "GET", "/.session/status", ep, nil), 200)
	wantCode(t, g.Do(t, "POST", "/.session/keepalive", ep, nil), 200)
	wantCode(t, g.Do(t, "GET", "/.session/keepalive", ep, nil), 405)
	wantCode(t, g.Do(t, "GET", "/.session/account", ep, nil), 403) // a member: valid session, not an owner
	wantCode(t, g.Do(t, "DELETE", "/.session/account", ep, nil), 405)
	wantCode(t, g.Do(t, "POST", "/.session/logout", ep, nil), 200)
	wantError(t, g.Do(t, "GET", "/.session/status", ep, nil), 401, "session_revoked")
	wantCode(t, g.Do(t, "POST", "/.session/logout", "", nil), 401)
	// Reloads must neither panic nor fail on re-registration.
	for i := 0; i < 3; i++ {
		r := g.AdminDo(t, "POST", "/load", g.Config(t, globals, site), "Cache-Control", "must-revalidate")
		wantCode(t, r, 200)
	}
	wantCode(t, g.DoAfterReload(t, "GET", "/", ""), 401)
	wantCode(t, g.Do(t, "GET", "/", "not-a-token", nil), 401)
	wantCode(t, g.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"all"}`)), 200)
	wantError(t, g.Do(t, "GET", "/", tok, nil), 401, "session_revoked")
	srv.Stop(t)
	wantCode(t, g.Do(t, "GET", "/", tok, nil), 503)

	body := scrape()
	for _, c := range []struct {
		name, labels string
		delta        float64
	}{
		{"caddy_session_guard_decisions_total", `{endpoint="proxy",outcome="allowed"}`, 3},
		{"caddy_session_guard_decisions_total", `{endpoint="proxy",outcome="no_token"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="proxy",outcome="invalid_token"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="proxy",outcome="revoked"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="proxy",outcome="store_unavailable"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="status",outcome="allowed"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="status",outcome="revoked"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="keepalive",outcome="allowed"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="keepalive",outcome="invalid_request"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="account",outcome="allowed"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="account",outcome="invalid_request"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="logout",outcome="allowed"}`, 1},
		{"caddy_session_guard_decisions_total", `{endpoint="logout",outcome="no_token"}`, 1},
		{"caddy_session_guard_revocations_total", "", 2}, // the logout and the admin revoke
		{"caddy_session_guard_sessions_created_total", "", 2},
		{"caddy_session_guard_store_errors_total", `{op="touch"}`, 1},
		// proxy: 3 allowed, 1 revoked, 1 failed; endpoints: 4 allowed, 1 revoked
		{"caddy_session_guard_store_latency_seconds_count", `{op="touch"}`, 10},
	} {
		if d := get(body, c.name, c.labels) - get(base, c.name, c.labels); d != c.delta {
			t.Errorf("%s%s grew by %v, want %v", c.name, c.labels, d, c.delta)
		}
	}
	endpointLabel := regexp.MustCompile(`endpoint="([^"]*)"`)
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "caddy_session_guard_") && strings.Contains(l, "acme") {
			t.Errorf("high-cardinality label: %s", l)
		}
		if m := endpointLabel.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "caddy_session_guard_decisions_total") {
			switch m[1] {
			case "proxy", "status", "keepalive", "logout", "account":
			default:
				t.Errorf("endpoint label outside its fixed set: %s", l)
			}
		}
	}
}
