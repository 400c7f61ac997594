package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/manage"
	"github.com/sessionguard/sessionguard/internal/session"
)

// HooksConfig configures the revoke hook at <endpoints>/revoke-hook.
type HooksConfig struct {
	// Secret is the Standard Webhooks signing secret: "whsec_" and the
	// base64 of at least 24 bytes. Placeholders such as {env.HOOK_SECRET}
	// are replaced.
	Secret string `json:"secret,omitempty"`
}

// HookTolerance is how far a webhook-timestamp may be from the gateway's
// clock, either way (Standard Webhooks' recommendation).
const HookTolerance = 5 * time.Minute

// minHookSecret is the shortest secret accepted, in bytes (Standard
// Webhooks: 24 to 64).
const minHookSecret = 24

// provisionHooks builds the verifier of the hook secret, when set.
func (h *Handler) provisionHooks() error {
	h.hook = nil
	if h.Hooks == nil {
		return nil
	}
	key, err := webhookSecret(h.Hooks.Secret)
	if err != nil {
		return fmt.Errorf("hooks secret: %w", err)
	}
	h.hook, err = standardwebhooks.NewWebhookRaw(key)
	return err
}

// serveRevokeHook answers POST <endpoints>/revoke-hook, a Standard
// Webhooks-signed revocation: {"revoked":N}. A missing or wrong
// signature is 401 invalid_signature, a webhook-timestamp outside the
// tolerance 401 stale_timestamp, a webhook-id seen before 409 replayed,
// a bad body 400/413/415, a store outage 503. Without a hooks secret
// the endpoint does not exist (404).
func (h *Handler) serveRevokeHook(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if h.hook == nil || h.app.once == nil {
		countRevocationRequest(endpointRevokeHook, "not_found")
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		return nil
	}
	if !allowMethod(w, r, http.MethodPost) {
		countRevocationRequest(endpointRevokeHook, "method_not_allowed")
		return nil
	}
	body, err := manage.ReadBody(w, r)
	if err != nil {
		countRevocationRequest(endpointRevokeHook, "invalid_request")
		return h.hookError(w, err)
	}
	if outcome, desc := h.verifyHook(body, r.Header); outcome != "" {
		h.debug("revoke hook: "+desc, r, nil)
		countRevocationRequest(endpointRevokeHook, outcome)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": outcome, "error_description": desc})
		return nil
	}
	account, req, err := manage.ParseHookRevoke(body)
	if err != nil {
		countRevocationRequest(endpointRevokeHook, "invalid_request")
		return h.hookError(w, err)
	}
	ctx, id := r.Context(), "hook:"+session.HashID(r.Header.Get("webhook-id"))
	fresh, err := h.app.once.Once(ctx, id, 2*HookTolerance)
	if err != nil {
		h.revocationUnavailable(w, endpointRevokeHook, err)
		return nil
	}
	if !fresh {
		countRevocationRequest(endpointRevokeHook, "replayed")
		writeJSON(w, http.StatusConflict, map[string]string{"error": "replayed", "error_description": "this webhook-id was already processed"})
		return nil
	}
	req.By = events.ByHook
	res, err := h.app.Manager().Revoke(ctx, account, req, "hook")
	if err != nil {
		if ferr := h.app.once.Forget(context.WithoutCancel(ctx), id); ferr != nil {
			h.logger.Error("revoke hook: forgetting the webhook-id", zap.Error(ferr))
		}
		if manage.AsError(err).Status == http.StatusServiceUnavailable {
			h.revocationUnavailable(w, endpointRevokeHook, err)
			return nil
		}
		countRevocationRequest(endpointRevokeHook, "invalid_request")
		return h.hookError(w, err)
	}
	countRevocationRequest(endpointRevokeHook, "ok")
	writeJSON(w, http.StatusOK, res)
	return nil
}

// verifyHook checks the Standard Webhooks signature (any of the
// space-separated v1 signatures may match) and then the timestamp
// against the gateway's clock. It returns "" when both hold, else the
// outcome and a description.
func (h *Handler) verifyHook(body []byte, hdr http.Header) (outcome, desc string) {
	// the library checks the timestamp against the wall clock; the
	// gateway's clock is injected, so the tolerance is checked here
	if err := h.hook.VerifyIgnoringTimestamp(body, hdr); err != nil {
		return "invalid_signature", "missing or wrong webhook signature"
	}
	ts, err := strconv.ParseInt(hdr.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return "invalid_signature", "webhook-timestamp is not an integer"
	}
	if d := h.app.now().Sub(time.Unix(ts, 0)); d > HookTolerance || d < -HookTolerance {
		return "stale_timestamp", "webhook-timestamp is outside the 5 minute tolerance"
	}
	return "", ""
}

// hookError answers a failed hook request with the manage error's status.
func (h *Handler) hookError(w http.ResponseWriter, err error) error {
	me := manage.AsError(err)
	writeJSON(w, me.Status, me.Body())
	return nil
}

// parseHooks reads a hooks block:
//
//	hooks {
//		secret <whsec_...>
//	}
func parseHooks(d *caddyfile.Dispenser) (*HooksConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	c := new(HooksConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch key := d.Val(); key {
		case "secret":
			if c.Secret != "" {
				return nil, d.Errf("duplicate hooks option %q", key)
			}
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			c.Secret = v
		default:
			return nil, d.Errf("unrecognized hooks option %q", key)
		}
	}
	if c.Secret == "" {
		return nil, d.Err("hooks needs a secret")
	}
	return c, nil
}
