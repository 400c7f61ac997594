package caddymodule

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

// Opaque-cookie mode: for apps that never heard of JWTs. The session is
// the app's own session cookie; the gateway keys its record by an HMAC of
// the cookie value and learns who the session belongs to from the
// upstream's login response (the Session-Guard-Bind-* headers).

// OpaqueConfig configures opaque-cookie mode, used instead of JWT
// verification. The handler then needs exactly one token source, a
// cookie: the app's session cookie.
type OpaqueConfig struct {
	// Key is the HMAC-SHA-256 key session ids are derived from, at least
	// 32 bytes; placeholders such as {env.SESSION_COOKIE_KEY} are
	// replaced. Default: a random key generated once and kept in the
	// store, shared by every gateway using the store.
	Key string `json:"key,omitempty"`

	// Unbound says what happens to a request without a cookie, or with a
	// cookie no session is bound to: "pass" (default) passes it upstream
	// without identity headers; "reject" answers 401 as for a missing
	// token.
	Unbound string `json:"unbound,omitempty"`

	// CookiePath and CookieDomain are the Path and Domain attributes of
	// the Set-Cookie that expires the cookie of an ended session; they
	// must match the app's, or the browser keeps the cookie. Default
	// path "/", no domain.
	CookiePath   string `json:"cookie_path,omitempty"`
	CookieDomain string `json:"cookie_domain,omitempty"`
}

// Unbound modes.
const (
	UnboundPass   = "pass"
	UnboundReject = "reject"
)

// maxOpaqueCookie is the longest cookie value accepted in opaque mode.
const maxOpaqueCookie = 4096

// bindPrefix starts the names of the headers the upstream binds a
// session with. Lower case, with '-' for '_'.
const bindPrefix = "session-guard-bind-"

// opaqueSecretName is the name of the generated key in the store.
const opaqueSecretName = "opaque_cookie_key"

// opaqueState is the provisioned state of opaque mode.
type opaqueState struct {
	cookie string // the cookie's name
	reject bool
	path   string
	domain string
	mu     sync.Mutex
	key    []byte // nil until configured or fetched from the store
}

// validateOpaque checks the opaque configuration.
func (h *Handler) validateOpaque() error {
	if h.JWT != nil {
		return errors.New("opaque: jwt and opaque are mutually exclusive")
	}
	if len(h.Tokens) != 1 || h.Tokens[0].From != token.SourceCookie {
		return errors.New("opaque: needs exactly one token source, a cookie (token cookie <name>)")
	}
	switch h.Opaque.Unbound {
	case "", UnboundPass, UnboundReject:
	default:
		return fmt.Errorf("opaque: unbound %q: want %q or %q", h.Opaque.Unbound, UnboundPass, UnboundReject)
	}
	path, domain := cmp.Or(h.Opaque.CookiePath, "/"), h.Opaque.CookieDomain
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, ";\r\n") || strings.ContainsAny(domain, "; \t\r\n") {
		return fmt.Errorf("opaque: invalid cookie_path %q or cookie_domain %q", path, domain)
	}
	return nil
}

// provisionOpaque sets up the state of opaque mode.
func (h *Handler) provisionOpaque() error {
	st := &opaqueState{
		cookie: h.Tokens[0].Name, reject: h.Opaque.Unbound == UnboundReject,
		path: cmp.Or(h.Opaque.CookiePath, "/"), domain: h.Opaque.CookieDomain,
	}
	if h.app.opaqueStore == nil {
		return fmt.Errorf("opaque: the store (%T) cannot keep opaque-cookie sessions", h.app.store)
	}
	if h.Opaque.Key != "" {
		key := caddy.NewReplacer().ReplaceAll(h.Opaque.Key, "")
		if len(key) < 32 {
			return errors.New("opaque: key must be at least 32 bytes (is the environment variable set?)")
		}
		st.key = []byte(key)
	} else if _, ok := h.app.store.(store.SecretStore); !ok {
		return fmt.Errorf("opaque: the store (%T) cannot keep a generated key; configure key", h.app.store)
	}
	h.opaque = st
	return nil
}

// opaqueKey returns the HMAC key, fetching (or creating) the generated
// one from the store on first use. Concurrent first requests may all ask
// the store; it hands every one of them the same key. The lock is not
// held during the store call, so a slow store does not queue requests.
func (h *Handler) opaqueKey(r *http.Request) ([]byte, error) {
	st := h.opaque
	st.mu.Lock()
	key := st.key
	st.mu.Unlock()
	if key != nil {
		return key, nil
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generating the opaque cookie key: %w", err)
	}
	key, err := h.app.store.(store.SecretStore).Secret(r.Context(), opaqueSecretName, fresh)
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: stored opaque cookie key is too short", store.ErrUnavailable)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.key == nil {
		st.key = key
	}
	return st.key, nil
}

