package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/manage"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

// ownerAccount is the body of GET {endpoints}/account: the caller's
// account policy (as the admin API shows it) and its live sessions and
// active users, with the caller tagged.
type ownerAccount struct {
	manage.PolicyView
	// Sessions are the account's live sessions; the caller's own has
	// "current": true.
	Sessions []manage.Session `json:"sessions"`
	// ActiveUsers are the users of Sessions, newest login first, with
	// their account-wide counts; the caller has "you": true.
	ActiveUsers []manage.ActiveUser `json:"active_users"`
	// NextCursor asks for the following page (?cursor=); absent on the
	// last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// serveOwner serves the owner self-service endpoints: GET account,
// PATCH account/policy and POST account/revoke. They need a valid
// session whose role is one of owner_roles (exact match) and act only on
// the caller's own account.
func (h *Handler) serveOwner(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, ep string) error {
	var method string
	switch ep {
	case "account":
		method = http.MethodGet
	case "account/policy":
		method = http.MethodPatch
	case "account/revoke":
		method = http.MethodPost
	}
	// reading the account is passive; a change is activity
	ident, res, e, ok := h.endpointSession(w, r, repl, endpointAccount, method, method == http.MethodGet)
	if !ok {
		return nil
	}
	// the session is valid; whether its role may manage is decided below
	h.observeDecision(endpointAccount, repl, false, ident, res)
	e.apply(w.Header(), r.Header.Get("Origin") != "")
	if !ident.HasRole(h.owners) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "the account owner role is required"})
		return nil
	}
	switch ep {
	case "account":
		return h.ownerRead(w, r, ident)
	case "account/policy":
		return h.ownerPatch(w, r, ident)
	}
	return h.ownerRevoke(w, r, ident)
}

// ownerRead answers GET account[?cursor=&limit=]: the policy view, one
// page of sessions with the caller's own marked current, and their users
// with the caller marked you.
func (h *Handler) ownerRead(w http.ResponseWriter, r *http.Request, ident *token.Identity) error {
	m, ctx := h.app.Manager(), r.Context()
	pv, err := m.PolicyView(ctx, ident.AccountID)
	if err != nil {
		return h.ownerError(w, err)
	}
	page, err := manage.PageQuery(r.URL.Query())
	if err != nil {
		return h.ownerError(w, err)
	}
	sv, err := m.Sessions(ctx, ident.AccountID, page)
	if err != nil {
		return h.ownerError(w, err)
	}
	for i := range sv.Sessions {
		sv.Sessions[i].Current = sv.Sessions[i].Hash == ident.SessionHash
	}
	for i := range sv.ActiveUsers {
		sv.ActiveUsers[i].You = sv.ActiveUsers[i].UserID == ident.UserID
	}
	writeJSON(w, http.StatusOK, ownerAccount{PolicyView: pv, Sessions: sv.Sessions, ActiveUsers: sv.ActiveUsers, NextCursor: sv.NextCursor})
	return nil
}

// ownerPatch answers PATCH account/policy.
func (h *Handler) ownerPatch(w http.ResponseWriter, r *http.Request, ident *token.Identity) error {
	body, err := manage.ReadBody(w, r)
	if err != nil {
		return h.ownerError(w, err)
	}
	pv, err := h.app.Manager().PatchPolicy(r.Context(), ident.AccountID, body, manage.SanitizeActor(ident.UserID, "owner"))
	if err != nil {
		return h.ownerError(w, err)
	}
	writeJSON(w, http.StatusOK, pv)
	return nil
}

// ownerRevoke answers POST account/revoke; when the caller's own session
// ended too, its cookie is expired in the answer.
func (h *Handler) ownerRevoke(w http.ResponseWriter, r *http.Request, ident *token.Identity) error {
	body, err := manage.ReadBody(w, r)
	if err != nil {
		return h.ownerError(w, err)
	}
	req, err := manage.ParseOwnerRevoke(body)
	if err != nil {
		return h.ownerError(w, err)
	}
	if req.Scope == store.ScopeOthers {
		req.KeepSession = ident.SessionHash
	}
	req.By = events.ByOwner
	out, err := h.app.Manager().Revoke(r.Context(), ident.AccountID, req, manage.SanitizeActor(ident.UserID, "owner"))
	if err != nil {
		return h.ownerError(w, err)
	}
	if req.Scope == store.ScopeAll || (req.Scope == store.ScopeUser && req.UserID == ident.UserID) {
		h.expireCookies(w, r)
		w.Header().Set("Session-Expiry-Warning", "now")
		w.Header().Set("Session-Expiry-Reason", "revoked")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ownerError answers a failed owner operation.
func (h *Handler) ownerError(w http.ResponseWriter, err error) error {
	me := manage.AsError(err)
	if me.Status >= 500 {
		h.logger.Error("owner self-service", zap.Error(me))
	}
	if me.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, me.Status, me.Body())
	return nil
}
