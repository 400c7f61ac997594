package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// Handler enforces server-side sessions on every request: it verifies
// the request's token, checks and touches the session in the store, and
// either passes the request on with identity headers or answers 401,
// 302, 400 or 503. It also serves the session endpoints (status,
// keepalive, logout, owner self-service) under Endpoints.
//
// After a valid request these placeholders are set:
// {http.session_guard.session_id_hash}, .user_id, .account_id, .role,
// .expires_in, .idle_expires_in, .absolute_expires_in, .warning, .reason
// and {http.auth.user.id}. After a rejected one, .reason says why.
type Handler struct {
	// Tokens are the places a token is taken from. Default: the
	// Authorization header with the Bearer scheme.
	Tokens []TokenSource `json:"tokens,omitempty"`

	// JWT configures token verification. Required unless Opaque is set.
	JWT *JWTConfig `json:"jwt,omitempty"`

	// Opaque, instead of JWT, makes the token an app's own opaque session
	// cookie, bound to a user by the upstream's login response (see
	// OpaqueConfig and opaque.go).
	Opaque *OpaqueConfig `json:"opaque,omitempty"`

	// Claims maps JWT claims to session fields. Defaults: session "sid",
	// user "sub", account "acct", role "role", login "auth_time" (falling
	// back to "iat"), name "name", email "email"; idle and absolute are
	// not mapped unless set.
	Claims token.ClaimMap `json:"claims,omitempty"`

	// DefaultAccount is the account of a token without the account claim
	// (single-tenant setups). Unset, such a token is rejected.
	DefaultAccount string `json:"default_account,omitempty"`

	// LoginURL, when set, makes browser navigations (GET or HEAD asking for
	// text/html) get a 302 redirect to it instead of a 401.
	LoginURL string `json:"login_url,omitempty"`

	// PassiveRaw are matcher sets; a request matching any of them is
	// checked but does not count as activity. A request with the header
	// Session-Passive: 1 is always passive.
	PassiveRaw caddyhttp.RawMatcherSets `json:"passive,omitempty" caddy:"namespace=http.matchers"`

	// Endpoints is the path prefix of the session endpoints. Default
	// "/.session".
	Endpoints string `json:"endpoints,omitempty"`

	// OwnerRoles are the roles (exact match) allowed to use the owner
	// self-service endpoints. Default ["owner"].
	OwnerRoles []string `json:"owner_roles,omitempty"`

	// Realm is the realm in WWW-Authenticate challenges. Default
	// "session_guard".
	Realm string `json:"realm,omitempty"`

	// MaxTokenSize is the largest token accepted, in bytes; larger ones
	// are rejected before parsing. Default 8192.
	MaxTokenSize int `json:"max_token_size,omitempty"`

	// MaxAuthAge, when set, is the oldest login a request may come from
	// (step-up for sensitive paths, RFC 9470): a session whose login is
	// older gets a 401 insufficient_user_authentication challenge with
	// max_age, or a navigation a 302 to login_url with
	// reason=reauth_required&max_age=N. The session goes on elsewhere.
	MaxAuthAge caddy.Duration `json:"max_auth_age,omitempty"`

	// CORS, when set, makes the gateway answer CORS preflights itself and
	// mark every answer to a listed origin (see cors.go). Without it
	// preflights pass to the upstream.
	CORS *CORSConfig `json:"cors,omitempty"`

	// Hooks, when set, enables the Standard Webhooks-signed revoke hook
	// at <endpoints>/revoke-hook (see revokehook.go).
	Hooks *HooksConfig `json:"hooks,omitempty"`

	app      *App
	verifier *token.Verifier
	sources  []token.Source
	passive  caddyhttp.MatcherSets
	owners   map[string]struct{}
	logger   *zap.Logger
	opaque   *opaqueState // nil unless Opaque is set
	csrf     *http.CrossOriginProtection
	hook     *standardwebhooks.Webhook // nil without Hooks
	indexed  *seenCache                // sessions this gateway indexed (backchannel.go)

	passiveLines []*caddyfile.Dispenser // Caddyfile passive lines, see parsePassive
}

