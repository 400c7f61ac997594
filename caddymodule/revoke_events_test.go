package caddymodule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/eventtest"
	"github.com/sessionguard/sessionguard/internal/session"
)

// TestRevokeAllEventsThroughCaddy: a revocation of a whole account gives
// every session it ended exactly one session.revoked event, though no
// request meets them afterwards: on Redis the gateway's background
// recording writes them (the revocation itself reads no session).
func TestRevokeAllEventsThroughCaddy(t *testing.T) {
	eachWithEvents(t, 0, func(t *testing.T, e *env, rc *eventtest.Receiver) {
		h := session.HashID
		want := map[string]int{}
		for _, s := range []struct{ sid, user string }{{"s1", "alice"}, {"s2", "alice"}, {"s3", "bob"}} {
			tok := e.mint(t, devtoken.Claims{Session: s.sid, User: s.user, TTL: time.Hour})
			wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
			want[events.Created+" "+h(s.sid)+" "] = 1
			want[events.Revoked+" "+h(s.sid)+" "+events.ByAdmin] = 1
		}
		r := e.AdminDo(t, "POST", "/session_guard/accounts/acme/revoke", []byte(`{"scope":"all"}`))
		wantCode(t, r, 200)
		if got := strings.TrimSpace(string(r.Body)); got != `{"revoked":3}` {
			t.Fatalf("revoke all: %s", got)
		}
		if !rc.WaitFor(len(want), 10*time.Second) {
			t.Fatalf("received %v, want %v", rc.Events(), want)
		}
		time.Sleep(1500 * time.Millisecond) // another recording round: nothing more may come
		got, again := rc.Counts()
		if d := eventtest.Diff(got, want); d != "" || again != 0 {
			t.Fatalf("received (got/want):\n%s\nredelivered %d", d, again)
		}
	})
}
