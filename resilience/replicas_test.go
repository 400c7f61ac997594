package resilience

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// replicated is a Redis topology whose master can be killed and its
// replica promoted.
type replicated interface {
	// addrs and extra are the store block's addresses and options.
	addrs() []string
	extra() []string
	// shard returns the master and the replica serving acct's keys.
	shard(t *testing.T, acct string) (master, replica *testredis.Server)
	// promoted waits until replica serves acct's keys as master, after
	// master was killed.
	promoted(t *testing.T, acct string, master, replica *testredis.Server)
	// rejoin makes a restarted node a replica again, and waits until the
	// topology knows every replica.
	rejoin(t *testing.T, node *testredis.Server)
}

type sentinelTopo struct{ s *testredis.Sentinel }

func (st sentinelTopo) addrs() []string { return st.s.Addrs() }
func (sentinelTopo) extra() []string    { return []string{"master_name " + testredis.SentinelMaster} }

func (st sentinelTopo) shard(t *testing.T, _ string) (*testredis.Server, *testredis.Server) {
	m := st.s.Master(t)
	if m == st.s.Nodes[0] {
		return m, st.s.Nodes[1]
	}
	return m, st.s.Nodes[0]
}

func (st sentinelTopo) promoted(t *testing.T, _ string, _, replica *testredis.Server) {
	st.s.WaitMaster(t, replica.Addr(), 30*time.Second)
}

// rejoin: REPLICAOF the new master, as the sentinels would do once they
// next look at the node (up to some 20s later).
func (st sentinelTopo) rejoin(t *testing.T, node *testredis.Server) {
	host, port, _ := strings.Cut(st.s.MasterAddr(t), ":")
	node.CLI(t, "REPLICAOF", host, port)
	waitUntil(t, 30*time.Second, "the master to have its replica again", func() bool {
		return strings.Contains(st.s.Master(t).CLI(t, "INFO", "replication"), "connected_slaves:1")
	})
}

type clusterTopo struct{ c *testredis.Cluster }

// rejoin: a restarted node rejoins by itself (its nodes.conf survives),
// as a replica of the node that took its slots.
func (ct clusterTopo) rejoin(t *testing.T, _ *testredis.Server) {
	ct.c.WaitReplicasListed(t, 30*time.Second)
}

func (ct clusterTopo) addrs() []string { return ct.c.Addrs() }
func (clusterTopo) extra() []string    { return nil }

func (ct clusterTopo) shard(t *testing.T, acct string) (*testredis.Server, *testredis.Server) {
	slot := ct.c.Slot(t, "{"+acct+"}")
	return ct.c.MasterOf(t, slot), ct.c.ReplicaOf(t, slot)
}

func (ct clusterTopo) promoted(t *testing.T, acct string, master, replica *testredis.Server) {
	if p := ct.c.WaitPromoted(t, ct.c.Slot(t, "{"+acct+"}"), master, 30*time.Second); p != replica {
		t.Fatalf("promoted %s, want the replica %s", p.Addr(), replica.Addr())
	}
}

// failoverRun is a gateway (session cache off: every answer comes from
// Redis) on a replicated topology.
type failoverRun struct {
	topo replicated
	g    *gatewaytest.Gateway
	seq  int
}

func (fr *failoverRun) load(t *testing.T, extra ...string) {
	globals := redisGlobals(fr.topo.addrs(), append(append(fr.topo.extra(), "timeout 500ms", "cache off"), extra...)...)
	if fr.g == nil {
		fr.g = gatewaytest.Start(t, globals, site, t0)
		return
	}
	fr.g.Load(t, globals, site)
}

// session starts a live session in a new account and waits until it is
// on the account's replica.
func (fr *failoverRun) session(t *testing.T) (acct, tok string) {
	fr.seq++
	acct = fmt.Sprintf("fo-%d", fr.seq)
	tok = mint(t, fr.g.Clock.Now(), "fo-s-"+acct, acct, nil)
	wantCode(t, fr.g.Do(t, "GET", "/", tok, nil), 200)
	master, replica := fr.topo.shard(t, acct)
	testredis.WaitReplicated(t, master, []*testredis.Server{replica}, 10*time.Second)
	return acct, tok
}

func (fr *failoverRun) revoke(t *testing.T, acct string) *gatewaytest.Response {
	return fr.g.AdminDo(t, "POST", "/session_guard/accounts/"+acct+"/revoke", []byte(`{"scope":"all"}`))
}

// lag makes acct's replica miss every write from now on, until resume
// is called: it hangs (SIGSTOP), and the master drops its link to it,
// so that what the master writes next stays in its own backlog (a
// paused replica would still find in its socket buffer what the master
// had sent before it died).
func (fr *failoverRun) lag(t *testing.T, acct string) (resume func()) {
	master, replica := fr.topo.shard(t, acct)
	resume = replica.Pause(t)
	if n := master.CLI(t, "CLIENT", "KILL", "TYPE", "replica"); n != "1" {
		t.Fatalf("CLIENT KILL TYPE replica on the master: %s links, want 1", n)
	}
	return resume
}

// failover kills acct's master, resumes its replica if paused, waits
// for the promotion, and returns the killed node.
func (fr *failoverRun) failover(t *testing.T, acct string, resume func()) (killed *testredis.Server) {
	master, replica := fr.topo.shard(t, acct)
	start := time.Now()
	master.Stop(t) // SIGKILL
	if resume != nil {
		resume()
	}
	fr.topo.promoted(t, acct, master, replica)
	t.Logf("replica promoted %v after the kill", time.Since(start).Round(time.Millisecond))
	return master
}