// TokenSource is one place a token is taken from.
type TokenSource struct {
	// From is "header" or "cookie".
	From string `json:"from"`
	// Name is the header or cookie name.
	Name string `json:"name"`
	// Scheme is the required authorization scheme of a header, e.g.
	// "Bearer"; empty takes the header value as it is.
	Scheme string `json:"scheme,omitempty"`
}

// JWTConfig configures JWT verification.
type JWTConfig struct {
	// Algorithms is the allowlist, e.g. ["HS256"]. "none" is never
	// accepted. Required.
	Algorithms []string `json:"algorithms,omitempty"`
	// Secret is the HMAC key for HS256/384/512 (at least 32 bytes);
	// placeholders such as {env.SESSION_JWT_SECRET} are replaced.
	Secret string `json:"secret,omitempty"`
	// PublicKey is the path of a PEM file with the public key(s) for
	// RS*, PS*, ES* and EdDSA.
	PublicKey string `json:"public_key,omitempty"`
	// JWKSURL is a JWKS endpoint; keys are fetched on first use and
	// cached by kid. An unknown kid refetches at once (at most once a
	// second).
	JWKSURL string `json:"jwks_url,omitempty"`
	// Discovery is an OpenID Provider's issuer URL; its discovery document
	// gives the JWKS URL, the issuer and the algorithms (intersected with
	// Algorithms when set). Exclusive with JWKSURL.
	Discovery string `json:"discovery,omitempty"`
	// JWKSRefresh overrides the JWKS routine refresh interval, which
	// otherwise follows the response's Cache-Control max-age (1m to 24h;
	// 5m without one).
	JWKSRefresh caddy.Duration `json:"jwks_refresh,omitempty"`
	// Issuer, when set, must equal the iss claim.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be in the aud claim.
	Audience string `json:"audience,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 0.
	Leeway caddy.Duration `json:"leeway,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session_guard",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, loads the passive matchers, builds the token
// verifier and binds the handler to the session_guard app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("session_guard")
	if err != nil {
		return fmt.Errorf("getting session_guard app: %w", err)
	}
	h.app = appIface.(*App)

	if len(h.Tokens) == 0 {
		h.Tokens = []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}}
	}
	h.sources = h.sources[:0]
	for _, ts := range h.Tokens {
		h.sources = append(h.sources, token.Source{Kind: ts.From, Name: ts.Name, Scheme: ts.Scheme})
	}
	if h.Endpoints == "" {
		h.Endpoints = "/.session"
	}
	h.Endpoints = "/" + strings.Trim(h.Endpoints, "/")
	if len(h.OwnerRoles) == 0 {
		h.OwnerRoles = []string{"owner"}
	}
	h.owners = make(map[string]struct{}, len(h.OwnerRoles))
	for _, r := range h.OwnerRoles {
		h.owners[r] = struct{}{}
	}
	if h.Realm == "" {
		h.Realm = "session_guard"
	}
	if h.MaxTokenSize <= 0 {
		h.MaxTokenSize = 8192
	}
	// cookie requests from the cors origins are not cross-site
	h.csrf = http.NewCrossOriginProtection()
	if h.CORS != nil {
		if err := h.CORS.validate(); err != nil {
			return err
		}
		for _, o := range h.CORS.Origins {
			if err := h.csrf.AddTrustedOrigin(strings.TrimSuffix(o, "/")); err != nil {
				return fmt.Errorf("cors: %w", err)
			}
		}
	}
	if err := h.provisionRevocation(); err != nil {
		return err
	}
	if h.PassiveRaw != nil {
		mods, err := ctx.LoadModule(h, "PassiveRaw")
		if err != nil {
			return fmt.Errorf("loading passive matchers: %w", err)
		}
		if err := h.passive.FromInterface(mods); err != nil {
			return fmt.Errorf("passive matchers: %w", err)
		}
	}
	if h.Opaque != nil {
		return h.provisionOpaque()
	}
	if h.JWT == nil {
		return nil // Validate says why
	}
	cfg, err := h.TokenConfig(h.app.now)
	if err != nil {
		return err
	}
	cfg.Context = ctx
	if h.verifier, err = token.New(cfg); err != nil {
		return fmt.Errorf("jwt: %w", err)
	}
	return nil
}

