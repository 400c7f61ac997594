package caddymodule_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testop"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// bclSite has one handler per account (acme on /, beta on /beta/,
// gamma on /gamma/), all taking the real OP's ID tokens: one OP session
// makes a session in each account the user visits.
func bclSite(issuer string) string {
	handler := func(acct string) string {
		return fmt.Sprintf(`session_guard {
			jwt {
				discovery %s
				audience %s
			}
			default_account %s
		}
		reverse_proxy {UPSTREAM}`, issuer, testop.Client, acct)
	}
	return fmt.Sprintf(`{SITE} {
	handle /beta/* {
		%s
	}
	handle /gamma/* {
		%s
	}
	handle {
		%s
	}
}`, handler("beta"), handler("gamma"), handler("acme"))
}

// bclGateway is a gateway on the real OP, whose clock follows real time
// (the OP's).
type bclGateway struct {
	*gatewaytest.Gateway
	op *testop.OP
}

func (g *bclGateway) get(t *testing.T, path, tok string) *gatewaytest.Response {
	t.Helper()
	g.sync()
	return g.Do(t, "GET", path, tok, nil)
}

func (g *bclGateway) sync() {
	if now := time.Now(); now.After(g.Clock.Now()) {
		g.Clock.Set(now)
	}
}

// logout posts body (form-encoded unless contentType says otherwise) to
// the back-channel endpoint, as a provider does: no cookie, no Origin.
func (g *bclGateway) logout(t *testing.T, body, contentType string) *gatewaytest.Response {
	t.Helper()
	g.sync()
	if contentType == "" {
		contentType = "application/x-www-form-urlencoded"
	}
	return g.Do(t, "POST", "/.session/backchannel-logout", "", strings.NewReader(body), "Content-Type", contentType)
}

func (g *bclGateway) logoutToken(t *testing.T, tok string) *gatewaytest.Response {
	t.Helper()
	return g.logout(t, url.Values{"logout_token": {tok}}.Encode(), "")
}

func wantRevoked(t *testing.T, r *gatewaytest.Response, n int) {
	t.Helper()
	wantCode(t, r, 200)
	wantHeader(t, r, "Cache-Control", "no-store")
	var body struct{ Revoked *int }
	r.JSON(t, &body)
	if body.Revoked == nil || *body.Revoked != n {
		t.Fatalf("body %s, want revoked %d", r.Body, n)
	}
}

func wantInvalidRequest(t *testing.T, r *gatewaytest.Response) {
	t.Helper()
	wantCode(t, r, 400)
	wantHeader(t, r, "Cache-Control", "no-store")
	var body map[string]string
	r.JSON(t, &body)
	if body["error"] != "invalid_request" {
		t.Fatalf("body %s, want error invalid_request", r.Body)
	}
}

