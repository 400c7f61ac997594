package caddymodule

import (
	"time"

	"github.com/sessionguard/sessionguard/internal/manage"
)

// Manager returns the account operations (policy, sessions, revocation,
// audit) on the app's store and policy configuration. It is cheap; the
// admin API makes one per request from the running app.
func (a *App) Manager() *manage.Manager {
	m := &manage.Manager{
		Store:  a.store,
		Policy: &a.policy,
		Now:    a.now,
	}
	if a.logger != nil {
		m.Logger = a.logger.Named("audit")
	}
	return m
}

// WarnBeforeDuration returns warn_before as a time.Duration.
func (a *App) WarnBeforeDuration() time.Duration { return time.Duration(a.WarnBefore) }
