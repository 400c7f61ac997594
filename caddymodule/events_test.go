package caddymodule_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/eventtest"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/session"
)

var eventKey = []byte("events-secret-0123456789abcdef01")

// eventGlobals is the events block sending to rc, sweeping every 50ms.
func eventGlobals(rc *eventtest.Receiver) string {
	return "events {\n\t\t\tinterval 50ms\n\t\t\tretry 10ms 40ms\n\t\t\twebhook " + rc.URL +
		" {\n\t\t\t\tsecret " + rc.Secret + "\n\t\t\t}\n\t\t}"
}

// Through Caddy, on each store: a history of creations, a logout, an
// admin revoke, a policy update and a silent idle expiry (found by the
// sweep) reaches a webhook receiver that
// fails the first deliveries, each event exactly once (by webhook-id),
// signed; the log sink and the metrics count them.
func TestEventsThroughCaddy(t *testing.T) {
	eachWithEvents(t, 2, func(t *testing.T, e *env, rc *eventtest.Receiver) {
		tok := func(sid, user string) string {
			return e.mint(t, devtoken.Claims{Session: sid, User: user, TTL: time.Hour})
		}
		wantCode(t, e.Do(t, "GET", "/", tok("s1", "alice"), nil), 200)
		wantCode(t, e.Do(t, "POST", "/.session/logout", tok("s1", "alice"), nil), 200)
		wantCode(t, e.Do(t, "GET", "/", tok("s2", "alice"), nil), 200)
		wantCode(t, e.Do(t, "GET", "/", tok("s3", "bob"), nil), 200)
		wantCode(t, e.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"user","user_id":"bob"}`)), 200)
		wantCode(t, e.AdminDo(t, "PATCH", "/session_guard/accounts/acme/policy", []byte(`{"idle_minutes":30}`)), 200)
		e.Clock.Advance(20 * time.Minute) // s2 idles out; no request sees it
		h := session.HashID
		want := map[string]int{
			events.Created + " " + h("s1") + " ":                   1,
			events.Created + " " + h("s2") + " ":                   1,
			events.Created + " " + h("s3") + " ":                   1,
			events.Revoked + " " + h("s1") + " " + events.ByLogout: 1,
			events.Revoked + " " + h("s3") + " " + events.ByAdmin:  1,
			events.PolicyUpdate + "  ":                             1,
			events.IdleExpired + " " + h("s2") + " ":               1,
		}
		if !rc.WaitFor(len(want), 10*time.Second) {
			t.Fatalf("received %v, want %v", rc.Events(), want)
		}
		time.Sleep(200 * time.Millisecond) // a few more sweeps: nothing more may come
		got, again := rc.Counts()
		if d := eventtest.Diff(got, want); d != "" || again != 0 {
			t.Fatalf("received (got/want):\n%s\nredelivered %d", d, again)
		}
		for _, ev := range rc.Events() {
			if ev.Account != "acme" || strings.Contains(string(ev.Payload()), `"s1"`) {
				t.Errorf("event %+v", ev)
			}
		}
		tries := rc.Attempts()
		if len(tries) < 3 || tries[0] != tries[1] || tries[1] != tries[2] {
			t.Errorf("attempts %v: the failed deliveries' retries must carry one webhook-id", tries)
		}
		m := e.AdminDo(t, "GET", "/metrics", nil)
		for _, c := range []struct {
			metric string
			min    float64
		}{
			{`caddy_session_guard_events_emitted_total{type="session.created"}`, 3},
			{`caddy_session_guard_events_delivered_total{sink="webhook",type="session.created"}`, 3},
			{`caddy_session_guard_events_delivered_total{sink="log",type="session.idle_expired"}`, 1},
			{`caddy_session_guard_events_failed_total{sink="webhook",type="session.created"}`, 2},
		} {
			if v := metricValue(t, m, c.metric); v < c.min {
				t.Errorf("%s = %v, want at least %v", c.metric, v, c.min)
			}
		}
	})
}

// eachWithEvents runs fn on each store with events on and a webhook
// receiver of its own, which fails its first failFirst deliveries: one
// store's events never count for another's.
func eachWithEvents(t *testing.T, failFirst int, fn func(t *testing.T, e *env, rc *eventtest.Receiver)) {
	var rc *eventtest.Receiver
	eachWith(t, func(t *testing.T) string {
		rc = eventtest.Start(t, eventKey, failFirst)
		return eventGlobals(rc)
	}, func(t *testing.T, e *env) { fn(t, e, rc) })
}

// metricValue reads one sample of the metrics page; 0 when absent.
func metricValue(t *testing.T, r *gatewaytest.Response, sample string) float64 {
	t.Helper()
	wantCode(t, r, 200)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(r.Body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
