// Package session is the session state machine: given a session record,
// the time and the policy in force, it decides whether the session is
// active, idle-expired, absolute-expired or revoked, and how a request
// touches it. It knows nothing of Caddy or of any store; every store
// implements these same rules.
package session

import (
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
)

// Status is the state of a session.
type Status uint8

// Session states. The ended states (idle, absolute, revoked) are final:
// once a session has ended it never becomes active again.
const (
	Active Status = iota
	ExpiredIdle
	ExpiredAbsolute
	Revoked
	// Unbound is reported by an opaque-cookie lookup for a cookie no
	// session is bound to. It is never stored.
	Unbound
	// WrongUser is reported for a token whose user is not the user the
	// session was created for; the session is left untouched. It is
	// never stored.
	WrongUser
	// LimitReached is reported for a new session refused because its
	// user has as many live sessions as the account's limit allows
	// (on_limit deny). It is never stored.
	LimitReached
)

// String returns the contract's name of the state: "active", "idle",
// "absolute" or "revoked".
func (s Status) String() string {
	switch s {
	case Active:
		return "active"
	case ExpiredIdle:
		return "idle"
	case ExpiredAbsolute:
		return "absolute"
	case Revoked:
		return "revoked"
	case Unbound:
		return "unbound"
	case WrongUser:
		return "wrong_user"
	case LimitReached:
		return "limit_reached"
	}
	return "unknown"
}

// ParseStatus is the inverse of Status.String; unknown names are Revoked,
// so that a corrupted record never lets a request through.
func ParseStatus(s string) Status {
	switch s {
	case "", "active":
		return Active
	case "idle":
		return ExpiredIdle
	case "absolute":
		return ExpiredAbsolute
	}
	return Revoked
}

// Record is the server-side state of one session.
type Record struct {
	// Hash identifies the session; it is a hash of the session id.
	Hash string
	// Account, User, Role, Name and Email come from the token.
	Account, User, Role, Name, Email string
	// IP and UserAgent are those of the request that created the session.
	IP, UserAgent string
	// LoginAt is the login time; the absolute limit counts from it.
	LoginAt time.Time
	// LastSeen is the time of the last request that counted as activity.
	LastSeen time.Time
	// Policy is the snapshot taken at creation.
	Policy policy.Policy
	// Claimed is the policy the token carried, kept for apply mode
	// immediately.
	Claimed policy.Claimed
	// Ended is the final state once the session has ended, else Active.
	Ended Status
	// EndedAt is when a revocation ended the session; zero otherwise.
	EndedAt time.Time
}

// IdleExpiresAt is when the session expires for inactivity under p.
func (r *Record) IdleExpiresAt(p policy.Policy) time.Time { return r.LastSeen.Add(p.Idle) }

// AbsoluteExpiresAt is when the session expires whatever its activity
// under p.
func (r *Record) AbsoluteExpiresAt(p policy.Policy) time.Time { return r.LoginAt.Add(p.Absolute) }

// State returns the status of r at now under p without changing r. The
// absolute limit is checked before the idle one; a deadline equal to now
// has passed.
func (r *Record) State(now time.Time, p policy.Policy) Status {
	if r.Ended != Active {
		return r.Ended
	}
	if !now.Before(r.AbsoluteExpiresAt(p)) {
		return ExpiredAbsolute
	}
	if !now.Before(r.IdleExpiresAt(p)) {
		return ExpiredIdle
	}
	return Active
}

// Touch applies one request at now under p: an ended session stays
// ended; a session found expired is marked so for good; an active one
// has its LastSeen moved to now unless passive or coalesced. LastSeen
// never moves backwards, so a retried or reordered touch is harmless,
// and the absolute deadline never moves at all.
//
// Touches are coalesced by every: LastSeen moves only when now is at
// least every after it, so a burst of requests writes the session once
// per interval instead of once per request. The idle deadline then
// trails the true last activity by less than every, which can only end
// a session that much earlier, never later. every is capped at a quarter
// of p.Idle; every <= 0 moves LastSeen on every later request.
func (r *Record) Touch(now time.Time, p policy.Policy, passive bool, every time.Duration) Status {
	st := r.State(now, p)
	if st != Active {
		r.Ended = st
		return st
	}
	// Never coarser than a quarter of the session's idle timeout, whatever
	// the configuration (records keep the policy they were created with).
	every = min(every, (p.Idle / 4).Truncate(time.Millisecond))
	if !passive && now.After(r.LastSeen) && now.Sub(r.LastSeen) >= every {
		r.LastSeen = now
	}
	return Active
}

// Restarts reports whether a token issued at issuedAt for the login at
// loginAt starts a new generation of the session r, which is in the
// ended state st under p. After idle expiry a token issued after the idle
// deadline does (an SSO re-issue); after absolute expiry or revocation
// only a login later than the end does. A zero time never restarts.
func (r *Record) Restarts(st Status, p policy.Policy, issuedAt, loginAt time.Time) bool {
	switch st {
	case ExpiredIdle:
		return issuedAt.After(r.IdleExpiresAt(p))
	case ExpiredAbsolute:
		return loginAt.After(r.AbsoluteExpiresAt(p))
	case Revoked:
		end := r.EndedAt
		if end.IsZero() {
			end = r.LastSeen
		}
		return loginAt.After(end)
	}
	return false
}

// New returns the record of a session first seen at now. A login time in
// the future (clock skew of the issuer) counts as now.
func New(hash string, loginAt, now time.Time, p policy.Policy) *Record {
	if loginAt.After(now) {
		loginAt = now
	}
	return &Record{Hash: hash, LoginAt: loginAt, LastSeen: now, Policy: p}
}

// Before reports whether a token logged in at loginAt is older than a
// revocation cutoff, at millisecond precision: a login in the same second
// as a revocation, but before it, is cut off.
func Before(loginAt, cutoff time.Time) bool {
	if cutoff.IsZero() {
		return false
	}
	return loginAt.UnixMilli() < cutoff.UnixMilli()
}

// HashID returns the hash under which a raw session id is stored and
// shown: the unpadded base64url SHA-256 of id, truncated to 128 bits.
func HashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// LooksLikeHash reports whether s has the shape of a HashID result.
func LooksLikeHash(s string) bool {
	if len(s) != 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
