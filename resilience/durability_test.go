package resilience

import (
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestDurability kills redis-server with SIGKILL after a revocation and
// restarts it. With AOF (appendfsync everysec) the revocation survives;
// without persistence it is lost and the token's session starts over —
// which is why RELIABILITY.md asks for AOF.
func TestDurability(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		wantRevoked bool
	}{
		{"aof-everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, true},
		{"no-persistence", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testredis.Start(t, tc.args...)
			g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 500ms"), site, t0)
			tok := mint(t, g.Clock.Now().Add(-time.Second), "dur-1", "acme", nil)
			wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
			wantCode(t, g.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"all"}`)), 200)
			time.Sleep(1100 * time.Millisecond) // one everysec fsync period
			srv.Stop(t)
			srv.Restart(t)
			r := g.Do(t, "GET", "/", tok, nil)
			if tc.wantRevoked {
				wantError(t, r, 401, "session_revoked")
			} else {
				wantCode(t, r, 200)
			}
		})
	}
}
