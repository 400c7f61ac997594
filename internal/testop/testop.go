// Package testop runs zitadel's example OpenID provider in the test
// process, for tests that need a real identity provider: discovery,
// JWKS, a login form, the code and refresh grants, and logout tokens
// signed with the key its ID tokens are signed with. Tests only.
package testop

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
	c, err := s.Storage.GetPrivateClaimsFromScopes(ctx, req.GetSubject(), Client, scopes)
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

// OP is zitadel's example OpenID provider in-process: discovery,
// JWKS, login form, code and refresh grants over HTTP.
type OP struct {
	// Issuer is the OP's issuer URL (discovery is below it).
	Issuer            string
	authURL, tokenURL string
	client            *http.Client // does not follow redirects
	storage           *opStorage
}

// The one client of the OP, with its secret and redirect URI.
const (
	Client   = "web"
	Secret   = "web-secret"
	Callback = "http://127.0.0.1/callback" // only read from the redirect, never fetched
)

// Start runs the OP on a free loopback port until the test ends.
func Start(t testing.TB) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	st := &opStorage{
		Storage: storage.NewStorageWithClients(storage.NewUserStore(issuer),
			map[string]*storage.Client{Client: storage.WebClient(Client, Secret, Callback)}),
		sids: map[string]string{},
	}
	srv := httptest.NewUnstartedServer(exampleop.SetupServer(issuer, st, nil, false))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	p := &OP{Issuer: issuer, storage: st, client: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	var disc oidc.DiscoveryConfiguration
	p.getJSON(t, issuer+oidc.DiscoveryEndpoint, &disc)
	p.authURL, p.tokenURL = disc.AuthorizationEndpoint, disc.TokenEndpoint
	return p
}

func (p *OP) getJSON(t testing.TB, u string, v any) {
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
func (p *OP) redirect(t testing.TB, u string, form url.Values) *url.URL {
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

// Tokens is the OP's token response.
type Tokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// Login runs the authorization-code flow as a browser would: the OP's
// authorize endpoint, its login form posted with the user's password,
// its callback, then the code redeemed at the token endpoint.
func (p *OP) Login(t testing.TB, prompt string) Tokens {
	t.Helper()
	q := url.Values{"client_id": {Client}, "response_type": {"code"}, "redirect_uri": {Callback},
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
	return p.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {Callback}})
}

// Refresh is the silent re-issue: a refresh-token grant, same OP session.
func (p *OP) Refresh(t testing.TB, old Tokens) Tokens {
	t.Helper()
	return p.Token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}})
}

// Token redeems a grant at the token endpoint.
func (p *OP) Token(t testing.TB, form url.Values) Tokens {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(Client, Secret)
	r, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var tok Tokens
	if err := json.NewDecoder(r.Body).Decode(&tok); err != nil || r.StatusCode != http.StatusOK || tok.IDToken == "" {
		t.Fatalf("token endpoint (%s): status %d, %v, %+v", form.Get("grant_type"), r.StatusCode, err, tok)
	}
	return tok
}

// Claims reads the claims of a token the gateway verifies (not verified here).
func Claims(t testing.TB, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// LogoutEvent is the events member of a logout token.
const LogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// SID returns the OP session the OP put in the ID tokens of subject.
func (p *OP) SID(subject string) string {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	return p.storage.sids[subject]
}

// Sign signs claims with the OP's own signing key (RS256, its kid), as
// it signs ID tokens; header entries are added to the JOSE header (a nil
// value removes one).
func (p *OP) Sign(t testing.TB, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	key, err := p.storage.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = key.ID()
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key.Key())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var jtiSeq struct {
	sync.Mutex
	n int
}

// LogoutClaims returns the claims of a valid logout token for the OP's
// client, issued at now: iss, aud, iat, exp (two minutes), a fresh jti,
// events, and sid and sub when not empty.
func (p *OP) LogoutClaims(now time.Time, sid, sub string) jwt.MapClaims {
	jtiSeq.Lock()
	jtiSeq.n++
	jti := fmt.Sprintf("jti-%d-%d", now.UnixNano(), jtiSeq.n)
	jtiSeq.Unlock()
	c := jwt.MapClaims{
		"iss": p.Issuer, "aud": Client, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": jti, "events": map[string]any{LogoutEvent: map[string]any{}},
	}
	if sid != "" {
		c["sid"] = sid
	}
	if sub != "" {
		c["sub"] = sub
	}
	return c
}
