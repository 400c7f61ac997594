package caddymodule

import (
	"time"

	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/store"
)

// How often a gateway looks for sessions that revocations of whole
// accounts through other gateways left to record (the revoking gateway
// records its own at once), and how many one store call records.
const (
	cleanRevokedEvery = 30 * time.Second
	cleanRevokedStep  = 1000
)

// cleanRevoked records, until a.ctx is done, the sessions that
// revocations of whole accounts ended without reading them
// (store.RevocationCleaner): all that are queued, right after a
// revocation through this gateway and every cleanRevokedEvery (a
// revoking gateway that stopped leaves its queue to the others).
// Recording is conditional, so one session is recorded, with its event,
// once whichever gateway gets to it.
func (a *App) cleanRevoked(c store.RevocationCleaner) {
	t := time.NewTicker(cleanRevokedEvery)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		case <-c.RevokedQueued():
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