// TokenConfig is the verifier configuration of the handler's jwt and
// claims options, with placeholders replaced and the public key file read.
// Provision uses it; so does the inspect command.
func (h *Handler) TokenConfig(now func() time.Time) (token.Config, error) {
	if h.JWT == nil {
		return token.Config{}, errors.New("jwt: configuration is required")
	}
	cfg := token.Config{
		Algorithms:  h.JWT.Algorithms,
		JWKSURL:     h.JWT.JWKSURL,
		Discovery:   h.JWT.Discovery,
		JWKSRefresh: time.Duration(h.JWT.JWKSRefresh),
		Issuer:      h.JWT.Issuer,
		Audience:    h.JWT.Audience,
		Leeway:      time.Duration(h.JWT.Leeway),
		Claims:      h.claimMap(),
		Now:         now,
	}
	repl := caddy.NewReplacer()
	if h.JWT.Secret != "" {
		cfg.Secret = []byte(repl.ReplaceAll(h.JWT.Secret, ""))
	}
	if h.JWT.PublicKey != "" {
		pemBytes, err := os.ReadFile(repl.ReplaceAll(h.JWT.PublicKey, ""))
		if err != nil {
			return cfg, fmt.Errorf("jwt public_key: %w", err)
		}
		if cfg.PublicKeys, err = token.LoadPublicKeys(pemBytes); err != nil {
			return cfg, fmt.Errorf("jwt public_key: %w", err)
		}
	}
	return cfg, nil
}

func (h *Handler) claimMap() token.ClaimMap {
	m := h.Claims
	m.DefaultAccount = h.DefaultAccount
	return m
}

// Cleanup stops the background JWKS refresh.
func (h *Handler) Cleanup() error {
	if h.verifier != nil {
		h.verifier.Close()
	}
	return nil
}

// Validate checks the handler's configuration; Caddy calls it after
// Provision.
func (h *Handler) Validate() error {
	if h.Opaque != nil {
		if err := h.validateOpaque(); err != nil {
			return err
		}
	} else if h.JWT == nil {
		return errors.New("jwt: configuration is required")
	}
	if err := token.ValidateSources(h.sources); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if h.LoginURL != "" && !strings.HasPrefix(h.LoginURL, "/") && !strings.HasPrefix(h.LoginURL, "https://") && !strings.HasPrefix(h.LoginURL, "http://") {
		return fmt.Errorf("login_url %q: must be a path or an http(s) URL", h.LoginURL)
	}
	if h.CORS != nil {
		return h.CORS.validate()
	}
	return nil
}

