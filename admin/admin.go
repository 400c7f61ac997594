// Package admin serves sessionguard's admin API on Caddy's admin
// endpoint under /session_guard/, and the `caddy session-guard` command.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/caddymodule"
	"github.com/sessionguard/sessionguard/internal/manage"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// Interface guards
var (
	_ caddy.AdminRouter = (*AdminAPI)(nil)
	_ caddy.Provisioner = (*AdminAPI)(nil)
)

// ActorHeader names the admin caller in audit events. Default "admin".
const ActorHeader = "Session-Guard-Actor"

// routePrefix is the admin API subtree.
const routePrefix = "/session_guard/"

// AdminAPI is the admin.api.session_guard module. It holds no resources:
// every request reaches the session_guard app of the running config, so
// that after a reload (also a failed one) the routes act on the live
// configuration and its store.
//
// Routes:
//
//	GET   /session_guard/health
//	GET   /session_guard/policy
//	GET   /session_guard/accounts/{account}/policy
//	PATCH /session_guard/accounts/{account}/policy
//	GET   /session_guard/accounts/{account}/sessions
//	POST  /session_guard/accounts/{account}/revoke
//	GET   /session_guard/accounts/{account}/audit?limit=N
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.session_guard",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision implements caddy.Provisioner.
func (a *AdminAPI) Provision(caddy.Context) error { return nil }

// Routes returns the admin routes under /session_guard/.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: routePrefix, Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// route is one admin route, resolved from a request path.
type route struct {
	name    string // "health", "policy", "account.policy", ...
	account string
	methods []string
}

// resolve maps an escaped request path to a route.
func resolve(escapedPath string) (route, error) {
	rest, ok := strings.CutPrefix(escapedPath, routePrefix)
	if !ok {
		return route{}, notFound(escapedPath)
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 1 && parts[0] == "health":
		return route{name: "health", methods: []string{http.MethodGet}}, nil
	case len(parts) == 1 && parts[0] == "policy":
		return route{name: "policy", methods: []string{http.MethodGet}}, nil
	case len(parts) == 3 && parts[0] == "accounts":
		account, err := url.PathUnescape(parts[1])
		if err != nil {
			return route{}, apiError(http.StatusBadRequest, fmt.Errorf("account: %w", err))
		}
		if err := manage.CheckAccount(account); err != nil {
			return route{}, toAPIError(err)
		}
		rt := route{name: "account." + parts[2], account: account}
		switch parts[2] {
		case "policy":
			rt.methods = []string{http.MethodGet, http.MethodPatch}
		case "sessions", "audit":
			rt.methods = []string{http.MethodGet}
		case "revoke":
			rt.methods = []string{http.MethodPost}
		default:
			return route{}, notFound(escapedPath)
		}
		return rt, nil
	}
	return route{}, notFound(escapedPath)
}

func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	rt, err := resolve(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		return apiError(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed; use %s", r.Method, strings.Join(rt.methods, ", ")))
	}
	app, err := liveApp()
	if err != nil {
		return err
	}
	m := app.Manager()
	ctx := r.Context()
	actor := manage.SanitizeActor(r.Header.Get(ActorHeader), "admin")

	switch rt.name {
	case "health":
		return health(ctx, w, app)
	case "policy":
		return manage.WriteJSON(w, http.StatusOK, m.Defaults(app.WarnBeforeDuration()))
	case "account.policy":
		if r.Method == http.MethodGet {
			v, err := m.PolicyView(ctx, rt.account)
			return respond(w, v, err)
		}
		body, err := manage.ReadBody(w, r)
		if err != nil {
			return respond(w, nil, err)
		}
		v, err := m.PatchPolicy(ctx, rt.account, body, actor)
		return respond(w, v, err)
	case "account.sessions":
		v, err := m.Sessions(ctx, rt.account)
		return respond(w, v, err)
	case "account.revoke":
		body, err := manage.ReadBody(w, r)
		if err != nil {
			return respond(w, nil, err)
		}
		v, err := m.RevokeJSON(ctx, rt.account, body, actor)
		return respond(w, v, err)
	case "account.audit":
		q := r.URL.Query()
		if len(q["limit"]) > 1 {
			return apiError(http.StatusBadRequest, errors.New("limit given more than once"))
		}
		limit, err := manage.ParseLimit(q.Get("limit"))
		if err != nil {
			return respond(w, nil, err)
		}
		v, err := m.Audit(ctx, rt.account, limit)
		return respond(w, v, err)
	}
	return notFound(r.URL.Path)
}

// health pings the live app's store.
func health(ctx context.Context, w http.ResponseWriter, app *caddymodule.App) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := app.SessionStore().Ping(ctx); err != nil {
		app.Logger().Warn("health check: session store unavailable", zap.Error(err))
		return manage.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"store": "unavailable", "error": "session store unavailable"})
	}
	return manage.WriteJSON(w, http.StatusOK, map[string]string{"store": "ok"})
}

// respond writes v, or maps err: a validation failure is written here as
// {"error":"validation_failed","fields":{...}}; every other error becomes
// a caddy.APIError, which Caddy writes as {"error":"..."}; a 503 (the
// store failed) says when to retry.
func respond(w http.ResponseWriter, v any, err error) error {
	if err == nil {
		return manage.WriteJSON(w, http.StatusOK, v)
	}
	me := manage.AsError(err)
	if me.Code == manage.CodeValidationFailed {
		return manage.WriteJSON(w, me.Status, me.Body())
	}
	if me.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	return toAPIError(me)
}

func toAPIError(err error) error {
	me := manage.AsError(err)
	return caddy.APIError{HTTPStatus: me.Status, Err: me, Message: me.Message}
}

func apiError(code int, err error) error { return caddy.APIError{HTTPStatus: code, Err: err} }

func notFound(path string) error {
	return apiError(http.StatusNotFound, fmt.Errorf("no such route: %s", path))
}

// liveApp returns the session_guard app of the running config.
func liveApp() (*caddymodule.App, error) {
	ctx := caddy.ActiveContext()
	appIface, err := ctx.AppIfConfigured("session_guard")
	if err != nil || appIface == nil {
		// the app is created on demand by handlers; without one there is
		// nothing to administer
		return nil, caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: fmt.Errorf("session_guard app is not running: %v", err)}
	}
	app, ok := appIface.(*caddymodule.App)
	if !ok {
		return nil, caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("unexpected app type %T", appIface)}
	}
	return app, nil
}
