package resilience

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/store/storetest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

var prefixSeq atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("t%d", prefixSeq.Add(1)) }

// TestSentinelConformance runs the store conformance suite through a
// go-redis universal client with MasterName, as the gateway builds it.
func TestSentinelConformance(t *testing.T) {
	s := testredis.StartSentinel(t)
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: s.Addrs(), MasterName: testredis.SentinelMaster, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	open := func(t *testing.T, now func() time.Time) store.Store {
		return store.NewRedis(c, store.RedisOptions{KeyPrefix: uniquePrefix(), Timeout: 2 * time.Second, Now: now})
	}
	storetest.Run(t, open)
	storetest.RunOpaque(t, open)
}

// TestClusterConformance runs the suite on a three-master Cluster: a
// script touching keys of two slots would fail with CROSSSLOT.
func TestClusterConformance(t *testing.T) {
	cl := testredis.StartCluster(t)
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	open := func(t *testing.T, now func() time.Time) store.Store {
		return store.NewRedis(c, store.RedisOptions{KeyPrefix: uniquePrefix(), Timeout: 2 * time.Second, Now: now})
	}
	storetest.Run(t, open)
	storetest.RunOpaque(t, open)
	// The suite's accounts spread over more than one node.
	used := 0
	for _, n := range cl.Nodes {
		if n.CLI(t, "DBSIZE") != "0" {
			used++
		}
	}
	if used < 2 {
		t.Fatalf("the suite's keys landed on %d node(s); the cluster test proves nothing", used)
	}
}

// TestGatewayOnSentinelAndCluster runs revocation and policy through a
// real Caddy configured with `master_name` / several addresses.
func TestGatewayOnSentinelAndCluster(t *testing.T) {
	for _, tc := range []struct {
		name    string
		globals func(t *testing.T) string
	}{
		{"sentinel", func(t *testing.T) string {
			s := testredis.StartSentinel(t)
			return redisGlobals(s.Addrs(), "master_name "+testredis.SentinelMaster, "timeout 500ms")
		}},
		{"cluster", func(t *testing.T) string {
			return redisGlobals(testredis.StartCluster(t).Addrs(), "timeout 500ms")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewaytest.Start(t, tc.globals(t), site, t0)
			// Policy: an account override reaches new sessions.
			for _, acct := range []string{"acme", "globex", "initech", "a{b}c", "x:*"} {
				r := g.AdminDo(t, "PATCH", "/session_guard/accounts/"+urlPath(acct)+"/policy", []byte(`{"idle_minutes":30,"absolute_minutes":120}`))
				wantCode(t, r, 200)
				tok := mint(t, g.Clock.Now(), "s-"+acct, acct, nil)
				r = g.Do(t, "GET", "/", tok, nil)
				wantCode(t, r, 200)
				if got := r.Header.Get("Session-Idle-Expires-In"); got != "1800" {
					t.Fatalf("%s: idle %s, want 1800 from the override", acct, got)
				}
				if got := r.Header.Get("Session-Absolute-Expires-In"); got != "7200" {
					t.Fatalf("%s: absolute %s, want 7200", acct, got)
				}
				// Revocation: revoke-all is enforced on the next request,
				// and the cutoff rejects a token of the account not seen yet.
				r = g.AdminDo(t, "POST", "/session_guard/accounts/"+urlPath(acct)+"/revoke", []byte(`{"scope":"all"}`))
				wantCode(t, r, 200)
				if !strings.Contains(string(r.Body), `"revoked":1`) {
					t.Fatalf("%s: revoke answered %s", acct, r.Body)
				}
				wantError(t, g.Do(t, "GET", "/", tok, nil), 401, "session_revoked")
				unseen := mint(t, g.Clock.Now().Add(-time.Second), "unseen-"+acct, acct, nil) // issued before the revoke
				wantError(t, g.Do(t, "GET", "/", unseen, nil), 401, "session_revoked")
				g.Clock.Advance(time.Second)
				wantCode(t, g.Do(t, "GET", "/", mint(t, g.Clock.Now(), "new-"+acct, acct, nil), nil), 200)
			}
		})
	}
}

func urlPath(s string) string {
	return strings.NewReplacer("{", "%7B", "}", "%7D", ":", "%3A", "*", "%2A").Replace(s)
}