// identityHeaders are set by the gateway only; any client-sent copy is
// removed before the request goes upstream.
var identityHeaders = []string{"Session-Id-Hash", "Session-User", "Session-Account", "Session-Role"}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripClientHeaders(r.Header)
	if len(r.Trailer) > 0 {
		stripClientHeaders(r.Trailer)
		r.Body = trailerGuard{ReadCloser: r.Body, r: r}
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)

	if h.CORS != nil {
		var done bool
		if w, done = h.CORS.handle(w, r); done {
			return nil
		}
	} else if isPreflight(r) {
		// CORS preflights never carry credentials; the app answers them.
		return next.ServeHTTP(w, r)
	}
	if p := h.app.pooled; p != nil {
		// keeps the Redis client open until this request is done, even
		// if its config is unloaded meanwhile (see pooledStore.Destruct)
		p.hold()
		defer p.release()
	}

	if ep, ok := h.endpoint(r.URL.Path); ok {
		return h.serveEndpoint(w, r, repl, ep)
	}

	var sw *sessionWriter
	if h.opaque != nil {
		sw = h.newSessionWriter(w, r) // binds sessions from the response
		w = sw
	}
	ident, res, rejected := h.check(w, r, repl, h.isPassive(r))
	h.observeDecision(endpointProxy, repl, rejected, ident, res)
	if rejected {
		return nil
	}
	if ident == nil { // opaque mode: no session is bound to the cookie
		return sw.serve(next)
	}
	if sw == nil {
		sw = h.newSessionWriter(w, r)
	}
	// The identity headers (stripClientHeaders removed any the client sent).
	idv := &sw.idv
	*idv = [4]string{ident.SessionHash, ident.UserID, ident.AccountID, ident.Role}
	r.Header["Session-Id-Hash"] = idv[0:1:1]
	r.Header["Session-User"] = idv[1:2:2]
	r.Header["Session-Account"] = idv[2:3:3]
	if ident.Role != "" {
		r.Header["Session-Role"] = idv[3:4:4]
	}
	if h.MaxAuthAge > 0 && h.stepUp(w, r, repl, loginOf(ident, res), h.decisionTime(res)) {
		return nil
	}
	var hdrs expiry
	if res == nil { // store down, failing open
		hdrs = expiry{unknown: true}
		repl.Set("http.auth.user.id", ident.UserID)
	} else {
		hdrs = h.expiryHeaders(*res)
		h.setPlaceholders(r, repl, ident, hdrs)
	}
	cors := headerValue(r.Header, "Origin") != ""
	// Set now, so that error responses written by Caddy carry them too,
	// and again just before the header is written, so the upstream cannot
	// override them.
	hdrs.apply(w.Header(), cors)
	sw.setExpiry(hdrs, cors)
	return sw.serve(next)
}

// loginOf is the login time step-up checks: the token's (a re-issued
// token of the same session carries the fresh auth_time), else, in
// opaque mode, the session's as the store recorded it.
func loginOf(ident *token.Identity, res *store.TouchResult) time.Time {
	if !ident.LoginAt.IsZero() || res == nil {
		return ident.LoginAt
	}
	return res.AbsoluteExpiresAt.Add(-res.Policy.Absolute)
}

// decisionTime is the time of the store's decision, else the gateway's.
func (h *Handler) decisionTime(res *store.TouchResult) time.Time {
	if res == nil {
		return h.app.now()
	}
	return res.Now
}

// stripClientHeaders deletes every client-sent identity header and
// every Session-Guard-Bind-* header (a client may never send them), also
// under names that differ only in case or in '_' or '.' for '-' (which
// CGI-style upstreams fold into the same variable). It also takes those
// names out of the Connection header: the proxy drops the headers a
// Connection header names, and would drop the gateway's own with them.
func stripClientHeaders(hdr http.Header) {
	for name := range hdr {
		if gatewayOwned(name) {
			delete(hdr, name)
		}
	}
	if conn, ok := hdr["Connection"]; ok {
		if conn = dropOwnedTokens(conn); len(conn) > 0 {
			hdr["Connection"] = conn
		} else {
			delete(hdr, "Connection")
		}
	}
}

// trailerGuard removes client-sent identity and bind trailers from its
// request once the body is read: net/http fills trailers in only then.
type trailerGuard struct {
	io.ReadCloser
	r *http.Request
}

func (g trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		stripClientHeaders(g.r.Trailer)
	}
	return n, err
}

// gatewayOwned reports whether name is an identity or bind header,
// ignoring case and '_' for '-'. It does not allocate.
func gatewayOwned(name string) bool {
	if len(name) < len("Session-Role") || !strings.EqualFold(name[:7], "session") {
		return false
	}
	if isBindHeader(name) {
		return true
	}
	for _, id := range identityHeaders {
		if sameHeaderName(name, id) {
			return true
		}
	}
	return false
}

