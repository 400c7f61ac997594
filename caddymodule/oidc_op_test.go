package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// opStorage is the example OP's in-memory storage, with an OP session
// per user put in the ID tokens as sid, as SSO providers do: kept across
// logins and refreshes of that user, so only auth_time tells logins apart.
type opStorage struct {
	*storage.Storage
	mu   sync.Mutex
	sids map[string]string // subject -> OP session
}

// SetUserinfoFromRequest adds sid to every ID token (code and refresh).
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sid, ok := s.sids[req.GetSubject()]
	if !ok {
		sid = fmt.Sprintf("op-session-%d", len(s.sids)+1)
		s.sids[req.GetSubject()] = sid
	}
	ui.AppendClaims("sid", sid)
	return nil
}

// GetPrivateClaimsFromRequest gives JWT access tokens auth_time, and no
// sid: a session is then told by sub+auth_time.
func (s *opStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, scopes []string) (map[string]any, error) {
	c, err := s.Storage.GetPrivateClaimsFromScopes(ctx, req.GetSubject(), opClient, scopes)
	if c == nil {
		c = map[string]any{}
	}
	if r, ok := req.(interface{ GetAuthTime() time.Time }); ok {
		c["auth_time"] = r.GetAuthTime().Unix()
	}
	return c, err
}

// GetClientByClientID hands out the client with JWT access tokens.
func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return jwtAccessClient{c}, nil
}

type jwtAccessClient struct{ op.Client }

func (jwtAccessClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// realOP is zitadel's example OpenID provider in-process: discovery,
// JWKS, login form, code and refresh grants over HTTP.
type realOP struct {
	issuer, authURL, tokenURL string
	client                    *http.Client // does not follow redirects
}

const (
	opClient   = "web"
	opSecret   = "web-secret"
	opCallback = "http://127.0.0.1/callback" // only read from the redirect, never fetched
)

func startOP(t *testing.T) *realOP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	st := &opStorage{
		Storage: storage.NewStorageWithClients(storage.NewUserStore(issuer),
			map[string]*storage.Client{opClient: storage.WebClient(opClient, opSecret, opCallback)}),
		sids: map[string]string{},
	}
	srv := httptest.NewUnstartedServer(exampleop.SetupServer(issuer, st, nil, false))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	p := &realOP{issuer: issuer, client: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	var disc oidc.DiscoveryConfiguration
	p.getJSON(t, issuer+oidc.DiscoveryEndpoint, &disc)
	p.authURL, p.tokenURL = disc.AuthorizationEndpoint, disc.TokenEndpoint
	return p
}

func (p *realOP) getJSON(t *testing.T, u string, v any) {
	t.Helper()
	r, err := p.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
}

// redirect requests u (a form post when form is not nil) and returns the
// location it redirects to, resolved.
func (p *realOP) redirect(t *testing.T, u string, form url.Values) *url.URL {
	t.Helper()
	var r *http.Response
	var err error
	if form == nil {
		r, err = p.client.Get(u)
	} else {
		r, err = p.client.PostForm(u, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusFound && r.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: status %d, want a redirect: %s", r.Request.URL, r.StatusCode, body)
	}
	loc, err := r.Request.URL.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// tokens is the OP's token response.
type tokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// login runs the authorization-code flow as a browser would: the OP's
// authorize endpoint, its login form posted with the user's password,
// its callback, then the code redeemed at the token endpoint.
func (p *realOP) login(t *testing.T, prompt string) tokens {
	t.Helper()
	q := url.Values{"client_id": {opClient}, "response_type": {"code"}, "redirect_uri": {opCallback},
		"scope": {"openid offline_access"}, "state": {"st"}, "nonce": {"n"}}
	if prompt != "" {
		q.Set("prompt", prompt)
	}
	form := p.redirect(t, p.authURL+"?"+q.Encode(), nil)
	r, err := p.client.Get(form.String())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	id := form.Query().Get("authRequestID")
	if !strings.Contains(string(page), `name="id" value="`+id+`"`) {
		t.Fatalf("login form for request %q not served: %d %s", id, r.StatusCode, page)
	}
	callback := p.redirect(t, form.ResolveReference(&url.URL{Path: "/login/username"}).String(),
		url.Values{"id": {id}, "username": {"test-user2"}, "password": {"verysecure"}})
	back := p.redirect(t, callback.String(), nil)
	if back.Query().Get("state") != "st" || back.Query().Get("code") == "" {
		t.Fatalf("no code in the redirect to the client: %s", back)
	}
	return p.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {opCallback}})
}

// refresh is the silent re-issue: a refresh-token grant, same OP session.
func (p *realOP) refresh(t *testing.T, old tokens) tokens {
	t.Helper()
	return p.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}})
}

func (p *realOP) token(t *testing.T, form url.Values) tokens {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(opClient, opSecret)
	r, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var tok tokens
	if err := json.NewDecoder(r.Body).Decode(&tok); err != nil || r.StatusCode != http.StatusOK || tok.IDToken == "" {
		t.Fatalf("token endpoint (%s): status %d, %v, %+v", form.Get("grant_type"), r.StatusCode, err, tok)
	}
	return tok
}