// logoutTokenCases are logout tokens that break one rule of OpenID
// Connect Back-Channel Logout 1.0, section 2.6 (and 2.4), each signed
// with the OP's key unless the rule is the signature.
func logoutTokenCases(t *testing.T, op *testop.OP, sid string) map[string][2]string {
	now := time.Now()
	valid := func() jwt.MapClaims { return op.LogoutClaims(now, sid, "") }
	// with sets (nil: deletes) claims given as name, value pairs
	with := func(kv ...any) string {
		c := valid()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return op.Sign(t, c, nil)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// the OP's header (its kid), a payload signed with another key
	forgedTok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, valid()).SignedString(other)
	okHeader, _, _ := strings.Cut(op.Sign(t, valid(), nil), ".")
	_, forgedRest, _ := strings.Cut(forgedTok, ".")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, valid()).SignedString([]byte(strings.Repeat("k", 32)))
	// each with a word of the reason the gateway gives
	return map[string][2]string{
		"2.6.1 encrypted (JWE)":          {"eyJhbGciOiJSU0EtT0FFUCJ9.aaaa.bbbb.cccc.dddd", "three segments"},
		"2.6.2 signature of another key": {okHeader + "." + forgedRest, "signature"},
		"2.6.3 alg none":                 {none + "AAAA", "unsigned"}, // a signature, so that only alg is wrong
		"2.6.3 alg not allowed":          {hs, "algorithm"},
		"2.6.4 iss":                      {with("iss", "https://evil.example"), "issuer"},
		"2.6.4 aud":                      {with("aud", "another-client"), "audience"},
		"2.6.4 no iat":                   {with("iat", nil), "no iat"},
		"2.6.4 iat in the future":        {with("iat", now.Add(time.Hour).Unix()), "future"},
		"2.6.4 exp passed":               {with("exp", now.Add(-time.Minute).Unix()), "expired"},
		"2.6.4 no exp, iat 6m old":       {with("exp", nil, "iat", now.Add(-6*time.Minute).Unix()), "too old"},
		"2.6.5 neither sub nor sid":      {with("sid", nil), "neither sub nor sid"},
		"2.6.6 no events":                {with("events", nil), "events"},
		"2.6.6 events without logout":    {with("events", map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}), "events"},
		"2.6.6 events member not object": {with("events", map[string]any{testop.LogoutEvent: "yes"}), "events"},
		"2.6.6 events not an object":     {with("events", []any{testop.LogoutEvent}), "events"},
		"2.6.7 nonce":                    {with("nonce", "n"), "nonce"},
		"2.4 no jti":                     {with("jti", nil), "jti"},
		"2.4 jti not a string":           {with("jti", 7), "jti"},
		"4.1 typ of an access token":     {op.Sign(t, valid(), map[string]any{"typ": "at+jwt"}), "type"},
		"4.1 typ unknown":                {op.Sign(t, valid(), map[string]any{"typ": "secevent+jwt"}), "type"},
		"iat older than a day":           {with("iat", now.Add(-25*time.Hour).Unix(), "exp", now.Add(time.Hour).Unix()), "too old"},
		"not a token":                    {"hello", "segments"},
	}
}

// Through Caddy, on each store, with a real OP's ID tokens and logout
// tokens signed with its key: every rule of section 2.6 broken once is
// 400 and revokes nothing; a valid token by sid revokes that OP
// session's sessions in every account (also one the gateway has not seen
// yet), a replay is 400, explicit typing is accepted; a token by sub
// alone revokes the user's sessions in every account; the session's
// refreshed tokens stay refused; malformed requests are 400 or 405.
func TestBackchannelLogout(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			op := testop.Start(t)
			globals, _ := b.globals(t)
			g := &bclGateway{gatewaytest.Start(t, globals, bclSite(op.Issuer), time.Now()), op}
			first := op.Login(t, "")
			c := testop.Claims(t, first.IDToken)
			sid, sub := c["sid"].(string), c["sub"].(string)
			wantCode(t, g.get(t, "/", first.IDToken), 200)
			wantCode(t, g.get(t, "/beta/x", first.IDToken), 200)

			for name, tc := range logoutTokenCases(t, op, sid) {
				t.Run(name, func(t *testing.T) {
					r := g.logoutToken(t, tc[0])
					wantInvalidRequest(t, r)
					if !strings.Contains(string(r.Body), tc[1]) {
						t.Fatalf("body %s, want the reason %q", r.Body, tc[1])
					}
				})
			}
			valid := op.Sign(t, op.LogoutClaims(time.Now(), sid, ""), map[string]any{"typ": "logout+jwt"})
			wantInvalidRequest(t, g.logout(t, "logout_token="+valid+"&logout_token="+valid, ""))
			wantInvalidRequest(t, g.logout(t, `{"logout_token":"`+valid+`"}`, "application/json"))
			wantCode(t, g.Do(t, "GET", "/.session/backchannel-logout?logout_token="+valid, "", nil), 405)
			// a logout token is no credential, even one that has what a
			// credential needs (sub, sid, default account)
			wantCode(t, g.get(t, "/", op.Sign(t, op.LogoutClaims(time.Now(), sid, sub), nil)), 401)
			wantCode(t, g.get(t, "/", first.IDToken), 200)
			wantCode(t, g.get(t, "/beta/x", first.IDToken), 200)

			wantRevoked(t, g.logoutToken(t, valid), 2)
			for _, p := range []string{"/", "/beta/x", "/gamma/x"} { // gamma: never seen before
				r := g.get(t, p, first.IDToken)
				wantCode(t, r, 401)
				if !strings.Contains(string(r.Body), "session_revoked") {
					t.Fatalf("%s: %s, want session_revoked", p, r.Body)
				}
			}
			wantInvalidRequest(t, g.logoutToken(t, valid)) // replay
			wantCode(t, g.get(t, "/", op.Refresh(t, first).IDToken), 401)

			// a fresh login (same OP session, later auth_time), then a
			// logout by sub alone
			waitPast(time.Now())
			again := op.Login(t, "login")
			wantCode(t, g.get(t, "/", again.IDToken), 200)
			wantCode(t, g.get(t, "/gamma/x", again.IDToken), 200)
			// without exp, as providers that predate its requirement send
			bySub := op.LogoutClaims(time.Now(), "", sub)
			delete(bySub, "exp")
			wantRevoked(t, g.logoutToken(t, op.Sign(t, bySub, nil)), 2)
			wantCode(t, g.get(t, "/", again.IDToken), 401)
			wantCode(t, g.get(t, "/gamma/x", again.IDToken), 401)
			wantCode(t, g.get(t, "/beta/x", again.IDToken), 401)
		})
	}
}