// dropOwnedTokens returns the Connection header values without the
// options that name a gateway-owned header. It allocates only when it
// finds one.
func dropOwnedTokens(vals []string) []string {
	found := false
	for _, v := range vals {
		for opt := range strings.SplitSeq(v, ",") {
			if gatewayOwned(strings.TrimSpace(opt)) {
				found = true
			}
		}
	}
	if !found {
		return vals
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		var keep []string
		for opt := range strings.SplitSeq(v, ",") {
			if opt = strings.TrimSpace(opt); opt != "" && !gatewayOwned(opt) {
				keep = append(keep, opt)
			}
		}
		if len(keep) > 0 {
			out = append(out, strings.Join(keep, ", "))
		}
	}
	return out
}

// sameHeaderName reports whether header names a and b are equal ignoring
// ASCII case and treating '_' and '.' as '-'. It does not allocate.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c == '_' || c == '.':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// check runs steps 1 to 4 of every request: token, verification, the
// store's atomic check-and-touch, and the answer for a rejected request.
// It returns rejected=true when it has written the response. With the
// store down and on_store_error open it returns the identity and a nil
// result.
func (h *Handler) check(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, passive bool) (*token.Identity, *store.TouchResult, bool) {
	if h.opaque != nil {
		return h.checkOpaque(w, r, repl, passive)
	}
	raw, err := token.Extract(r, h.sources, h.MaxTokenSize)
	switch {
	case errors.Is(err, token.ErrNoToken):
		h.debug("no token", r, err)
		repl.Set("http.session_guard.reason", "no_token")
		h.unauthorized(w, r, "", "", "")
		return nil, nil, true
	case err != nil:
		h.badCredential(w, r, repl, "token", err)
		return nil, nil, true
	}
	ident, err := h.verifier.Verify(r.Context(), raw)
	if err != nil {
		if errors.Is(err, token.ErrKeyUnavailable) {
			h.logger.Error("signing keys unavailable", zap.Error(err))
			repl.Set("http.session_guard.reason", "key_unavailable")
			h.unavailable(w)
			return nil, nil, true
		}
		h.debugRejection(r, err)
		repl.Set("http.session_guard.reason", "invalid_token")
		h.unauthorized(w, r, "invalid_token", publicMessage(err), "")
		return nil, nil, true
	}
	// the request and its result in one allocation
	t := &struct {
		req store.TouchRequest
		res store.TouchResult
	}{req: h.touchRequest(r, ident, passive)}
	req, res := &t.req, &t.res
	*res, err = h.app.store.Touch(r.Context(), req)
	if err != nil {
		if h.storeFailed(w, r, repl, err, true) {
			repl.Set("http.auth.user.id", ident.UserID)
			return ident, nil, false
		}
		return nil, nil, true
	}
	if res.Status == session.WrongUser {
		// another user's token for this session (shared or guessed sid)
		h.debug("token user is not the session's user", r, nil)
		repl.Set("http.session_guard.reason", "invalid_token")
		h.unauthorized(w, r, "invalid_token", "token does not belong to the session's user", "")
		return nil, nil, true
	}
	if res.Status == session.LimitReached {
		h.limitReached(w, r, repl, ident.AccountID)
		return nil, nil, true
	}
	h.logEvicted(ident.AccountID, res.Evicted)
	if res.Status != session.Active {
		reason := res.Status.String()
		repl.Set("http.session_guard.reason", reason)
		repl.Set("http.session_guard.session_id_hash", req.SessionHash)
		if c := h.logger.Check(zapcore.DebugLevel, "session rejected"); c != nil {
			c.Write(zap.String("reason", reason), zap.String("session_id_hash", req.SessionHash), zap.String("account", ident.AccountID))
		}
		h.ended(w, r, res.Status)
		return nil, nil, true
	}
	if h.indexSeen(w, r, repl, ident, req, res) {
		return nil, nil, true
	}
	return ident, res, false
}

