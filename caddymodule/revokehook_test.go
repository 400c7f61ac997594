package caddymodule_test

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

var hookKey = []byte("hook-secret-0123456789abcdef0123")

var hookSite = strings.Replace(site, "login_url /login", "login_url /login\n\t\thooks {\n\t\t\tsecret whsec_"+base64.StdEncoding.EncodeToString(hookKey)+"\n\t\t}", 1)

// hookReq is one delivery to the revoke hook.
type hookReq struct {
	id   string
	at   time.Time // webhook-timestamp
	body string
	sig  string // webhook-signature; default: signed with hookKey
}

func (e *env) hook(t *testing.T, h hookReq) *gatewaytest.Response {
	t.Helper()
	if h.sig == "" {
		h.sig = hookSignature(t, hookKey, h)
	}
	return e.Do(t, "POST", "/.session/revoke-hook", "", strings.NewReader(h.body),
		"Content-Type", "application/json", "webhook-id", h.id,
		"webhook-timestamp", strconv.FormatInt(h.at.Unix(), 10), "webhook-signature", h.sig)
}

func hookSignature(t *testing.T, key []byte, h hookReq) string {
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(h.id, h.at, []byte(h.body))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func wantBody(t *testing.T, r *gatewaytest.Response, code int, fragment string) {
	t.Helper()
	wantCode(t, r, code)
	if !strings.Contains(string(r.Body), fragment) {
		t.Fatalf("body %s, want %s", r.Body, fragment)
	}
}

// hookCount reads the revoke hook requests counted with outcome.
func hookCount(t *testing.T, e *env, outcome string) float64 {
	t.Helper()
	r := e.AdminDo(t, "GET", "/metrics", nil)
	wantCode(t, r, 200)
	re := regexp.MustCompile(`(?m)^caddy_session_guard_revocation_requests_total\{endpoint="revoke_hook",outcome="` + outcome + `"\} (\S+)$`)
	m := re.FindSubmatch(r.Body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// Through Caddy, on each store: Standard Webhooks-signed revocations of
// a user, a session (one of several signatures matching) and a whole
// account; refused: a replayed webhook-id (409), a wrong or missing
// signature and a timestamp beyond 5 minutes either way (401), bodies
// that name no target (400), wrong content type (415), GET (405) — none
// of them revoking anything. Requests are counted by outcome.
func TestRevokeHook(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			globals, _ := b.globals(t)
			e := &env{Gateway: gatewaytest.Start(t, globals, hookSite, t0)}
			tok := func(sid, user, acct string) string {
				return e.mint(t, devtoken.Claims{Session: sid, User: user, Account: acct, LoginAt: t0.Add(-time.Minute)})
			}
			a1, a2, b1, c1 := tok("s1", "alice", "acme"), tok("s2", "alice", "acme"), tok("s3", "bob", "acme"), tok("s4", "carol", "beta")
			live := func(want int, toks ...string) {
				t.Helper()
				for _, tk := range toks {
					wantCode(t, e.Do(t, "GET", "/", tk, nil), want)
				}
			}
			live(200, a1, a2, b1, c1)
			now := e.Clock.Now()
			okBefore, badBefore := hookCount(t, e, "ok"), hookCount(t, e, "invalid_signature")

			user := hookReq{id: "msg_1", at: now, body: `{"account":"acme","user_id":"alice"}`}
			wantBody(t, e.hook(t, user), 200, `{"revoked":2}`)
			live(401, a1, a2)
			wantBody(t, e.hook(t, user), 409, `"replayed"`)

			bob := hookReq{id: "msg_2", at: now, body: `{"account":"acme","session":"s3"}`}
			forged := bob
			forged.sig = hookSignature(t, []byte("another-secret-0123456789abcdef"), bob)
			wantBody(t, e.hook(t, forged), 401, `"invalid_signature"`)
			noSig := bob
			noSig.sig = "v1,"
			wantBody(t, e.hook(t, noSig), 401, `"invalid_signature"`)
			for _, at := range []time.Time{now.Add(-6 * time.Minute), now.Add(6 * time.Minute)} {
				stale := bob
				stale.at = at
				wantBody(t, e.hook(t, stale), 401, `"stale_timestamp"`)
			}
			tampered := bob
			tampered.sig = hookSignature(t, hookKey, bob)
			tampered.body = `{"account":"acme","scope":"all"}`
			wantBody(t, e.hook(t, tampered), 401, `"invalid_signature"`)
			for _, body := range []string{`{"account":"acme"}`, `{"user_id":"bob"}`, `{"account":"acme","user_id":"bob","session":"s3"}`, `{"account":"acme","scope":"others"}`, `{"account":"acme","user_id":"bob","x":1}`} {
				wantCode(t, e.hook(t, hookReq{id: "msg_" + body, at: now, body: body}), 400)
			}
			r := e.Do(t, "POST", "/.session/revoke-hook", "", strings.NewReader(bob.body), "webhook-id", bob.id,
				"webhook-timestamp", strconv.FormatInt(now.Unix(), 10), "webhook-signature", hookSignature(t, hookKey, bob))
			wantCode(t, r, 415)
			wantCode(t, e.Do(t, "GET", "/.session/revoke-hook", "", nil), 405)
			live(200, b1, c1)

			bob.sig = "v1,bm90IGl0 " + hookSignature(t, hookKey, bob) + " v2,abc"
			wantBody(t, e.hook(t, bob), 200, `{"revoked":1}`)
			live(401, b1)
			wantBody(t, e.hook(t, hookReq{id: "msg_3", at: now.Add(-4 * time.Minute), body: `{"account":"beta","scope":"all"}`}), 200, `{"revoked":1}`)
			live(401, c1)

			if d := hookCount(t, e, "ok") - okBefore; d != 3 {
				t.Errorf("ok requests counted %v, want 3", d)
			}
			if d := hookCount(t, e, "invalid_signature") - badBefore; d != 3 {
				t.Errorf("invalid_signature requests counted %v, want 3", d)
			}
		})
	}
}

// Without a hooks secret the revoke hook does not exist.
func TestRevokeHookWithoutSecret(t *testing.T) {
	e := &env{Gateway: gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, t0)}
	h := hookReq{id: "msg_1", at: e.Clock.Now(), body: `{"account":"acme","scope":"all"}`}
	wantBody(t, e.hook(t, h), 404, `"not_found"`)
}

// A hooks secret that is not whsec_ and base64 of at least 24 bytes
// fails the config load.
func TestRevokeHookSecretChecked(t *testing.T) {
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, t0)
	for _, s := range []string{"whsec_not*base64", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		bad := strings.Replace(hookSite, "whsec_"+base64.StdEncoding.EncodeToString(hookKey), s, 1)
		if err := g.TryLoad(t, "session_guard {\n\t\tstore memory\n\t}", bad); err == nil || !strings.Contains(err.Error(), "hooks secret") {
			t.Errorf("secret %q: load error %v, want one about the hooks secret", s, err)
		}
	}
}
