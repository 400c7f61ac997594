package resilience

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisACLFromEnv connects as an ACL user whose password comes from
// {env.*}; a wrong password fails closed with 503.
func TestRedisACLFromEnv(t *testing.T) {
	srv := testredis.Start(t)
	srv.CLI(t, "ACL", "SETUSER", "sg", "on", ">s3cret-pw", "~*", "&*", "+@all")
	t.Setenv("SG_TEST_REDIS_PASSWORD", "s3cret-pw")
	globals := redisGlobals([]string{srv.Addr()}, "username sg", "password {env.SG_TEST_REDIS_PASSWORD}", "timeout 500ms")
	g := gatewaytest.Start(t, globals, site, t0)
	tok := mint(t, g.Clock.Now(), "acl-1", "acme", nil)
	wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	if list := srv.CLI(t, "CLIENT", "LIST"); !strings.Contains(list, "user=sg") {
		t.Fatalf("no connection as user sg:\n%s", list)
	}

	t.Setenv("SG_TEST_REDIS_PASSWORD", "wrong")
	g.Load(t, globals+"\n", site) // a new pooled client with the new password
	// The old config may still answer a request or two (right password,
	// 200) while Caddy shuts it down; the new one must answer 503.
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := g.DoAfterReload(t, "GET", "/", tok)
		if r.StatusCode == 503 {
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			return
		}
		if r.StatusCode != 200 || time.Now().After(deadline) {
			t.Fatalf("wrong password: status %d, want 503", r.StatusCode)
		}
		g.Client.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
}