// opaqueID is the session id of a cookie value: the unpadded base64url
// HMAC-SHA-256 of the value. Like a JWT's sid it is never stored; the
// store keys the session by session.HashID of it.
func opaqueID(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCookieValue reports whether v is a cookie value opaque mode
// accepts: 1 to maxOpaqueCookie printable ASCII characters, no space,
// no ';'.
func validCookieValue(v string) bool {
	if v == "" || len(v) > maxOpaqueCookie {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// checkOpaque is check in opaque mode. On the proxy path (w is a
// sessionWriter) a request without a bound session is passed on: it
// returns a nil identity and rejected=false, and unbound reject turns it
// into a 401. On the endpoints it is always a 401.
func (h *Handler) checkOpaque(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, passive bool) (*token.Identity, *store.TouchResult, bool) {
	sw, proxy := w.(*sessionWriter)
	unbound := func(why string) (*token.Identity, *store.TouchResult, bool) {
		repl.Set("http.session_guard.reason", why)
		if proxy && !h.opaque.reject {
			return nil, nil, false
		}
		h.unauthorized(w, r, "", "", "")
		return nil, nil, true
	}
	raw, err := token.Extract(r, h.sources, maxOpaqueCookie)
	switch {
	case errors.Is(err, token.ErrNoToken):
		return unbound("no_token")
	case err == nil && !validCookieValue(raw):
		err = fmt.Errorf("%w: cookie %s is malformed", token.ErrInvalidRequest, h.opaque.cookie)
	}
	if err != nil {
		h.badCredential(w, r, repl, "cookie", err)
		return nil, nil, true
	}
	res, id, hash, err := h.lookupOpaque(r, raw, passive)
	if err != nil {
		if h.storeFailed(w, r, repl, err, proxy) {
			// nobody can tell whose cookie it is: pass it as unbound
			w.Header().Set("Session-Expiry-Warning", "unknown")
			return nil, nil, false
		}
		return nil, nil, true
	}
	switch res.Status {
	case session.Unbound:
		return unbound("unbound")
	case session.Active:
	default:
		reason := res.Status.String()
		repl.Set("http.session_guard.reason", reason)
		repl.Set("http.session_guard.session_id_hash", hash)
		if c := h.logger.Check(zapcore.DebugLevel, "session rejected"); c != nil {
			c.Write(zap.String("reason", reason), zap.String("session_id_hash", hash), zap.String("account", res.Account))
		}
		h.expireOpaqueCookie(w, r)
		h.ended(w, r, res.Status)
		return nil, nil, true
	}
	ident := &token.Identity{
		SessionID: id, SessionHash: hash, UserID: res.User, AccountID: res.Account,
		Role: res.Role, Name: res.Name, Email: res.Email,
	}
	if proxy {
		sw.bound = ident
	}
	return ident, &res.TouchResult, false
}

// lookupOpaque finds, checks and touches the session of a cookie value
// in one store operation. It returns the session id and its hash too.
func (h *Handler) lookupOpaque(r *http.Request, value string, passive bool) (store.OpaqueResult, string, string, error) {
	key, err := h.opaqueKey(r)
	if err != nil {
		return store.OpaqueResult{}, "", "", err
	}
	id := opaqueID(key, value)
	hash := session.HashID(id)
	res, err := h.app.opaqueStore.Lookup(r.Context(), &store.TouchRequest{
		SessionHash: hash,
		Passive:     passive,

		TouchInterval: time.Duration(h.app.TouchInterval),
		Policy:        &h.app.policy,
	})
	return res, id, hash, err
}

// expireOpaqueCookie adds a Set-Cookie that makes the browser drop the
// app's cookie, with the configured path and domain. Secure follows the
// request's scheme.
func (h *Handler) expireOpaqueCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: h.opaque.cookie, Value: "", Path: h.opaque.path, Domain: h.opaque.domain,
		MaxAge: -1, Expires: time.Unix(0, 0), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

// isBindHeader reports whether name is a Session-Guard-Bind-* header in
// any case, also with '_' for '-'.
func isBindHeader(name string) bool {
	return len(name) >= len(bindPrefix) && sameHeaderName(name[:len(bindPrefix)], bindPrefix)
}

// bindInfo is what the upstream's Session-Guard-Bind-* headers say.
type bindInfo struct {
	user, account, role, name, email string
	present                          bool
}

// valid reports whether every bind value may become a header value.
func (b bindInfo) valid() bool {
	return token.ValidValue(b.user) && token.ValidValue(b.account) && token.ValidValue(b.role) &&
		token.ValidValue(b.name) && token.ValidValue(b.email)
}

// takeBind reads and deletes the bind headers of a response. Values are
// trimmed and cut at 256 bytes; a field sent twice counts as absent.
func takeBind(hdr http.Header) bindInfo {
	var b bindInfo
	for name, vals := range hdr {
		if !isBindHeader(name) {
			continue
		}
		delete(hdr, name)
		b.present = true
		v := ""
		if len(vals) == 1 {
			v = truncate(strings.TrimSpace(vals[0]), 256)
		}
		switch strings.ToLower(name[len(bindPrefix):]) {
		case "user":
			b.user = v
		case "account":
			b.account = v
		case "role":
			b.role = v
		case "name":
			b.name = v
		case "email":
			b.email = v
		}
	}
	return b
}

// bindOrEnd binds or ends the opaque session according to the response
// header, once. It reports false when it has replaced the response (a
// failed bind).
func (sw *sessionWriter) bindOrEnd() bool {
	sw.binding = false
	h, r := sw.h, sw.r
	hdr := sw.ResponseWriterWrapper.Header()
	b := takeBind(hdr)
	set, cleared := responseCookie(hdr, h.opaque.cookie, h.app.now())
	if b.present && !sw.bindFrom(set, b) {
		return false
	}
	if cleared && sw.bound != nil {
		_, err := h.app.store.Revoke(r.Context(), store.RevokeRequest{
			Account: sw.bound.AccountID, Scope: store.ScopeSession, Sessions: []string{sw.bound.SessionHash},
			Policy: &h.app.policy, By: events.ByLogout,
		})
		if err != nil {
			h.logger.Error("ending the session of a cleared cookie: session store unavailable", zap.Error(err))
		}
	}
	return true
}

// bindFrom binds the cookie value set by the response to what the bind
// headers say. Only a response that sets the cookie to a new value binds
// (session-fixation defence): headers without one are dropped and
// logged. It reports false when it has replaced the response (a failed
// bind).
func (sw *sessionWriter) bindFrom(set string, b bindInfo) bool {
	h, r := sw.h, sw.r
	if b.user == "" || b.account == "" || !b.valid() {
		h.logger.Warn("upstream sent bind headers without a valid Session-Guard-Bind-User and -Account; not bound")
		return true
	}
	old, _ := token.Extract(r, h.sources, maxOpaqueCookie)
	if set == "" || set == old || !validCookieValue(set) {
		h.logger.Warn("upstream sent bind headers without setting a new session cookie; not bound", zap.String("cookie", h.opaque.cookie))
		return true
	}
	err := sw.bind(set, b)
	if errors.Is(err, errBoundElsewhere) {
		h.logger.Warn("upstream bound a cookie value that belongs to another session; not bound", zap.String("cookie", h.opaque.cookie))
		return true
	}
	if errors.Is(err, errLimitReached) {
		// the login is refused: no cookie, no upstream body
		sw.replace()
		repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if !ok {
			repl = caddy.NewReplacer()
		}
		h.limitReached(sw.ResponseWriterWrapper.ResponseWriter, r, repl, b.account)
		return false
	}
	if err != nil {
		h.logger.Error("binding session: session store unavailable", zap.Error(err))
		sw.replace()
		h.unavailable(sw.ResponseWriterWrapper.ResponseWriter)
		return false
	}
	return true
}

// replace drops the upstream's response header and body, for an answer
// of the gateway's own.
func (sw *sessionWriter) replace() {
	hdr := sw.ResponseWriterWrapper.Header()
	for k := range hdr {
		delete(hdr, k)
	}
	sw.drop = true
}

// errBoundElsewhere: the cookie value is bound to another user, account
// or role already; a bound cookie is never re-bound.
var errBoundElsewhere = errors.New("cookie value is bound to another identity")

// errLimitReached: the store refused the new session, its user being at
// the account's session limit (on_limit deny).
var errLimitReached = errors.New("session limit reached")

// bind records the session of a cookie value.
func (sw *sessionWriter) bind(value string, b bindInfo) error {
	h, r := sw.h, sw.r
	key, err := h.opaqueKey(r)
	if err != nil {
		return err
	}
	hash := session.HashID(opaqueID(key, value))
	prev, err := h.app.opaqueStore.Lookup(r.Context(), &store.TouchRequest{
		SessionHash: hash, Passive: true, Policy: &h.app.policy,
	})
	if err != nil {
		return err
	}
	if prev.Status != session.Unbound && (prev.User != b.user || prev.Account != b.account || prev.Role != b.role) {
		return errBoundElsewhere
	}
	res, err := h.app.opaqueStore.Bind(r.Context(), &store.TouchRequest{
		Account: b.account, SessionHash: hash,
		User: b.user, Role: b.role, Name: b.name, Email: b.email,
		IP: clientIP(r), UserAgent: session.CompactUserAgent(r.UserAgent()),
		Policy: &h.app.policy,
	})
	if err == nil && res.Status == session.LimitReached {
		return errLimitReached
	}
	if err == nil {
		h.logEvicted(b.account, res.Evicted)
		if c := h.logger.Check(zapcore.DebugLevel, "session bound"); c != nil {
			c.Write(zap.String("session_id_hash", hash), zap.String("account", b.account))
		}
	}
	return err
}

// responseCookie returns the value the response sets for the cookie
// name, and whether it clears it (empty value, Max-Age <= 0 or Expires
// in the past). The last Set-Cookie of the name wins.
func responseCookie(hdr http.Header, name string, now time.Time) (value string, cleared bool) {
	found := false
	for _, c := range (&http.Response{Header: http.Header{"Set-Cookie": hdr.Values("Set-Cookie")}}).Cookies() {
		if c.Name != name {
			continue
		}
		found = true
		value = c.Value
		cleared = c.Value == "" || c.MaxAge < 0 || (!c.Expires.IsZero() && !c.Expires.After(now))
	}
	if !found || cleared {
		return "", found && cleared
	}
	return value, false
}