// The back-channel endpoint needs an audience and an issuer: without
// them it does not exist (404), and never in opaque mode.
func TestBackchannelNeedsAudienceAndIssuer(t *testing.T) {
	site := `{SITE} {
	session_guard {
		jwt {
			alg HS256
			secret ` + secret + `
			audience app
		}
	}
	reverse_proxy {UPSTREAM}
}`
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, t0)
	r := g.Do(t, "POST", "/.session/backchannel-logout", "", strings.NewReader("logout_token=x"), "Content-Type", "application/x-www-form-urlencoded")
	wantCode(t, r, 404)
	var body map[string]string
	if err := json.Unmarshal(r.Body, &body); err != nil || body["error"] != "not_found" {
		t.Fatalf("body %s", r.Body)
	}
}

// With the store down the back-channel endpoint and the revoke hook
// answer 503 with Retry-After, and the provider's retry of the same
// logout token succeeds once the store is back (the jti was not used up)
// and ends the session even though the gateway had indexed it before.
func TestBackchannelStoreDown(t *testing.T) {
	op := testop.Start(t)
	srv := testredis.Start(t)
	globals := "session_guard {\n\t\tstore redis {\n\t\t\taddress " + srv.Addr() + "\n\t\t\ttimeout 100ms\n\t\t}\n\t}"
	site := strings.Replace(bclSite(op.Issuer), "default_account acme", "default_account acme\n\t\t\thooks {\n\t\t\t\tsecret whsec_"+base64.StdEncoding.EncodeToString(hookKey)+"\n\t\t\t}", 1)
	g := &bclGateway{gatewaytest.Start(t, globals, site, time.Now()), op}
	tok := op.Login(t, "")
	sid := testop.Claims(t, tok.IDToken)["sid"].(string)
	wantCode(t, g.get(t, "/", tok.IDToken), 200)
	logout := op.Sign(t, op.LogoutClaims(time.Now(), sid, ""), nil)

	srv.Stop(t)
	r := g.logoutToken(t, logout)
	wantCode(t, r, 503)
	wantHeader(t, r, "Retry-After", "1")
	e := &env{Gateway: g.Gateway}
	r = e.hook(t, hookReq{id: "msg_down", at: g.Clock.Now(), body: `{"account":"acme","scope":"all"}`})
	wantCode(t, r, 503)
	wantHeader(t, r, "Retry-After", "1")

	// the server restarts empty: the session is gone, but the logout is
	// recorded now, so the token starts no new session
	srv.Restart(t)
	wantRevoked(t, g.logoutToken(t, logout), 0)
	wantCode(t, g.get(t, "/", tok.IDToken), 401)
}
