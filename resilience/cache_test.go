package resilience

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testredis"
)

func signal(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("kill %d %v: %v", pid, sig, err)
	}
}

// evalshaCalls is how many EVALSHA Redis has run.
func evalshaCalls(t *testing.T, srv *testredis.Server) int64 {
	for _, line := range strings.Split(srv.CLI(t, "INFO", "commandstats"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:calls="); ok {
			n, err := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

func redisPid(t *testing.T, srv *testredis.Server) int {
	for _, line := range strings.Split(srv.CLI(t, "INFO", "server"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err == nil {
				return pid
			}
		}
	}
	t.Fatal("no process_id in INFO server")
	return 0
}

// TestCacheNoStaleAnswers: three gateways with the session cache on
// under load, while sessions are revoked and an account's idle timeout
// is shortened (apply immediately) through their admin APIs; meanwhile
// every gateway's subscription is killed, one gateway is stopped past
// its lease and resumed, another is stopped briefly a few times, and
// Redis is stopped and resumed. No request
// that started after a write returned 2xx may be answered as if the
// write had not happened.
func TestCacheNoStaleAnswers(t *testing.T) {
	srv := testredis.Start(t)
	cr := startHistRun(t, histGlobals([]string{srv.Addr()}), 3, 6, 0, 16)
	scripts := evalshaCalls(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopLoad := cr.load(ctx, 8)
	wctx, stopWriter := context.WithCancel(ctx)
	latc := make(chan []time.Duration, 1)
	go func() { latc <- cr.writer(wctx, 120*time.Millisecond) }()

	time.Sleep(1500 * time.Millisecond)
	srv.CLI(t, "CLIENT", "KILL", "TYPE", "pubsub")
	time.Sleep(1500 * time.Millisecond)
	signal(t, cr.gws[1].Pid, syscall.SIGSTOP) // past its 2s lease
	time.Sleep(3 * time.Second)
	signal(t, cr.gws[1].Pid, syscall.SIGCONT)
	time.Sleep(1500 * time.Millisecond)
	// short stops, inside the lease: revocations meanwhile must wait for
	// the stopped gateway's acknowledgement, and requests it received
	// meanwhile are answered when it resumes, alongside the invalidation
	for range 4 {
		signal(t, cr.gws[2].Pid, syscall.SIGSTOP)
		time.Sleep(400 * time.Millisecond)
		signal(t, cr.gws[2].Pid, syscall.SIGCONT)
		time.Sleep(300 * time.Millisecond)
	}
	rp := redisPid(t, srv)
	signal(t, rp, syscall.SIGSTOP)
	time.Sleep(time.Second)
	signal(t, rp, syscall.SIGCONT)
	time.Sleep(1500 * time.Millisecond)
	stopWriter()
	lat := <-latc
	stopLoad()
	cr.probes.Wait()
	scripts = evalshaCalls(t, srv) - scripts

	stale := cr.hist.stale()
	for i, s := range stale {
		if i == 20 {
			t.Errorf("... and %d more", len(stale)-20)
			break
		}
		t.Error(s)
	}
	ok, writes := 0, 0
	for _, r := range cr.hist.reqs {
		if r.status == 200 {
			ok++
		}
	}
	for _, w := range cr.hist.writes {
		if w.status/100 == 2 {
			writes++
		}
	}
	if ok < 1000 || writes < 20 || len(lat) < 10 {
		t.Fatalf("too little happened to tell: %d answers 200, %d writes 2xx, %d revocations", ok, writes, len(lat))
	}
	// Every request the cache did not answer ran a script, as did the
	// leases and the invalidations; the probes ask for revoked sessions,
	// which are never cached.
	if load := int64(len(cr.hist.reqs)) - cr.probed.Load(); (scripts-cr.probed.Load())*10 > load*9 {
		t.Fatalf("%d scripts for %d requests and %d probes: the cache answered almost nothing", scripts, load, cr.probed.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("FIGURE cache history: %d requests (%d answered 200), %d scripts run, %d writes 2xx of %d, stale answers %d; revocation latency p50 %s, max %s",
		len(cr.hist.reqs), ok, scripts, writes, len(cr.hist.writes), len(stale), lat[len(lat)/2], lat[len(lat)-1])
}
