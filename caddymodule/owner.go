package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/manage"
	"github.com/sessionguard/sessionguard/internal/store"
)

// ownerAccount is the body of GET {endpoints}/account: the caller's
// account policy (as the admin API shows it) and its live sessions and
// active users, with the caller tagged.
type ownerAccount struct {
	manage.PolicyView
	// Sessions are the account's live sessions; the caller's own has
	// "current": true.
	Sessions []manage.Session `json:"sessions"`
	// ActiveUsers are the users with a live session, newest login first;
	// the caller has "you": true.
	ActiveUsers []manage.ActiveUser `json:"active_users"`
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
	m := h.app.Manager()
	ctx := r.Context()
	account := ident.AccountID
	actor := manage.SanitizeActor(ident.UserID, "owner")
	me := ident.SessionHash

	switch ep {
	case "account":
		pv, err := m.PolicyView(ctx, account)
		if err != nil {
			return h.ownerError(w, err)
		}
		sv, err := m.Sessions(ctx, account)
		if err != nil {
			return h.ownerError(w, err)
		}
		for i := range sv.Sessions {
			sv.Sessions[i].Current = sv.Sessions[i].Hash == me
		}
		for i := range sv.ActiveUsers {
			sv.ActiveUsers[i].You = sv.ActiveUsers[i].UserID == ident.UserID
		}
		writeJSON(w, http.StatusOK, ownerAccount{PolicyView: pv, Sessions: sv.Sessions, ActiveUsers: sv.ActiveUsers})
	case "account/policy":
		body, err := manage.ReadBody(w, r)
		if err != nil {
			return h.ownerError(w, err)
		}
		pv, err := m.PatchPolicy(ctx, account, body, actor)
		if err != nil {
			return h.ownerError(w, err)
		}
		writeJSON(w, http.StatusOK, pv)
	case "account/revoke":
		body, err := manage.ReadBody(w, r)
		if err != nil {
			return h.ownerError(w, err)
		}
		req, err := manage.ParseOwnerRevoke(body)
		if err != nil {
			return h.ownerError(w, err)
		}
		if req.Scope == store.ScopeOthers {
			req.KeepSession = me
		}
		out, err := m.Revoke(ctx, account, req, actor)
		if err != nil {
			return h.ownerError(w, err)
		}
		if req.Scope == store.ScopeAll || (req.Scope == store.ScopeUser && req.UserID == ident.UserID) {
			// the caller's own session has ended too
			h.expireCookies(w, r)
			w.Header().Set("Session-Expiry-Warning", "now")
			w.Header().Set("Session-Expiry-Reason", "revoked")
		}
		writeJSON(w, http.StatusOK, out)
	}
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
