package resilience

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testredis"
)

var historyLong = flag.Bool("history.long", false, "run the history checker's fault tests at their long size (also SESSIONGUARD_HISTORY_LONG=1)")

// histSize is how much a fault test of the history checker does.
type histSize struct {
	rounds, workers           int // fault injections; load goroutines
	accounts, whole, sessions int
}

func historySize() histSize {
	if *historyLong || os.Getenv("SESSIONGUARD_HISTORY_LONG") == "1" {
		return histSize{rounds: 12, workers: 6, accounts: 8, whole: 24, sessions: 32}
	}
	return histSize{rounds: 2, workers: 6, accounts: 6, whole: 4, sessions: 12}
}

// failoverReplicas makes a revoke wait for a replica (Redis WAIT): a
// revocation acknowledged before a failover survives it.
const failoverReplicas = "revoke_replicas 1"

// faultCase is one kind of fault: the topology it needs, with the store
// lines it adds, and how to inject it once (round of rounds) and heal it.
type faultCase struct {
	name     string
	cacheOff bool
	setup    func(t *testing.T) (addrs, extra []string, inject func(t *testing.T, r *histRun, round, rounds int))
}

// singleRedis is one redis-server with the fault inject does to it.
func singleRedis(inject func(t *testing.T, srv *testredis.Server, r *histRun, round int)) func(t *testing.T) ([]string, []string, func(*testing.T, *histRun, int, int)) {
	return func(t *testing.T) ([]string, []string, func(*testing.T, *histRun, int, int)) {
		srv := testredis.Start(t)
		return []string{srv.Addr()}, nil, func(t *testing.T, r *histRun, round, _ int) { inject(t, srv, r, round) }
	}
}

// faulted runs do between two instants recorded as a fault of kind on
// gateway (-1: Redis).
func faulted(r *histRun, kind string, gateway int, do func()) {
	f := histFault{kind: kind, gateway: gateway, start: time.Now()}
	do()
	f.end = time.Now()
	r.hist.fault(f)
}

func redisSigstop(t *testing.T, srv *testredis.Server, r *histRun, _ int) {
	pid := redisPid(t, srv)
	faulted(r, "SIGSTOP redis", -1, func() {
		signal(t, pid, syscall.SIGSTOP)
		time.Sleep(1200 * time.Millisecond) // past the store timeout and the cache lease's renewal
		signal(t, pid, syscall.SIGCONT)
	})
}

var faultCases = []faultCase{
	{name: "redis-sigstop", setup: singleRedis(redisSigstop)},
	{name: "redis-sigstop-cache-off", cacheOff: true, setup: singleRedis(redisSigstop)},
	{name: "sentinel-sigkill", setup: sentinelSigkill},
	{name: "cluster-failover", setup: clusterFailover},
	{name: "client-kill", setup: singleRedis(func(t *testing.T, srv *testredis.Server, r *histRun, _ int) {
		for _, typ := range []string{"normal", "pubsub"} {
			faulted(r, "CLIENT KILL TYPE "+typ, -1, func() { srv.CLI(t, "CLIENT", "KILL", "TYPE", typ) })
			time.Sleep(500 * time.Millisecond)
		}
	})},
	{name: "script-flush", setup: singleRedis(func(t *testing.T, srv *testredis.Server, r *histRun, _ int) {
		for range 4 {
			faulted(r, "SCRIPT FLUSH", -1, func() { srv.CLI(t, "SCRIPT", "FLUSH") })
			time.Sleep(250 * time.Millisecond)
		}
	})},
	{name: "gateway-reload", setup: singleRedis(func(t *testing.T, _ *testredis.Server, r *histRun, round int) {
		g := round % len(r.gws)
		faulted(r, "reload", g, func() { reload(t, r.gws[g]) })
	})},
	{name: "gateway-sigstop", setup: singleRedis(func(t *testing.T, srv *testredis.Server, r *histRun, round int) {
		g := 1 + round%2
		if round%2 == 1 {
			faulted(r, "SIGSTOP gateway inside its lease", g, func() { // revocations wait for it
				signal(t, r.gws[g].Pid, syscall.SIGSTOP)
				time.Sleep(400 * time.Millisecond)
				signal(t, r.gws[g].Pid, syscall.SIGCONT)
			})
			return
		}
		// past its 2s lease, and its subscription cut meanwhile: the
		// invalidations sent while it was stopped never reach it. A
		// session it holds (of the account the writer only patches) is
		// revoked meanwhile and asked for there.
		acct := r.accounts[len(r.accounts)-1]
		i := round / 2 % len(r.tokens[acct])
		r.send(context.Background(), r.client, g, acct, i, false)
		faulted(r, "SIGSTOP gateway past its lease", g, func() {
			signal(t, r.gws[g].Pid, syscall.SIGSTOP)
			stopped := time.Now()
			time.Sleep(1500 * time.Millisecond)
			srv.CLI(t, "CLIENT", "KILL", "TYPE", "pubsub")
			if w := r.admin(0, histWrite{account: acct, session: sid(acct, i)}); w.status == 200 {
				r.probe(acct, i) // answered by g when it resumes
			}
			time.Sleep(max(200*time.Millisecond, 3*time.Second-time.Since(stopped)))
			signal(t, r.gws[g].Pid, syscall.SIGCONT)
		})
	})},
}

