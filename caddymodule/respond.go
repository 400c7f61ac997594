package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessionguard/sessionguard/internal/manage"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/token"
)

// The JSON response writer and the UTF-8-safe truncation are shared
// with the admin API.
var (
	writeJSON = manage.WriteJSON
	truncate  = manage.Truncate
)

// isNavigation reports whether r is a browser navigation: a GET or HEAD
// that asks for HTML.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// redirectToLogin answers a navigation with 302 to the login URL, with
// ?reason=... when reason is set. It reports false when no login URL is
// configured or r is no navigation.
// With reauth, the login page is told (reauth=1) to ask the provider for
// a fresh authentication: a silent re-issue would not start a new session.
func (h *Handler) redirectToLogin(w http.ResponseWriter, r *http.Request, reason string, reauth bool) bool {
	q := ""
	if reason != "" {
		q = "reason=" + url.QueryEscape(reason)
		if reauth {
			q += "&reauth=1"
		}
	}
	return h.redirectWith(w, r, q)
}

// redirectWith redirects a navigation to login_url with query added, and
// reports whether it did.
func (h *Handler) redirectWith(w http.ResponseWriter, r *http.Request, query string) bool {
	if h.LoginURL == "" || !isNavigation(r) {
		return false
	}
	loc := h.LoginURL
	if query != "" {
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		loc += sep + query
	}
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
	return true
}

// unauthorized answers 401 (or 302 for navigations) for a missing or
// invalid token. With an empty code the challenge carries only the realm.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, code, desc, reason string) {
	if code == "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", h.Realm))
	} else {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q, error=%q, error_description=%q", h.Realm, code, desc))
	}
	if h.redirectToLogin(w, r, reason, false) {
		return
	}
	body := map[string]string{"error": code}
	if code == "" {
		body = map[string]string{"error": "unauthorized", "error_description": "no session token"}
	} else if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

// ended answers a request of an expired or revoked session.
// badCredential answers a credential that could not be read: 400
// invalid_request (duplicated, or not where it may be) or 401
// invalid_token (malformed), and sets the reason placeholder.
func (h *Handler) badCredential(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, what string, err error) {
	if errors.Is(err, token.ErrInvalidRequest) {
		h.debug("invalid "+what+" request", r, err)
		repl.Set("http.session_guard.reason", "invalid_request")
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q, error="invalid_request"`, h.Realm))
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": publicMessage(err)})
		return
	}
	h.debug("malformed "+what, r, err)
	repl.Set("http.session_guard.reason", "invalid_token")
	h.unauthorized(w, r, "invalid_token", publicMessage(err), "")
}

func (h *Handler) ended(w http.ResponseWriter, r *http.Request, st session.Status) {
	hdr := w.Header()
	hdr.Set("Session-Expiry-Warning", "now")
	hdr.Set("Session-Expiry-Reason", st.String())
	if r.Header.Get("Origin") != "" {
		exposeHeaders(hdr)
	}
	var body map[string]string
	var desc, reason string
	switch st {
	case session.Revoked:
		body = map[string]string{"error": "session_revoked"}
		desc, reason = "session revoked", "session_revoked"
	default:
		body = map[string]string{"error": "session_expired", "reason": st.String()}
		desc, reason = "session expired ("+st.String()+")", "session_expired"
	}
	hdr.Set("WWW-Authenticate", fmt.Sprintf("Bearer error=\"invalid_token\", error_description=%q", desc))
	if h.redirectToLogin(w, r, reason, h.opaque == nil) {
		return
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

// unavailable answers 503 when the store (or a key source) cannot be
// reached. It never answers 401 and never touches the user's cookie.
func (h *Handler) unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
}

// publicMessage is the description of a token error that is safe to
// show a client: the token packages never put a token into an error.
func publicMessage(err error) string {
	switch {
	case errors.Is(err, token.ErrMalformed):
		return "malformed token"
	case errors.Is(err, token.ErrInvalidRequest):
		return "ambiguous or malformed credentials"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// stepUp answers a request of a session whose login is older than
// max_auth_age at now, as RFC 9470 says, and reports whether it did.
func (h *Handler) stepUp(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, login, now time.Time) bool {
	maxAge := time.Duration(h.MaxAuthAge)
	if now.Sub(login) <= maxAge {
		return false
	}
	secs := int64(maxAge / time.Second)
	repl.Set("http.session_guard.reason", "reauth_required")
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(
		`Bearer error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age="%d"`, secs))
	if h.redirectWith(w, r, "reason=reauth_required&max_age="+strconv.FormatInt(secs, 10)) {
		return true
	}
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "insufficient_user_authentication", "max_age": secs})
	return true
}

// limitReached answers a new session refused because its user has as
// many live sessions as the account allows (on_limit deny): 403, also
// for navigations (a new login would be refused the same way).
func (h *Handler) limitReached(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, account string) {
	repl.Set("http.session_guard.reason", "session_limit_reached")
	if c := h.logger.Check(zapcore.DebugLevel, "new session refused: session limit reached"); c != nil {
		c.Write(zap.String("account", account), zap.String("uri", r.URL.Path))
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "session_limit_reached"})
}

// logEvicted logs the sessions a new one ended to stay within the
// session limit (on_limit evict_oldest), by hash.
func (h *Handler) logEvicted(account string, hashes []string) {
	if len(hashes) == 0 {
		return
	}
	if c := h.logger.Check(zapcore.InfoLevel, "sessions ended by the session limit"); c != nil {
		c.Write(zap.String("account", account), zap.Strings("session_id_hashes", hashes))
	}
}