// claims reads claims of a token the gateway verifies (not verified here).
func claims(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitPast sleeps until the OP's clock (real time, whole seconds in iat
// and auth_time) is past t.
func waitPast(t time.Time) {
	for !time.Now().Truncate(time.Second).After(t) {
		time.Sleep(50 * time.Millisecond)
	}
}

// opGateway starts Caddy with a do that moves the gateway's clock up to
// the OP's (real time) before each request.
func opGateway(t *testing.T, globals, site string) (*gatewaytest.Gateway, func(method, path, tok string, headers ...string) *gatewaytest.Response) {
	gw := gatewaytest.Start(t, globals, site, time.Now())
	return gw, func(method, path, tok string, headers ...string) *gatewaytest.Response {
		if now := time.Now(); now.After(gw.Clock.Now()) {
			gw.Clock.Set(now)
		}
		return gw.Do(t, method, path, tok, nil, headers...)
	}
}

// Through Caddy, with ID tokens of a real OpenID provider (zitadel's
// example OP, found by discovery, keys from its JWKS): login, idle
// expiry, a refresh after idle expiry (same sid and auth_time) starting a
// new session, logout then a refresh refused with reauth=1 for
// navigations, and a fresh login (same OP session, new auth_time)
// admitted. The OP keeps real time, so the gateway's clock follows it and
// the idle timeout is the shortest preset allowed, 1m.
func TestRealOPSessionGenerations(t *testing.T) {
	p := startOP(t)
	globals := "session_guard {\n\t\tstore memory\n\t\tpreset quick 1m 1h\n\t\tbounds idle 1m 720h\n\t\tdefault_preset quick\n\t}"
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery %s
			audience %s
		}
		default_account acme
		login_url /login
	}
	reverse_proxy {UPSTREAM}
}`, p.issuer, opClient)
	gw, do := opGateway(t, globals, site)

	first := p.login(t, "")
	sid, authTime := claims(t, first.IDToken)["sid"], claims(t, first.IDToken)["auth_time"]
	wantCode(t, do("GET", "/", first.IDToken), 200)
	idleEnd := gw.Clock.Now().Add(time.Minute)

	waitPast(idleEnd)
	wantCode(t, do("GET", "/", first.IDToken), 401)
	again := p.refresh(t, first)
	if c := claims(t, again.IDToken); c["sid"] != sid || c["auth_time"] != authTime {
		t.Fatalf("refresh: sid %v auth_time %v, want the login's %v %v", c["sid"], c["auth_time"], sid, authTime)
	}
	wantCode(t, do("GET", "/", again.IDToken), 200)

	wantCode(t, do("POST", "/.session/logout", again.IDToken), 200)
	loggedOut := gw.Clock.Now()
	silent := p.refresh(t, again)
	wantCode(t, do("GET", "/", silent.IDToken), 401)
	r := do("GET", "/", silent.IDToken, "Accept", "text/html")
	wantCode(t, r, 302)
	wantHeader(t, r, "Location", "/login?reason=session_revoked&reauth=1")

	waitPast(loggedOut) // auth_time has whole seconds
	fresh := p.login(t, "login")
	if c := claims(t, fresh.IDToken); c["sid"] != sid || c["auth_time"] == authTime {
		t.Fatalf("fresh login: sid %v auth_time %v, want sid %v and a new auth_time", c["sid"], c["auth_time"], sid)
	}
	wantCode(t, do("GET", "/", fresh.IDToken), 200)
}

// Through Caddy, with the real OP's JWT access tokens, which have no sid:
// with session sid sub+auth_time a refreshed token (same auth_time) goes
// on in the same session, and a fresh login starts another.
func TestRealOPAccessTokenWithoutSid(t *testing.T) {
	p := startOP(t)
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery %s
			audience %s
		}
		claims {
			session sid sub+auth_time
		}
		default_account acme
	}
	reverse_proxy {UPSTREAM}
}`, p.issuer, opClient)
	gw, do := opGateway(t, "session_guard {\n\t\tstore memory\n\t}", site)
	session := func(tok string) string {
		t.Helper()
		wantCode(t, do("GET", "/", tok), 200)
		h, _ := gw.Upstream.Last()
		return h.Get("Session-Id-Hash")
	}

	first := p.login(t, "")
	c := claims(t, first.AccessToken)
	if _, ok := c["sid"]; ok || c["auth_time"] == nil {
		t.Fatalf("access token claims %v: want auth_time and no sid", c)
	}
	s1 := session(first.AccessToken)
	if s1 == "" {
		t.Fatal("no Session-Id-Hash upstream")
	}
	refreshed := p.refresh(t, first)
	if refreshed.AccessToken == first.AccessToken {
		t.Fatal("refresh gave the same access token")
	}
	if s := session(refreshed.AccessToken); s != s1 {
		t.Fatalf("refreshed token: session %q, want %q", s, s1)
	}
	waitPast(time.Unix(int64(c["auth_time"].(float64)), 0))
	if s := session(p.login(t, "login").AccessToken); s == s1 || s == "" {
		t.Fatalf("fresh login: session %q, want a new one (first %q)", s, s1)
	}
}