// storeFailed handles a failed store call: a client that went away is
// only noted at debug level; an outage is logged and, when mayOpen and
// on_store_error is open, reported as failing open (true). Otherwise it
// answers 503 and returns false.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, err error, mayOpen bool) bool {
	if r.Context().Err() != nil {
		h.debug("request canceled during the store call", r, err)
		repl.Set("http.session_guard.reason", "canceled")
		h.unavailable(w)
		return false
	}
	if c := h.logger.Check(zapcore.ErrorLevel, "session store unavailable"); c != nil {
		c.Write(zap.Error(err))
	}
	repl.Set("http.session_guard.reason", "store_unavailable")
	if mayOpen && h.app.OnStoreError == OnStoreErrorOpen {
		return true
	}
	h.unavailable(w)
	return false
}

func (h *Handler) touchRequest(r *http.Request, ident *token.Identity, passive bool) store.TouchRequest {
	return store.TouchRequest{
		Account:     ident.AccountID,
		SessionHash: ident.SessionHash,
		User:        ident.UserID,
		Role:        ident.Role,
		Name:        ident.Name,
		Email:       ident.Email,
		IP:          clientIP(r),
		UserAgent:   session.CompactUserAgent(headerValue(r.Header, "User-Agent")),
		LoginAt:     ident.LoginAt,
		IssuedAt:    ident.IssuedAt,
		NotAfter:    ident.ExpiresAt.Add(time.Duration(h.JWT.Leeway)),
		Claimed:     policy.Claimed{Idle: ident.Idle, Absolute: ident.Absolute},
		Passive:     passive,
		Policy:      &h.app.policy,

		TouchInterval: time.Duration(h.app.TouchInterval),
	}
}

func (h *Handler) isPassive(r *http.Request) bool {
	if headerValue(r.Header, "Session-Passive") == "1" {
		return true
	}
	if len(h.passive) == 0 {
		return false
	}
	ok, err := h.passive.AnyMatchWithError(r)
	return err == nil && ok
}

// expiry holds the expiry headers of a valid session's response.
type expiry struct {
	expiresIn, idleIn, absIn int64
	warning, reason          string
	unknown                  bool // store down, failing open
	// values holds the five header values, formatted once (by
	// expiryHeaders), in the order of exposedHeaders; apply copies them,
	// they are never in a header.
	values [5]string
}

func (h *Handler) expiryHeaders(res store.TouchResult) expiry {
	idle := seconds(res.IdleExpiresAt.Sub(res.Now))
	abs := seconds(res.AbsoluteExpiresAt.Sub(res.Now))
	e := expiry{idleIn: idle, absIn: abs, expiresIn: idle, reason: "idle", warning: "none"}
	if abs <= idle {
		e.expiresIn, e.reason = abs, "absolute"
	}
	if time.Duration(e.expiresIn)*time.Second <= time.Duration(h.app.WarnBefore) {
		e.warning = "soon"
	}
	// One string and one slice for all five values, not one each.
	var buf [60]byte
	b := strconv.AppendInt(buf[:0], e.expiresIn, 10)
	n1 := len(b)
	b = strconv.AppendInt(b, e.idleIn, 10)
	n2 := len(b)
	b = strconv.AppendInt(b, e.absIn, 10)
	nums := string(b)
	e.values = [5]string{nums[:n1], nums[n1:n2], nums[n2:], e.warning, e.reason}
	return e
}

// seconds rounds a remaining duration down to whole seconds, never
// promising more time than is left.
func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

func (e *expiry) apply(hdr http.Header, cors bool) {
	if e.unknown {
		hdr.Set("Session-Expiry-Warning", "unknown")
		return
	}
	// Canonical names, assigned directly: what Set does, with one array
	// for the five instead of a slice each. It is a fresh copy, so a
	// handler that edits a value in place (header replace) cannot change
	// what the next apply asserts; the capacity of one keeps an Add from
	// writing into the neighbour's value. Headers that still hold exactly
	// these values (the upstream left them alone) are left as they are.
	if !e.inPlace(hdr) {
		v := e.values // a copy
		for i, name := range exposedHeaders {
			hdr[name] = v[i : i+1 : i+1]
		}
	}
	if cors {
		exposeHeaders(hdr)
	}
}

