package resilience

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/testop"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestBackchannelTwoGateways runs two Caddy processes on one Redis in
// front of a real OpenID provider (zitadel's example OP, found by
// discovery): a logout token signed with the OP's key and posted to one
// gateway ends the session on both at once; the same token posted to the
// other is a replay (400); a logout by sub alone, posted to the second,
// ends the user's next session on both.
func TestBackchannelTwoGateways(t *testing.T) {
	op := testop.Start(t)
	srv := testredis.Start(t)
	up := okUpstream(t)
	globals := redisGlobals([]string{srv.Addr()}, "timeout 500ms")
	handler := fmt.Sprintf(`session_guard {
		jwt {
			discovery %s
			audience %s
		}
		default_account acme
	}`, op.Issuer, testop.Client)
	a, b := startCaddyWith(t, globals, handler, up), startCaddyWith(t, globals, handler, up)
	post := func(p *proc, claims map[string]any) int {
		t.Helper()
		form := url.Values{"logout_token": {op.Sign(t, claims, map[string]any{"typ": "logout+jwt"})}}
		r := p.do(t, "POST", p.URL+"/.session/backchannel-logout", "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
		}
		return r.StatusCode
	}
	both := func(tok string, code int) {
		t.Helper()
		for _, p := range []*proc{a, b} {
			wantCode(t, p.do(t, "GET", p.URL+"/", tok, nil), code)
		}
	}

	first := op.Login(t, "")
	c := testop.Claims(t, first.IDToken)
	sid, sub := c["sid"].(string), c["sub"].(string)
	both(first.IDToken, 200)
	logout := op.LogoutClaims(time.Now(), sid, "")
	if code := post(a, logout); code != 200 {
		t.Fatalf("logout by sid on A: %d", code)
	}
	for _, p := range []*proc{a, b} {
		wantError(t, p.do(t, "GET", p.URL+"/", first.IDToken, nil), 401, "session_revoked")
	}
	if code := post(b, logout); code != 400 {
		t.Fatalf("the same logout token on B: %d, want 400 (replay)", code)
	}

	loggedOut := time.Now()
	for !time.Now().Truncate(time.Second).After(loggedOut) {
		time.Sleep(50 * time.Millisecond) // a later login: auth_time has whole seconds
	}
	again := op.Login(t, "login")
	both(again.IDToken, 200)
	if code := post(b, op.LogoutClaims(time.Now(), "", sub)); code != 200 {
		t.Fatalf("logout by sub on B: %d", code)
	}
	both(again.IDToken, 401)
}
