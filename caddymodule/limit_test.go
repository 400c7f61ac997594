package caddymodule_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
)

const (
	kioskDeny  = "default_preset kiosk\n\t\tpreset kiosk 15m 12h sessions 2 deny"
	kioskEvict = "default_preset kiosk\n\t\tpreset kiosk 15m 12h sessions 2"
)

// TestSessionLimitDeny: with on_limit deny a user's third session gets
// 403 session_limit_reached, navigations too; the live ones and other
// users go on; once one ends there is room again.
func TestSessionLimitDeny(t *testing.T) {
	each(t, kioskDeny, func(t *testing.T, e *env) {
		s1 := e.mint(t, devtoken.Claims{Session: "s1"})
		wantCode(t, e.Do(t, "GET", "/", s1, nil), 200)
		wantCode(t, e.Do(t, "GET", "/", e.mint(t, devtoken.Claims{Session: "s2"}), nil), 200)
		s3 := e.mint(t, devtoken.Claims{Session: "s3"})
		for _, hdr := range [][]string{nil, {"Accept", "text/html", "Sec-Fetch-Mode", "navigate"}} {
			r := e.Do(t, "GET", "/", s3, nil, hdr...)
			wantCode(t, r, 403)
			if strings.TrimSpace(string(r.Body)) != `{"error":"session_limit_reached"}` {
				t.Fatalf("body %s", r.Body)
			}
		}
		wantCode(t, e.Do(t, "GET", "/", s1, nil), 200)
		wantCode(t, e.Do(t, "GET", "/", e.mint(t, devtoken.Claims{Session: "b1", User: "bob"}), nil), 200)
		wantCode(t, e.Do(t, "POST", "/.session/logout", s1, nil), 200)
		wantCode(t, e.Do(t, "GET", "/", s3, nil), 200)
	})
}

// TestSessionLimitEvictsOldest: with evict_oldest the user's third
// session ends the oldest-login one, whose next request is 401
// session_revoked.
func TestSessionLimitEvictsOldest(t *testing.T) {
	each(t, kioskEvict, func(t *testing.T, e *env) {
		var toks []string
		for _, sid := range []string{"s1", "s2", "s3"} {
			tok := e.mint(t, devtoken.Claims{Session: sid})
			wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
			toks = append(toks, tok)
			e.Clock.Advance(time.Second)
		}
		r := e.Do(t, "GET", "/", toks[0], nil)
		wantCode(t, r, 401)
		if strings.TrimSpace(string(r.Body)) != `{"error":"session_revoked"}` {
			t.Fatalf("body %s", r.Body)
		}
		wantCode(t, e.Do(t, "GET", "/", toks[1], nil), 200)
		wantCode(t, e.Do(t, "GET", "/", toks[2], nil), 200)
	})
}

// TestOpaqueSessionLimit: a login beyond the limit is refused with 403
// and no cookie (deny), or ends the oldest bound session (evict_oldest).
func TestOpaqueSessionLimit(t *testing.T) {
	eachOpaque(t, strings.Replace(kioskDeny, "sessions 2", "sessions 1", 1), "", func(t *testing.T, e *opaqueEnv) {
		c1 := e.login(t, "alice", "acme", "")
		r := e.Do(t, "POST", "/login?"+url.Values{"user": {"alice"}, "account": {"acme"}}.Encode(), "", nil)
		wantCode(t, r, 403)
		if strings.TrimSpace(string(r.Body)) != `{"error":"session_limit_reached"}` || len(r.Cookies()) != 0 {
			t.Fatalf("refused login: body %s, cookies %v", r.Body, r.Header.Values("Set-Cookie"))
		}
		wantCode(t, e.get(t, "GET", "/", c1), 200)
	})
	eachOpaque(t, strings.Replace(kioskEvict, "sessions 2", "sessions 1", 1), "", func(t *testing.T, e *opaqueEnv) {
		c1 := e.login(t, "alice", "acme", "")
		e.Clock.Advance(time.Second)
		c2 := e.login(t, "alice", "acme", "")
		r := e.get(t, "GET", "/", c1)
		wantCode(t, r, 401)
		if strings.TrimSpace(string(r.Body)) != `{"error":"session_revoked"}` {
			t.Fatalf("body %s", r.Body)
		}
		wantCode(t, e.get(t, "GET", "/", c2), 200)
	})
}
