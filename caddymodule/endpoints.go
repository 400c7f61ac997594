package caddymodule

import (
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

// endpoint returns the path below the endpoints prefix, if p is one.
func (h *Handler) endpoint(p string) (string, bool) {
	if p == h.Endpoints {
		return "", true
	}
	if rest, ok := strings.CutPrefix(p, h.Endpoints+"/"); ok {
		return rest, true
	}
	return "", false
}

// sessionStatus is the JSON body of the status, keepalive and logout
// endpoints.
type sessionStatus struct {
	Status            string    `json:"status"`
	SessionIDHash     string    `json:"session_id_hash"`
	UserID            string    `json:"user_id"`
	AccountID         string    `json:"account_id"`
	Role              string    `json:"role,omitempty"`
	Name              string    `json:"name,omitempty"`
	Email             string    `json:"email,omitempty"`
	Owner             bool      `json:"owner"`
	ExpiresIn         int64     `json:"expires_in"`
	IdleExpiresIn     int64     `json:"idle_expires_in"`
	AbsoluteExpiresIn int64     `json:"absolute_expires_in"`
	IdleExpiresAt     time.Time `json:"idle_expires_at"`
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
	Warning           string    `json:"warning"`
	Reason            string    `json:"reason"`
	WarnBefore        int64     `json:"warn_before"`
	IdleMinutes       int64     `json:"idle_minutes"`
	AbsoluteMinutes   int64     `json:"absolute_minutes"`
}

// serveEndpoint serves the session endpoints. Every one needs a valid
// session; none is proxied upstream. Each decision on status, keepalive
// and logout is counted in the decisions metric under its endpoint.
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, ep string) error {
	var method, label string
	passive := true
	switch ep {
	case "status":
		method, label = http.MethodGet, endpointStatus
	case "keepalive":
		method, label, passive = http.MethodPost, endpointKeepalive, false
	case "logout":
		method, label = http.MethodPost, endpointLogout
	case "account", "account/policy", "account/revoke":
		return h.serveOwner(w, r, repl, ep)
	case "kit.js":
		return h.serveKit(w, r)
	case "backchannel-logout":
		return h.serveBackchannel(w, r)
	case "revoke-hook":
		return h.serveRevokeHook(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		return nil
	}
	ident, res, e, ok := h.endpointSession(w, r, repl, label, method, passive)
	if !ok {
		return nil
	}
	if ep == "logout" {
		hash := ident.SessionHash
		n, err := h.app.store.Revoke(r.Context(), store.RevokeRequest{
			Account: ident.AccountID, Scope: store.ScopeSession, Sessions: []string{hash},
			Policy: &h.app.policy, By: events.ByLogout,
		})
		if err != nil {
			h.logger.Error("logout: session store unavailable", zap.Error(err))
			countDecision(label, "store_unavailable")
			h.unavailable(w)
			return nil
		}
		countDecision(label, "allowed")
		h.expireCookies(w, r)
		w.Header().Set("Session-Expiry-Warning", "now")
		w.Header().Set("Session-Expiry-Reason", "revoked")
		writeJSON(w, http.StatusOK, map[string]any{"status": "revoked", "revoked": n})
		return nil
	}
	h.observeDecision(label, repl, false, ident, res)
	e.apply(w.Header(), r.Header.Get("Origin") != "")
	writeJSON(w, http.StatusOK, h.status(ident, *res, e))
	return nil
}

// endpointSession is what every session endpoint does first: it
// answers a wrong method (405), a cross-site request on cookie
// credentials (403), a request without a live session, or a store
// outage (503, also when failing open: there is no state to report),
// each counted under label; otherwise it sets the placeholders and
// returns the session, its state and its expiry headers.
func (h *Handler) endpointSession(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, label, method string, passive bool) (*token.Identity, *store.TouchResult, expiry, bool) {
	if !allowMethod(w, r, method) {
		countDecision(label, "invalid_request")
		return nil, nil, expiry{}, false
	}
	if !h.sameOrigin(w, r, label == endpointAccount) {
		countDecision(label, "cross_site")
		return nil, nil, expiry{}, false
	}
	ident, res, rejected := h.check(w, r, repl, passive)
	if rejected {
		h.observeDecision(label, repl, true, nil, nil)
		return nil, nil, expiry{}, false
	}
	if res == nil {
		countDecision(label, "store_unavailable")
		h.unavailable(w)
		return nil, nil, expiry{}, false
	}
	e := h.expiryHeaders(*res)
	h.setPlaceholders(r, repl, ident, e)
	return ident, res, e, true
}

func (h *Handler) status(ident *token.Identity, res store.TouchResult, e expiry) sessionStatus {
	owner := ident.HasRole(h.owners)
	return sessionStatus{
		Status:            "active",
		SessionIDHash:     ident.SessionHash,
		UserID:            ident.UserID,
		AccountID:         ident.AccountID,
		Role:              ident.Role,
		Name:              ident.Name,
		Email:             ident.Email,
		Owner:             owner,
		ExpiresIn:         e.expiresIn,
		IdleExpiresIn:     e.idleIn,
		AbsoluteExpiresIn: e.absIn,
		IdleExpiresAt:     res.IdleExpiresAt.UTC(),
		AbsoluteExpiresAt: res.AbsoluteExpiresAt.UTC(),
		Warning:           e.warning,
		Reason:            e.reason,
		WarnBefore:        int64(time.Duration(h.app.WarnBefore) / time.Second),
		IdleMinutes:       int64(res.Policy.Idle / time.Minute),
		AbsoluteMinutes:   int64(res.Policy.Absolute / time.Minute),
	}
}

// expireCookies expires the token cookies in the response. The Secure
// attribute follows the request's scheme, so that browsers honour the
// deletion on plain-HTTP development setups too. In opaque mode the
// app's cookie is expired with its configured path and domain, or the
// browser would keep it.
func (h *Handler) expireCookies(w http.ResponseWriter, r *http.Request) {
	if h.opaque != nil {
		h.expireOpaqueCookie(w, r)
		return
	}
	for _, s := range h.Tokens {
		if s.From == "cookie" {
			http.SetCookie(w, &http.Cookie{Name: s.Name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
		}
	}
}

func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
	return false
}

// sameOrigin refuses cross-site requests that carry cookie credentials
// (a browser sends the cookie along: CSRF) to the state-changing session
// endpoints and to the owner endpoints, which also read account data. It
// answers 403 cross_site and returns false for them.
func (h *Handler) sameOrigin(w http.ResponseWriter, r *http.Request, guardReads bool) bool {
	if !h.cookieCredentials(r) {
		return true
	}
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	if (safe && !guardReads) || h.originAllowed(r) {
		return true
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross_site"})
	return false
}

// originAllowed applies the contract's rule: a present Origin must be
// the request's own or a trusted (cors) one; without one, Sec-Fetch-Site
// must be same-origin or none. http.CrossOriginProtection decides, on a
// copy adjusted where its rules are more lenient: it lets Sec-Fetch-Site
// win over Origin, lets through a request with neither header (taking it
// for a non-browser client) and never checks safe methods.
func (h *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "null" || (origin == "" && r.Header.Get("Sec-Fetch-Site") == "") {
		return false
	}
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	if origin != "" || safe {
		r = r.Clone(r.Context())
		r.Method = http.MethodPost // checked as a write
		if origin != "" {
			r.Header.Del("Sec-Fetch-Site") // a present Origin decides
		}
	}
	return h.csrf.Check(r) == nil
}

// cookieCredentials reports whether r carries one of the configured
// token cookies: only then can a cross-site page make a browser send
// credentials along. A bearer header is never added by the browser.
func (h *Handler) cookieCredentials(r *http.Request) bool {
	for _, s := range h.Tokens {
		if s.From != "cookie" {
			continue
		}
		if c, err := r.Cookie(s.Name); err == nil && c.Value != "" {
			return true
		}
	}
	return false
}