// inPlace reports whether hdr holds exactly e's five values, one each.
func (e *expiry) inPlace(hdr http.Header) bool {
	for i, name := range exposedHeaders {
		if v := hdr[name]; len(v) != 1 || v[0] != e.values[i] {
			return false
		}
	}
	return true
}

// exposedHeaders are listed in Access-Control-Expose-Headers when the
// request has an Origin.
var exposedHeaders = []string{"Session-Expires-In", "Session-Idle-Expires-In", "Session-Absolute-Expires-In", "Session-Expiry-Warning", "Session-Expiry-Reason"}

func exposeHeaders(hdr http.Header) {
	have := make(map[string]bool)
	for _, v := range hdr.Values("Access-Control-Expose-Headers") {
		for _, f := range strings.Split(v, ",") {
			have[strings.ToLower(strings.TrimSpace(f))] = true
		}
	}
	if have["*"] {
		// "*" does not cover these on credentialed requests; list them.
		have = map[string]bool{}
	}
	var add []string
	for _, n := range exposedHeaders {
		if !have[strings.ToLower(n)] {
			add = append(add, n)
		}
	}
	if len(add) > 0 {
		hdr.Add("Access-Control-Expose-Headers", strings.Join(add, ", "))
	}
}

// placeholderVar is the request variable holding a request's
// placeholderState.
const placeholderVar = "session_guard_placeholders"

// placeholderState is what the placeholders of a valid session are read
// from; a second session_guard run on the same request (nested routes,
// handle_errors) replaces it.
type placeholderState struct {
	ident *token.Identity
	e     expiry
}

// setPlaceholders provides the placeholders of a valid session. Most
// requests read none of them, so they are one provider computing a value
// when it is read, not ten boxed values. http.auth.user.id is set
// statically, so that it replaces what an earlier authentication handler
// set, as Caddy's own authentication does.
func (h *Handler) setPlaceholders(r *http.Request, repl *caddy.Replacer, ident *token.Identity, e expiry) {
	repl.Set("http.auth.user.id", ident.UserID)
	if st, ok := caddyhttp.GetVar(r.Context(), placeholderVar).(*placeholderState); ok {
		st.ident, st.e = ident, e
		return
	}
	st := &placeholderState{ident: ident, e: e}
	caddyhttp.SetVar(r.Context(), placeholderVar, st)
	repl.Map(st.get)
}

func (st *placeholderState) get(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "http.session_guard.")
	if !ok {
		return nil, false
	}
	ident, e := st.ident, st.e
	switch name {
	case "session_id_hash":
		return ident.SessionHash, true
	case "user_id":
		return ident.UserID, true
	case "account_id":
		return ident.AccountID, true
	case "role":
		return ident.Role, true
	case "expires_in":
		return e.expiresIn, true
	case "idle_expires_in":
		return e.idleIn, true
	case "absolute_expires_in":
		return e.absIn, true
	case "warning":
		return e.warning, true
	case "reason":
		return e.reason, true
	}
	return nil, false
}

func (h *Handler) debug(msg string, r *http.Request, err error) {
	if c := h.logger.Check(zapcore.DebugLevel, msg); c != nil {
		c.Write(zap.String("remote_ip", clientIP(r)), zap.String("uri", r.URL.Path), zap.Error(err))
	}
}

// debugRejection logs why a token was refused, with the expected and
// received values of a mismatched iss, aud, alg or kid (never the token).
func (h *Handler) debugRejection(r *http.Request, err error) {
	c := h.logger.Check(zapcore.DebugLevel, "invalid token")
	if c == nil {
		return
	}
	fields := []zap.Field{zap.String("remote_ip", clientIP(r)), zap.String("uri", r.URL.Path), zap.Error(err)}
	var m *token.Mismatch
	if errors.As(err, &m) {
		fields = append(fields, zap.String("claim", m.Field), zap.String("expected", m.Expected), zap.String("received", m.Received))
	}
	c.Write(fields...)
}

// headerValue is hdr.Get(name) for a name in canonical form, which it
// does not canonicalise again.
func headerValue(hdr http.Header, name string) string {
	if v := hdr[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
