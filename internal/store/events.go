package store

import (
	"context"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// EventSource is implemented by stores that write session lifecycle
// events (package events) into an outbox, each in the same atomic
// operation as the transition it describes, so that every occurrence
// has exactly one event whichever gateway made it. Memory and Redis
// implement it.
type EventSource interface {
	// EventOutbox is where the store's events wait for delivery; nil
	// while events are off.
	EventOutbox() events.Outbox
}

// ExpirySweeper is implemented by event sources that can find expiries
// no request observed. Memory implements it.
type ExpirySweeper interface {
	// SweepExpired ends the sessions whose idle or absolute deadline has
	// passed without a request observing it, with their events, and
	// returns how many it ended.
	SweepExpired(ctx context.Context, cfg *policy.Config) (int, error)
}

// endedEvent is the event type of a session that reached the ended
// state st, or "" for a state that is not an end.
func endedEvent(st session.Status) string {
	switch st {
	case session.ExpiredIdle:
		return events.IdleExpired
	case session.ExpiredAbsolute:
		return events.AbsoluteExpired
	case session.Revoked:
		return events.Revoked
	}
	return ""
}

// revokedBy is the By of a revocation event: by, or admin when unset.
func revokedBy(by string) string {
	if by == "" {
		return events.ByAdmin
	}
	return by
}