// reload posts gw's own Caddyfile to its admin API's /load.
func reload(t *testing.T, gw *proc) {
	req, _ := http.NewRequest("POST", gw.Admin+"/load", bytes.NewReader(gw.Caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // reload although the config is the same
	resp, err := gw.Client.Do(req)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload: status %d", resp.StatusCode)
	}
}

// sentinelSigkill SIGKILLs the master and waits until every sentinel
// names the promoted replica; then it restarts the old master as the new
// one's replica (see sentinelTopo).
func sentinelSigkill(t *testing.T) ([]string, []string, func(*testing.T, *histRun, int, int)) {
	st := sentinelTopo{testredis.StartSentinel(t)}
	return st.addrs(), append(st.extra(), failoverReplicas), func(t *testing.T, r *histRun, _, _ int) {
		old := st.s.Master(t)
		faulted(r, "SIGKILL master, Sentinel failover", -1, func() {
			old.Stop(t)
			var m *testredis.Server
			waitUntil(t, 30*time.Second, "a sentinel to name the replica", func() bool { m = st.s.Master(t); return m != old })
			st.promoted(t, "", old, m)
		})
		old.Restart(t)
		st.s.Master(t).CLI(t, "CONFIG", "SET", "repl-diskless-sync-delay", "0") // not 5s
		st.rejoin(t, old)
	}
}

// clusterFailover moves a shard's master to its replica with CLUSTER
// FAILOVER, one shard after another, and in the last round SIGKILLs a
// master and waits until the cluster promotes its replica.
func clusterFailover(t *testing.T) ([]string, []string, func(*testing.T, *histRun, int, int)) {
	ct := clusterTopo{testredis.StartCluster(t, testredis.WithReplicas())}
	return ct.addrs(), append(ct.extra(), failoverReplicas), func(t *testing.T, r *histRun, round, rounds int) {
		acct := r.accounts[round%len(r.accounts)]
		master, replica := ct.shard(t, acct)
		if round == rounds-1 {
			faulted(r, "SIGKILL cluster master", -1, func() {
				master.Stop(t)
				ct.promoted(t, acct, master, replica)
			})
			return
		}
		faulted(r, "CLUSTER FAILOVER", -1, func() {
			replica.CLI(t, "CLUSTER", "FAILOVER")
			ct.promoted(t, acct, master, replica)
		})
	}
}

// TestHistoryUnderFaults runs three gateway processes on one Redis
// topology under load while sessions and whole accounts are revoked and
// an account's idle timeout is shortened, and injects one kind of fault
// per sub-test; then it checks the whole history (history.check): no
// stale 200, no 401 the history does not explain, no answer but 200,
// 401 and 503 with Retry-After, and full recovery once healed.
func TestHistoryUnderFaults(t *testing.T) {
	size := historySize()
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) { runFaultCase(t, fc, size) })
	}
}

func runFaultCase(t *testing.T, fc faultCase, size histSize) {
	begin := time.Now()
	addrs, extra, inject := fc.setup(t)
	if fc.cacheOff {
		extra = append(extra, "cache off")
	}
	r := startHistRun(t, histGlobals(addrs, extra...), 3, size.accounts, size.whole, size.sessions)
	t.Logf("redis, gateways and sessions up in %v", time.Since(begin).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopLoad := r.load(ctx, size.workers)
	wctx, stopWriter := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.writer(wctx, 120*time.Millisecond); close(done) }()
	time.Sleep(time.Second)
	for round := range size.rounds {
		at := time.Now()
		inject(t, r, round, size.rounds)
		t.Logf("fault %d healed in %v", round, time.Since(at).Round(time.Millisecond))
		time.Sleep(time.Second)
	}
	stopWriter()
	<-done
	stopLoad()
	r.probes.Wait()
	r.recovered(t, 30*time.Second)
	reportHistory(t, fc.name, &r.hist)
}

// reportHistory logs the totals of a history and fails the test on
// every violation, or when too little happened to tell.
func reportHistory(t *testing.T, name string, h *history) {
	viol := h.check()
	byKind := map[string]int{}
	for i, v := range viol {
		byKind[v.kind]++
		if i < 20 {
			t.Error(v)
		}
	}
	byStatus, during := map[int]int{}, 0
	for _, q := range h.reqs {
		byStatus[q.status]++
		for _, f := range h.faults {
			if f.start.Before(q.end) && q.start.Before(f.end) {
				during++
				break
			}
		}
	}
	revokes, revoked := 0, 0
	for _, w := range h.writes {
		if w.idle == 0 {
			revokes++
			if w.status/100 == 2 {
				revoked++
			}
		}
	}
	kinds := map[string]int{}
	for _, f := range h.faults {
		kinds[f.kind]++
	}
	t.Logf("FIGURE history %s: %d requests %s, %d during faults; %d revokes (%d 2xx), %d writes; faults %v; violations %d %v",
		name, len(h.reqs), sortedCounts(byStatus), during, revokes, revoked, len(h.writes), kinds, len(viol), byKind)
	if byStatus[200] < 200 || byStatus[401] < 20 || revoked < 5 || len(h.faults) == 0 {
		t.Fatalf("too little happened to tell")
	}
}

// sortedCounts renders counts by status in order, "0" being no answer.
func sortedCounts(m map[int]int) string {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, " %d×%d", m[k], k)
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}
