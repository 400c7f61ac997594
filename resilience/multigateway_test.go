package resilience

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestTwoGatewayProcesses runs two real Caddy processes on one Redis.
// The processes use real time, so nothing waits for an expiry: the idle
// and absolute clocks are compared across instances instead, and every
// revocation made through one instance's admin API must be enforced by
// the other on the very next request.
func TestTwoGatewayProcesses(t *testing.T) {
	srv := testredis.Start(t)
	up := okUpstream(t)
	globals := redisGlobals([]string{srv.Addr()}, "timeout 500ms")
	a, b := startCaddy(t, globals, up), startCaddy(t, globals, up)
	gws := []*proc{a, b}

	// Idle clock: a session touched on A is seen with the same deadlines
	// on B (passive, so B does not move it), and a touch on B moves it
	// for A.
	tok := mint(t, time.Now(), "idle-1", "acme", nil)
	r := a.do(t, "GET", a.URL+"/", tok, nil)
	wantCode(t, r, 200)
	absA := headerInt(t, r, "Session-Absolute-Expires-In")
	r = b.do(t, "GET", b.URL+"/", tok, nil, "Session-Passive", "1")
	wantCode(t, r, 200)
	if idle := headerInt(t, r, "Session-Idle-Expires-In"); idle < 898 || idle > 900 {
		t.Fatalf("B sees idle %d, want 898..900 (the session A created)", idle)
	}
	if abs := headerInt(t, r, "Session-Absolute-Expires-In"); abs > absA || abs < absA-2 {
		t.Fatalf("B sees absolute %d, A said %d", abs, absA)
	}
	r = b.do(t, "GET", b.URL+"/.session/status", tok, nil)
	wantCode(t, r, 200)

	// Revocation: N sessions, each revoked through one instance's admin
	// API (scopes session, user and all), then the very next request on
	// the other instance must get 401 session_revoked.
	const n = 30
	wrong := 0
	for i := 0; i < n; i++ {
		on, other := gws[i%2], gws[(i+1)%2]
		acct := fmt.Sprintf("acct-%d", i)
		sid := fmt.Sprintf("sess-%d", i)
		tok := mint(t, time.Now().Add(-time.Second), sid, acct, nil)
		wantCode(t, other.do(t, "GET", other.URL+"/", tok, nil), 200)
		body := []string{
			fmt.Sprintf(`{"scope":"session","session":%q}`, session.HashID(sid)),
			`{"scope":"user","user_id":"alice"}`,
			`{"scope":"all"}`,
		}[i%3]
		rr := on.do(t, "POST", on.Admin+"/session_guard/accounts/"+acct+"/revoke", "", []byte(body))
		wantCode(t, rr, 200)
		if r := other.do(t, "GET", other.URL+"/", tok, nil); r.StatusCode != 401 {
			wrong++
			t.Errorf("session %d: revoked on one instance, the other answered %d %s", i, r.StatusCode, r.Body)
		} else {
			wantError(t, r, 401, "session_revoked")
		}
	}
	t.Logf("FIGURE multi-gateway: %d revocations across 2 processes, wrong answers %d", n, wrong)
}
