package resilience

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// cacheRun is three gateway processes with the session cache on, a load
// of active and passive requests over a set of sessions, and the
// history of it all.
type cacheRun struct {
	srv      *testredis.Server
	gws      []*proc
	accounts []string
	tokens   map[string][]string // account -> tokens, one session each
	hist     history
	probes   sync.WaitGroup
	probed   atomic.Int64 // probe requests sent
}

func cacheGlobals(addr string) string {
	return "session_guard {\n\t\tstore redis {\n\t\t\taddress " + addr + "\n\t\t\ttimeout 500ms\n\t\t}\n\t\tapply immediately\n\t}"
}

func startCacheRun(t *testing.T, accounts, sessions int) *cacheRun {
	srv := testredis.Start(t)
	up := okUpstream(t)
	cr := &cacheRun{srv: srv, tokens: map[string][]string{}}
	for range 3 {
		cr.gws = append(cr.gws, startCaddy(t, cacheGlobals(srv.Addr()), up))
	}
	for a := range accounts {
		acct := fmt.Sprintf("acct-%d", a)
		cr.accounts = append(cr.accounts, acct)
		for s := range sessions {
			tok := mint(t, time.Now().Add(-time.Second), fmt.Sprintf("%s-s%d", acct, s), acct, nil)
			cr.tokens[acct] = append(cr.tokens[acct], tok)
			// every session exists before the first revocation: revoking
			// a session never seen leaves nothing to enforce
			wantCode(t, cr.gws[0].do(t, "GET", cr.gws[0].URL+"/", tok, nil), 200)
		}
	}
	return cr
}

// sid is the session hash of the i-th session of acct.
func sid(acct string, i int) string { return session.HashID(fmt.Sprintf("%s-s%d", acct, i)) }

// load sends requests from workers goroutines to random gateways and
// sessions, half of them passive, recording each, until ctx ends.
func (cr *cacheRun) load(ctx context.Context, workers int) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for ctx.Err() == nil {
				g := rng.Intn(len(cr.gws))
				acct := cr.accounts[rng.Intn(len(cr.accounts))]
				i := rng.Intn(len(cr.tokens[acct]))
				req, _ := http.NewRequestWithContext(ctx, "GET", cr.gws[g].URL+"/", nil)
				req.Header.Set("Authorization", "Bearer "+cr.tokens[acct][i])
				if rng.Intn(2) == 0 {
					req.Header.Set("Session-Passive", "1")
				}
				start := time.Now()
				resp, err := client.Do(req)
				end := time.Now()
				if err != nil {
					continue // canceled at the end, or a gateway stopped past the client timeout
				}
				resp.Body.Close()
				idle, _ := strconv.Atoi(resp.Header.Get("Session-Idle-Expires-In"))
				cr.hist.request(histRequest{gateway: g, account: acct, session: sid(acct, i), start: start, end: end, status: resp.StatusCode, idleIn: idle})
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// admin sends one write through gateway g's admin API and records it.
func (cr *cacheRun) admin(g int, w histWrite) histWrite {
	method, path, body := "POST", "/revoke", `{"scope":"all"}`
	switch {
	case w.idle > 0:
		method, path, body = "PATCH", "/policy", fmt.Sprintf(`{"idle_minutes":%d}`, w.idle/60)
	case w.session != "":
		body = fmt.Sprintf(`{"scope":"session","session":%q}`, w.session)
	}
	req, _ := http.NewRequest(method, cr.gws[g].Admin+"/session_guard/accounts/"+w.account+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w.start = time.Now()
	resp, err := cr.gws[g].Client.Do(req)
	w.end = time.Now()
	if err == nil {
		resp.Body.Close()
		w.status = resp.StatusCode
	}
	cr.hist.write(w)
	return w
}

// probe asks every gateway for session i of acct at once, passive and
// not, recording the answers (without waiting for them: a stopped
// gateway answers late).
func (cr *cacheRun) probe(acct string, i int) {
	for g, gw := range cr.gws {
		for _, passive := range []bool{false, true} {
			cr.probes.Add(1)
			cr.probed.Add(1)
			go func() {
				defer cr.probes.Done()
				req, _ := http.NewRequest("GET", gw.URL+"/", nil)
				req.Header.Set("Authorization", "Bearer "+cr.tokens[acct][i])
				if passive {
					req.Header.Set("Session-Passive", "1")
				}
				start := time.Now()
				resp, err := gw.Client.Do(req)
				if err != nil {
					return // a stopped gateway: the client gives up
				}
				resp.Body.Close()
				cr.hist.request(histRequest{gateway: g, account: acct, session: sid(acct, i), start: start, end: time.Now(), status: resp.StatusCode})
			}()
		}
	}
}

// writer revokes sessions one by one and shortens the idle override of
// the last account minute by minute, through random gateways, every
// period until ctx ends; it returns the latencies of the 2xx revocations.
func (cr *cacheRun) writer(ctx context.Context, period time.Duration) []time.Duration {
	rng := rand.New(rand.NewSource(99))
	patched := cr.accounts[len(cr.accounts)-1]
	idle := 15 * 60
	var lat []time.Duration
	for i := 0; ctx.Err() == nil; i++ {
		g := rng.Intn(len(cr.gws))
		if i%4 == 3 && idle > 6*60 {
			idle -= 60
			cr.admin(g, histWrite{account: patched, idle: idle})
		} else {
			acct := cr.accounts[rng.Intn(len(cr.accounts)-1)]
			i := rng.Intn(len(cr.tokens[acct]))
			w := cr.admin(g, histWrite{account: acct, session: sid(acct, i)})
			if w.status == 200 {
				lat = append(lat, w.end.Sub(w.start))
				cr.probe(acct, i) // right away, where a late invalidation would show
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(period):
		}
	}
	return lat
}

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
	cr := startCacheRun(t, 6, 16)
	scripts := evalshaCalls(t, cr.srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopLoad := cr.load(ctx, 8)
	wctx, stopWriter := context.WithCancel(ctx)
	latc := make(chan []time.Duration, 1)
	go func() { latc <- cr.writer(wctx, 120*time.Millisecond) }()

	time.Sleep(1500 * time.Millisecond)
	cr.srv.CLI(t, "CLIENT", "KILL", "TYPE", "pubsub")
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
	rp := redisPid(t, cr.srv)
	signal(t, rp, syscall.SIGSTOP)
	time.Sleep(time.Second)
	signal(t, rp, syscall.SIGCONT)
	time.Sleep(1500 * time.Millisecond)
	stopWriter()
	lat := <-latc
	stopLoad()
	cr.probes.Wait()
	scripts = evalshaCalls(t, cr.srv) - scripts

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
