package resilience

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/eventtest"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// eventsGlobals are Redis globals with 1-minute idle sessions and the
// events sent to rc, retried fast, reclaimed from a silent gateway after
// 1s, swept every 200ms.
func eventsGlobals(addr string, rc *eventtest.Receiver) string {
	g := redisGlobals([]string{addr}, "timeout 2s")
	return g[:len(g)-1] + `	bounds idle 1m 720h
		preset quick 1m 1h
		default_preset quick
		events {
			interval 200ms
			retry 100ms 400ms
			reclaim 1s
			webhook ` + rc.URL + ` {
				secret ` + rc.Secret + `
			}
		}
	}`
}

// TestEventsExactlyOnceAcrossGateways: two Caddy processes on one Redis
// run a scripted history — creations, requests on the other gateway,
// logouts on either, admin revokes (each sent twice, once per gateway),
// a policy update (sent twice), sessions left to idle out with no request
// — while the receiver fails the first deliveries; one gateway is
// SIGKILLed while it holds undelivered events, so the other must take
// them over and sweep the silent expiries alone. The receiver must get
// every expected event exactly once by webhook-id (a webhook-id
// delivered again is what at-least-once allows), and nothing else. It
// waits out the shortest idle timeout allowed (1m) in real time.
func TestEventsExactlyOnceAcrossGateways(t *testing.T) {
	srv := testredis.Start(t)
	rc := eventtest.Start(t, []byte("events-secret-0123456789abcdef01"), 25)
	up := okUpstream(t)
	globals := eventsGlobals(srv.Addr(), rc)
	a, b := startCaddy(t, globals, up), startCaddy(t, globals, up)
	gws := []*proc{a, b}

	want := map[string]int{}
	expect := func(typ, sid, by string) { want[typ+" "+session.HashID(sid)+" "+by]++ }
	const n = 16
	toks := make([]string, n)
	for i := 0; i < n; i++ {
		on, other := gws[i%2], gws[(i+1)%2]
		sid, acct := fmt.Sprintf("ev-%d", i), fmt.Sprintf("acct-%d", i%5)
		toks[i] = mint(t, time.Now(), sid, acct, nil)
		wantCode(t, on.do(t, "GET", on.URL+"/", toks[i], nil), 200)
		wantCode(t, other.do(t, "GET", other.URL+"/", toks[i], nil), 200)
		expect(events.Created, sid, "")
		switch i % 4 {
		case 0:
			wantCode(t, other.do(t, "POST", other.URL+"/.session/logout", toks[i], nil), 200)
			expect(events.Revoked, sid, events.ByLogout)
		case 1:
			body := []byte(fmt.Sprintf(`{"scope":"session","session":%q}`, session.HashID(sid)))
			for _, g := range []*proc{on, other} { // the second finds it revoked: no event
				wantCode(t, g.do(t, "POST", g.Admin+"/session_guard/accounts/"+acct+"/revoke", "", body), 200)
			}
			expect(events.Revoked, sid, events.ByAdmin)
		case 2:
			wantCode(t, on.do(t, "POST", on.URL+"/.session/logout", toks[i], nil), 200)
			expect(events.Revoked, sid, events.ByLogout)
		case 3:
			expect(events.IdleExpired, sid, "") // no request comes again: the sweep
		}
	}
	for _, g := range gws { // the same change twice: one event
		wantCode(t, g.do(t, "PATCH", g.Admin+"/session_guard/accounts/acct-0/policy", "", []byte(`{"idle_minutes":30}`)), 200)
	}
	want[events.PolicyUpdate+"  "]++
	idleAt := time.Now().Add(time.Minute)

	// kill A while it holds undelivered events
	rdb := srv.Client(t)
	host, _ := os.Hostname()
	consumerA := host + "-" + strconv.Itoa(a.Pid)
	waitUntil(t, 10*time.Second, "gateway A to hold webhook events", func() bool { return pendingOf(t, rdb, consumerA) > 0 })
	held := pendingOf(t, rdb, consumerA)
	signal(t, a.Pid, syscall.SIGKILL)

	total := 0
	for _, c := range want {
		total += c
	}
	if !rc.WaitFor(total, time.Until(idleAt)+30*time.Second) {
		t.Logf("receiver has %d of %d events", len(rc.Events()), total)
	}
	time.Sleep(time.Second) // anything extra would come now
	got, again := rc.Counts()
	if d := eventtest.Diff(got, want); d != "" {
		t.Fatalf("events per type and session differ (got/want):\n%s", d)
	}
	t.Logf("FIGURE events across gateways: %d events exactly once; %d attempts, %d webhook-ids delivered again; gateway A held %d when killed",
		total, len(rc.Attempts()), again, held)
}

// pendingOf is how many webhook events consumer holds, over the
// accounts' streams.
func pendingOf(t *testing.T, rdb *redis.Client, consumer string) int64 {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*:ev").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, k := range keys {
		p, err := rdb.XPending(ctx, k, "webhook").Result()
		if err != nil {
			continue // no group yet
		}
		n += p.Consumers[consumer]
	}
	return n
}
