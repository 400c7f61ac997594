package caddymodule

import (
	"time"

	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/store"
)

// How often a gateway records the sessions that revocations of whole
// accounts ended, and how many one store call records.
const (
	cleanRevokedEvery = time.Second
	cleanRevokedStep  = 1000
)

// cleanRevoked records, until a.ctx is done, the sessions that
// revocations of whole accounts ended without reading them
// (store.RevocationCleaner): every cleanRevokedEvery, all that are
// queued. Every gateway does it; recording is conditional, so one
// session is recorded, with its event, once.
func (a *App) cleanRevoked(c store.RevocationCleaner) {
	t := time.NewTicker(cleanRevokedEvery)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		for a.ctx.Err() == nil {
			n, err := c.CleanRevoked(a.ctx, &a.policy, cleanRevokedStep)
			if err != nil {
				if a.ctx.Err() == nil {
					a.logger.Warn("recording revoked sessions", zap.Error(err))
				}
				break
			}
			if n < cleanRevokedStep {
				break
			}
		}
	}
}
