// Package store defines where sessionguard keeps session state and the
// contract every store implements. Two implementations live here: an
// in-memory store for a single gateway and a Redis store for many. Both
// pass the conformance suite in package storetest.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
)

// ErrUnavailable wraps every error that means the store could not be
// reached or did not answer in time. The gateway answers 503 to it.
var ErrUnavailable = errors.New("session store unavailable")

// Store keeps sessions, account overrides, revocation cutoffs and audit
// events. All methods are safe for concurrent use. Every store takes its
// time from the clock it was constructed with.
type Store interface {
	// Touch looks a session up, creates it when first seen, checks it and
	// records the activity, as one atomic operation. A session not ended
	// whose user is not req.User is reported as session.WrongUser and left
	// untouched. Creation enforces the account's session limit per user
	// in the same operation (see TouchResult.Evicted and
	// session.LimitReached).
	Touch(ctx context.Context, req *TouchRequest) (TouchResult, error)
	// Sessions lists one page of the live (active) sessions of an
	// account under the policy configuration cfg, in listing order
	// (oldest login first, then hash). A page examines at most
	// page.Limit sessions, so it may hold fewer live ones (even none)
	// and still have a Next. Paging from "" to an empty Next yields
	// every session live during the whole walk exactly once, whatever
	// else is created or ended meanwhile. A cursor no store produced is
	// ErrBadCursor.
	Sessions(ctx context.Context, account string, cfg *policy.Config, page Page) (SessionPage, error)
	// Revoke ends sessions of an account and returns how many live
	// sessions it ended.
	Revoke(ctx context.Context, req RevokeRequest) (int, error)
	// Override returns an account's policy override.
	Override(ctx context.Context, account string) (policy.Override, error)
	// SetOverride replaces an account's override and returns the old one.
	SetOverride(ctx context.Context, account string, ov policy.Override) (policy.Override, error)
	// AppendAudit stores an audit event of an account; the store keeps a
	// bounded number of the newest events per account.
	AppendAudit(ctx context.Context, account string, ev Event) error
	// Audit returns up to limit events of an account, newest first.
	Audit(ctx context.Context, account string, limit int) ([]Event, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
}

// TouchRequest is one request of one session.
type TouchRequest struct {
	// Account and SessionHash identify the session.
	Account, SessionHash string
	// User, Role, Name and Email describe the session's user; they are
	// recorded when the session is created.
	User, Role, Name, Email string
	// IP and UserAgent of the request, recorded at creation.
	IP, UserAgent string
	// LoginAt is the token's login time.
	LoginAt time.Time
	// IssuedAt is the token's iat; with LoginAt it decides whether a
	// token for an ended session starts a new one (Record.Restarts).
	IssuedAt time.Time
	// NotAfter is the token's expiry; the ended state of a session is kept
	// at least until then, so the token cannot start a new session.
	NotAfter time.Time
	// Claimed is the policy the token carried.
	Claimed policy.Claimed
	// Passive requests are checked but do not count as activity.
	Passive bool
	// TouchInterval coalesces activity: a request less than this after
	// the session's recorded last activity checks the session but writes
	// nothing (see session.Record.Touch). Zero or negative records every
	// request.
	TouchInterval time.Duration
	// Policy is the gateway's policy configuration.
	Policy *policy.Config
}

// OpaqueStore is implemented by stores that keep opaque-cookie
// sessions, whose requests carry no account: the store remembers which
// account each bound session hash belongs to. Memory and Redis
// implement it.
type OpaqueStore interface {
	// Lookup finds the session by req.SessionHash alone (Account and the
	// user fields of req are ignored), then checks and touches it like
	// Touch. It never creates a session: a hash that was never bound, or
	// whose record is gone, is reported as session.Unbound.
	Lookup(ctx context.Context, req *TouchRequest) (OpaqueResult, error)
	// Bind records a new session under req.Account with login time now
	// and the user fields of req, replacing any record of the same hash,
	// and remembers that the hash belongs to req.Account. It enforces the
	// session limit as Touch does: a refused bind reports
	// session.LimitReached and writes nothing.
	Bind(ctx context.Context, req *TouchRequest) (OpaqueResult, error)
}

// OpaqueResult is the outcome of a Lookup or Bind: a TouchResult and the
// session's account and user, which the request did not carry.
type OpaqueResult struct {
	TouchResult
	Account, User, Role, Name, Email string
}

// SecretStore is implemented by stores that can keep a gateway secret
// shared by every gateway using the store (the opaque-cookie key when
// none is configured). Memory and Redis implement it.
type SecretStore interface {
	// Secret returns the secret stored under name; when there is none
	// it stores fresh and returns it. Concurrent callers all get the same
	// value.
	Secret(ctx context.Context, name string, fresh []byte) ([]byte, error)
}

// TouchResult is the outcome of a Touch.
type TouchResult struct {
	// Status is the session's state after the request.
	Status session.Status
	// Created is true when the session was first seen by this request.
	Created bool
	// Now is the time the decision was taken at.
	Now time.Time
	// Policy is the policy in force for the session.
	Policy policy.Policy
	// IdleExpiresAt and AbsoluteExpiresAt are the session's deadlines.
	IdleExpiresAt, AbsoluteExpiresAt time.Time
	// Evicted are the hashes of the live sessions of the same user that
	// the creation ended to stay within the session limit (on_limit
	// evict_oldest), oldest login first.
	Evicted []string
}

// SessionInfo describes a live session for listings.
type SessionInfo struct {
	Hash              string    `json:"session_id_hash"`
	User              string    `json:"user_id"`
	Name              string    `json:"name"`
	Email             string    `json:"email"`
	Role              string    `json:"role"`
	CreatedAt         time.Time `json:"created_at"`
	LastSeenAt        time.Time `json:"last_seen_at"`
	IdleExpiresAt     time.Time `json:"idle_expires_at"`
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
	IP                string    `json:"ip"`
	UserAgent         string    `json:"user_agent"`
}

// Scope says which sessions a revocation ends.
type Scope string

// Revocation scopes.
const (
	ScopeSession Scope = "session"
	ScopeUser    Scope = "user"
	ScopeAll     Scope = "all"
	ScopeOthers  Scope = "others"
)

// Valid reports whether s is one of the revocation scopes.
func (s Scope) Valid() bool {
	switch s {
	case ScopeSession, ScopeUser, ScopeAll, ScopeOthers:
		return true
	}
	return false
}

// checkRevoke is every store's Revoke preamble: it rejects a revocation
// whose context has ended or that no store may carry out.
func checkRevoke(ctx context.Context, req *RevokeRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !req.Scope.Valid() {
		return fmt.Errorf("unknown revocation scope %q", req.Scope)
	}
	if req.Scope == ScopeUser && req.User == "" {
		return errors.New("revoking a user needs the user id")
	}
	if req.Policy == nil {
		return errors.New("revocation without a policy configuration")
	}
	return nil
}

// RevokeRequest describes a revocation, made at the store's now. Scopes
// all, others and user also record that time as a cutoff: tokens that
// logged in before it and were not seen yet are rejected.
type RevokeRequest struct {
	Account string
	Scope   Scope
	// Sessions are the candidate hashes of the session to end (scope
	// session) or to keep (scope others); the first that exists is used.
	Sessions []string
	// User is the user whose sessions end (scope user).
	User string
	// Policy is the gateway's policy configuration; it decides deadlines
	// and how long a cutoff must be kept.
	Policy *policy.Config
	// By says who revoked, for the session.revoked events (one of the
	// events.By* values); empty is events.ByAdmin.
	By string
}

// Event is an audit event.
type Event struct {
	// ID is assigned by the store.
	ID string `json:"id"`
	// Time of the event.
	Time time.Time `json:"time"`
	// Type is e.g. "policy.update" or "sessions.revoke".
	Type string `json:"type"`
	// Actor is who did it.
	Actor string `json:"actor"`
	// Account is the account the event belongs to.
	Account string `json:"account"`
	// Data holds the event's details.
	Data json.RawMessage `json:"data,omitempty"`
}

// AuditCap is how many events a store keeps per account.
const AuditCap = 1000

// Deadlines computes the deadlines of rec under the policy in force and
// fills a TouchResult.
func Deadlines(rec *session.Record, p policy.Policy, st session.Status, now time.Time, created bool) TouchResult {
	return TouchResult{
		Status:            st,
		Created:           created,
		Now:               now,
		Policy:            p,
		IdleExpiresAt:     rec.IdleExpiresAt(p),
		AbsoluteExpiresAt: rec.AbsoluteExpiresAt(p),
	}
}

// PolicyInForce is the policy a session follows: its snapshot, or with
// apply mode immediately the account's current effective policy.
func PolicyInForce(cfg *policy.Config, rec *session.Record, ov policy.Override) policy.Policy {
	if cfg.Apply == policy.ApplyImmediately {
		return cfg.Effective(ov, rec.Claimed)
	}
	return rec.Policy
}

// Retention is how long the record of a session must be kept: until its
// absolute deadline or its token's expiry, whichever is later, plus a
// minute of slack for clock skew.
func Retention(absoluteAt, notAfter time.Time) time.Time {
	t := absoluteAt
	if notAfter.After(t) {
		t = notAfter
	}
	return t.Add(time.Minute)
}
