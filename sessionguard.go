// Package sessionguard is a Caddy v2 plugin that enforces server-side
// sessions — idle and absolute expiry, revocation and per-account policy
// — in front of any upstream app.
//
// Importing this package registers every sessionguard module with
// Caddy, so that
//
//	xcaddy build --with github.com/sessionguard/sessionguard
//
// builds a Caddy with the session_guard app, the
// http.handlers.session_guard handler, the admin.api.session_guard admin
// routes and the `caddy session-guard` command.
package sessionguard

import (
	_ "github.com/sessionguard/sessionguard/admin"
	_ "github.com/sessionguard/sessionguard/caddymodule"
)
