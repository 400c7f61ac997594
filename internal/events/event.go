// Package events is sessionguard's session lifecycle events: the event
// model, the sinks (a log and a Standard Webhooks-signed webhook) and the
// dispatcher that delivers a store's outbox to a sink at least once. It
// knows nothing of Caddy; the stores write events in the same atomic
// operation as the transition they describe, so each exists exactly once.
package events

import (
	"context"
	"encoding/json"
	"time"
)

// Event types.
const (
	Created         = "session.created"
	IdleExpired     = "session.idle_expired"
	AbsoluteExpired = "session.absolute_expired"
	Revoked         = "session.revoked"
	PolicyUpdate    = "policy.update"
)

// Types are every event type, for metrics and validation.
var Types = []string{Created, IdleExpired, AbsoluteExpired, Revoked, PolicyUpdate}

// Who ended a session, the By of a session.revoked event.
const (
	ByLogout      = "logout"
	ByOwner       = "owner"
	ByAdmin       = "admin"
	ByBackchannel = "backchannel"
	ByHook        = "hook"
	ByLimit       = "limit"
)

// Event is one lifecycle event. It carries the session's hash, never its
// raw id or a token.
type Event struct {
	// ID is assigned by the outbox; it is the same on every delivery of
	// the event (the webhook-id).
	ID          string    `json:"-"`
	Type        string    `json:"type"`
	Time        time.Time `json:"time"`
	Account     string    `json:"account"`
	SessionHash string    `json:"session_id_hash,omitempty"`
	User        string    `json:"user_id,omitempty"`
	By          string    `json:"by,omitempty"`
}

// Payload is the JSON body of the event as sinks send it.
func (e *Event) Payload() []byte {
	b, _ := json.Marshal(e) // only strings and a time: cannot fail
	return b
}

// Outbox is a store's queue of events not yet delivered, read by one
// consumer group per sink. Every event is handed out to one consumer of
// a group at a time and again, after Reclaim, when it was not
// acknowledged (its consumer crashed or is still retrying).
type Outbox interface {
	// Read returns up to n events of group not acknowledged yet, oldest
	// first: first those another consumer held longer than reclaim, then
	// new ones. It returns no events and no error when there are none.
	Read(ctx context.Context, group, consumer string, n int, reclaim time.Duration) ([]Event, error)
	// Ack records that group delivered the events.
	Ack(ctx context.Context, group string, evs []Event) error
	// Queued is how many events group has not acknowledged yet.
	Queued(ctx context.Context, group string) (int64, error)
}

// Hooks are what an outbox reports, for metrics and logs; nil fields are
// skipped. They may be called with a store's lock held and must be quick.
type Hooks struct {
	// Emitted is called once per event written.
	Emitted func(typ string)
	// Dropped is called when the outbox was full and dropped n of the
	// oldest events before every group delivered them.
	Dropped func(n int)
}

// Emit reports an emitted event of type typ.
func (h *Hooks) Emit(typ string) {
	if h != nil && h.Emitted != nil {
		h.Emitted(typ)
	}
}

// Drop reports n dropped events.
func (h *Hooks) Drop(n int) {
	if h != nil && h.Dropped != nil && n > 0 {
		h.Dropped(n)
	}
}