// rejoin restarts a killed master (empty) and waits until it serves as
// the replica of the new one, so that revocations can be acknowledged
// again.
func (fr *failoverRun) rejoin(t *testing.T, killed *testredis.Server) {
	start := time.Now()
	defer func() { t.Logf("old master back as a replica in %v", time.Since(start).Round(time.Millisecond)) }()
	killed.Restart(t)
	fr.topo.rejoin(t, killed)
	var info string
	deadline := time.Now().Add(30 * time.Second)
	for info = killed.CLI(t, "INFO", "replication"); !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_link_status:up"); info = killed.CLI(t, "INFO", "replication") {
		if time.Now().After(deadline) {
			t.Fatalf("the old master did not rejoin as a replica within 30s:\n%s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answer is the gateway's first answer to tok that is not a 503 (the
// gateway follows the failover within a few seconds).
func (fr *failoverRun) answer(t *testing.T, tok string) *gatewaytest.Response {
	var r *gatewaytest.Response
	waitUntil(t, 20*time.Second, "the gateway to follow the failover", func() bool {
		r = fr.g.Do(t, "GET", "/", tok, nil)
		return r.StatusCode != 503
	})
	return r
}

// TestRedisRevocationSurvivesFailover: a revocation answered 2xx is
// still in force after the master is killed and its replica promoted,
// on Sentinel and on Cluster (default revoke_replicas: 1, as the
// topologies have replicas).
//
//   - prompt: the master is SIGKILLed right after the 2xx.
//   - lagging: the replica hangs (SIGSTOP, its link dropped) during the
//     revocation, the master is killed and the replica, which never got the revocation,
//     promoted. The revocation must not have answered 2xx (503 with
//     Retry-After, saying why); retried after the failover, it answers
//     2xx once the old master is back as a replica.
//   - control, revoke_replicas 0: the same lagging replica, and the
//     revocation answers 200 and is lost: the session passes again. This
//     is what the two cases above would show without the wait, and
//     proves that the fault injection loses what it should.
func TestRedisRevocationSurvivesFailover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) replicated
	}{
		{"sentinel", func(t *testing.T) replicated { return sentinelTopo{testredis.StartSentinel(t)} }},
		{"cluster", func(t *testing.T) replicated {
			return clusterTopo{testredis.StartCluster(t, testredis.WithReplicas())}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := &failoverRun{topo: tc.start(t)}
			fr.load(t)

			t.Log("prompt: kill the master right after the 2xx")
			acct, tok := fr.session(t)
			wantCode(t, fr.revoke(t, acct), 200)
			killed := fr.failover(t, acct, nil)
			wantError(t, fr.answer(t, tok), 401, "session_revoked")
			fr.rejoin(t, killed)

			t.Log("lagging: the replica hangs during the revocation")
			acct, tok = fr.session(t)
			resume := fr.lag(t, acct)
			r := fr.revoke(t, acct)
			wantNotReplicated(t, r)
			killed = fr.failover(t, acct, resume)
			// the promoted replica never got it: the client retries
			// (Retry-After), which needs a replica again
			fr.rejoin(t, killed)
			waitUntil(t, 10*time.Second, "the retried revocation to answer 200", func() bool {
				return fr.revoke(t, acct).StatusCode == 200
			})
			wantError(t, fr.answer(t, tok), 401, "session_revoked")

			t.Log("control: revoke_replicas 0 loses the revocation")
			fr.load(t, "revoke_replicas 0")
			acct, tok = fr.session(t)
			resume = fr.lag(t, acct)
			wantCode(t, fr.revoke(t, acct), 200)
			fr.failover(t, acct, resume)
			if r := fr.answer(t, tok); r.StatusCode != 200 {
				t.Fatalf("control: the revocation survived without waiting for the replica (%d %s): the fault injection did not lose it", r.StatusCode, r.Body)
			}
		})
	}
}

// wantNotReplicated checks the answer to a revocation that the replica
// did not acknowledge: 503 with Retry-After, saying so.
func wantNotReplicated(t *testing.T, r *gatewaytest.Response) {
	t.Helper()
	wantCode(t, r, 503)
	if r.Header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", r.Header)
	}
	if !strings.Contains(string(r.Body), "replicas") {
		t.Fatalf("503 does not say that the replicas did not acknowledge: %s", r.Body)
	}
}

// TestRevokeWithoutReplica503: on a Sentinel set whose replica hangs,
// every revocation path that answers 2xx answers 503 instead, quickly
// (store timeout plus revoke_replicas_timeout); once the replica is
// back, 200.
func TestRevokeWithoutReplica503(t *testing.T) {
	s := testredis.StartSentinel(t)
	g := gatewaytest.Start(t, redisGlobals(s.Addrs(), "master_name "+testredis.SentinelMaster,
		"timeout 300ms", "revoke_replicas_timeout 200ms", "cache off"), site, t0)
	tok := mint(t, g.Clock.Now(), "nr-1", "acme", nil)
	wantCode(t, g.Do(t, "GET", "/", tok, nil), 200)
	_, replica := sentinelTopo{s}.shard(t, "")
	resume := replica.Pause(t)
	for _, scope := range []string{`{"scope":"all"}`, `{"scope":"user","user_id":"alice"}`, `{"scope":"session","session":"nr-1"}`} {
		start := time.Now()
		wantNotReplicated(t, g.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(scope)))
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: answered after %v", scope, d)
		}
	}
	resume()
	waitUntil(t, 10*time.Second, "the revocation to answer 200 with the replica back", func() bool {
		return g.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"all"}`)).StatusCode == 200
	})
	wantError(t, g.Do(t, "GET", "/", tok, nil), 401, "session_revoked")
}
