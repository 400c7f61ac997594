package caddymodule

import (
	"context"
	"errors"
	"mime"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/manage"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

// OpenID Connect Back-Channel Logout 1.0 at <endpoints>/backchannel-logout.
// The identity provider posts a signed logout token server to server;
// the signature is the authentication, so neither cookies nor the
// cross-site check play a part (a forged cross-site form post carries no
// valid token, and a captured one is refused as a replay).

// provisionRevocation sets up the back-channel index cache and the
// revoke hook.
func (h *Handler) provisionRevocation() error {
	h.indexed = new(seenCache)
	return h.provisionHooks()
}

// serveBackchannel answers POST <endpoints>/backchannel-logout: 200
// {"revoked":N} after the sessions named by the logout token were
// revoked, 400 invalid_request for any token or request the spec says to
// reject, 503 when the keys or the store are unreachable, 404 when the
// handler cannot verify logout tokens (no jwt audience, or no issuer nor
// discovery) or its store keeps no index. Every answer has
// Cache-Control: no-store.
func (h *Handler) serveBackchannel(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if !h.backchannelReady() {
		countRevocationRequest(endpointBackchannel, "not_found")
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		return nil
	}
	if !allowMethod(w, r, http.MethodPost) {
		countRevocationRequest(endpointBackchannel, "method_not_allowed")
		return nil
	}
	lo, ok := h.logoutToken(w, r)
	if !ok {
		return nil
	}
	ctx := r.Context()
	fresh, err := h.app.once.Once(ctx, "bcl:"+session.HashID(lo.Issuer+"\x00"+lo.JTI), lo.Until.Sub(h.app.now()))
	if err != nil {
		h.revocationUnavailable(w, endpointBackchannel, err)
		return nil
	}
	if !fresh {
		h.debug("back-channel logout: replayed jti", r, nil)
		countRevocationRequest(endpointBackchannel, "replayed")
		badLogout(w, "logout token was already used")
		return nil
	}
	n, err := h.backchannelRevoke(ctx, lo)
	if err != nil {
		// let the provider's retry of this token through
		if ferr := h.app.once.Forget(context.WithoutCancel(ctx), "bcl:"+session.HashID(lo.Issuer+"\x00"+lo.JTI)); ferr != nil {
			err = errors.Join(err, ferr)
		}
		h.revocationUnavailable(w, endpointBackchannel, err)
		return nil
	}
	h.logger.Info("back-channel logout", zap.Bool("by_sid", lo.SIDHash != ""), zap.String("sid_hash", lo.SIDHash), zap.Int("revoked", n))
	countRevocationRequest(endpointBackchannel, "ok")
	writeJSON(w, http.StatusOK, manage.RevokeResult{Revoked: n})
	return nil
}

// backchannelReady reports whether the handler can verify logout tokens
// and its store can find sessions by sid and sub and refuse replays.
func (h *Handler) backchannelReady() bool {
	return h.verifier != nil && h.verifier.LogoutConfigured() && h.app.index != nil && h.app.once != nil
}

// logoutToken reads and verifies the form field logout_token. It answers
// 400 (or 503 when the keys cannot be fetched) and returns false when
// the request or the token is not acceptable.
func (h *Handler) logoutToken(w http.ResponseWriter, r *http.Request) (*token.Logout, bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, manage.MaxBodyBytes)
	if mt != "application/x-www-form-urlencoded" || r.ParseForm() != nil || len(r.PostForm["logout_token"]) != 1 {
		countRevocationRequest(endpointBackchannel, "invalid_request")
		badLogout(w, "want one form field logout_token (application/x-www-form-urlencoded)")
		return nil, false
	}
	lo, err := h.verifier.VerifyLogout(r.Context(), r.PostForm.Get("logout_token"))
	switch {
	case errors.Is(err, token.ErrKeyUnavailable):
		h.revocationUnavailable(w, endpointBackchannel, err)
		return nil, false
	case err != nil:
		h.debugRejection(r, err)
		countRevocationRequest(endpointBackchannel, "invalid_request")
		badLogout(w, publicLogoutMessage(err))
		return nil, false
	}
	return lo, true
}

// publicLogoutMessage is the description of a rejected logout token:
// the token package's own, which never holds token content.
func publicLogoutMessage(err error) string {
	if errors.Is(err, token.ErrMalformed) || errors.Is(err, token.ErrInvalid) {
		return truncate(err.Error(), 200)
	}
	return "logout token is not accepted"
}

func badLogout(w http.ResponseWriter, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": desc})
}

// backchannelRevoke records the logout in the index (so that a token of
// that IdP session or user issued before it, not seen yet, starts no
// session) and revokes what it names: the sessions of the sid in any
// account, else the user's sessions in every account where the sub has
// one. Each revocation writes its audit event with actor backchannel.
func (h *Handler) backchannelRevoke(ctx context.Context, lo *token.Logout) (int, error) {
	keep := h.app.policy.Bounds.Absolute.Max
	var found []store.Indexed
	var err error
	if lo.SIDHash != "" {
		found, err = h.app.index.LogoutSID(ctx, lo.SIDHash, keep)
	} else {
		found, err = h.app.index.LogoutSubject(ctx, lo.Subject, keep)
	}
	if err != nil {
		return 0, err
	}
	m, n := h.app.Manager(), 0
	for _, f := range found {
		req := manage.RevokeRequest{Scope: store.ScopeSession, Session: f.SessionHash, By: events.ByBackchannel}
		if lo.SIDHash == "" {
			req = manage.RevokeRequest{Scope: store.ScopeUser, UserID: f.User, By: events.ByBackchannel}
		}
		res, err := m.Revoke(ctx, f.Account, req, "backchannel")
		if err != nil {
			return n, err
		}
		n += res.Revoked
	}
	return n, nil
}

// revocationUnavailable answers 503 with Retry-After for an outage of the
// store or the provider's keys, logged at error level.
func (h *Handler) revocationUnavailable(w http.ResponseWriter, endpoint string, err error) {
	outcome := "store_unavailable"
	if errors.Is(err, token.ErrKeyUnavailable) {
		outcome = "key_unavailable"
	}
	if c := h.logger.Check(zapcore.ErrorLevel, endpoint+": unavailable"); c != nil {
		c.Write(zap.Error(err))
	}
	countRevocationRequest(endpoint, outcome)
	h.unavailable(w)
}

// indexSeen writes the session's back-channel index entry when it was
// created and the first time this gateway serves it (and again once
// seenTTL has passed, which also carries a later token expiry into the
// entry), when the handler
// can take logout tokens: so an entry lost to an error, or a session
// created before the index existed, is indexed by the next request. A
// session whose IdP session or user was logged out after its login is
// revoked at once and answered 401 (rejected = true); a failed write
// answers 503, or passes with on_store_error open.
func (h *Handler) indexSeen(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, ident *token.Identity, req *store.TouchRequest, res *store.TouchResult) bool {
	if !h.backchannelReady() || (ident.SIDHash == "" && ident.Subject == "") {
		return false
	}
	key := indexKey{req.Account, req.SessionHash, ident.SIDHash, ident.Subject}
	if !res.Created && h.indexed.seen(key, res.Now) {
		return false // a creation is always indexed: the store may have lost the entry with the record
	}
	cut, err := h.app.index.IndexSession(r.Context(), store.IndexEntry{
		Account: req.Account, SessionHash: req.SessionHash, User: req.User,
		SIDHash: ident.SIDHash, Subject: ident.Subject,
		Until: store.Retention(res.AbsoluteExpiresAt, req.NotAfter),
	})
	if err != nil {
		return !h.storeFailed(w, r, repl, err, true)
	}
	if !session.Before(res.AbsoluteExpiresAt.Add(-res.Policy.Absolute), cut) {
		h.indexed.add(key, res.Now)
		return false
	}
	_, err = h.app.Manager().Revoke(r.Context(), req.Account, manage.RevokeRequest{Scope: store.ScopeSession, Session: req.SessionHash, By: events.ByBackchannel}, "backchannel")
	if err != nil {
		h.storeFailed(w, r, repl, err, false)
		return true
	}
	repl.Set("http.session_guard.reason", session.Revoked.String())
	h.ended(w, r, session.Revoked)
	return true
}
