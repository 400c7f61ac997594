package store

import (
	"context"
	"time"
)

// SubjectIndex is implemented by stores that can find sessions by the
// identity provider's session (the token's sid) or user (its sub) across
// accounts, which back-channel logout needs: a logout token names no
// account. Memory and Redis implement it.
type SubjectIndex interface {
	// IndexSession records that the session e.Account/e.SessionHash is
	// used with tokens carrying e.SIDHash and e.Subject (either may be
	// empty), until e.Until (a later Until of the same entry wins). It
	// returns the latest logout recorded for either (zero when none): a
	// session whose login is before it must end. It is idempotent.
	IndexSession(ctx context.Context, e IndexEntry) (time.Time, error)
	// LogoutSID records a logout of the IdP session sidHash at the
	// store's now, kept for keep, and returns the sessions indexed under
	// it (Account and SessionHash set).
	LogoutSID(ctx context.Context, sidHash string, keep time.Duration) ([]Indexed, error)
	// LogoutSubject records a logout of the IdP user sub at the store's
	// now, kept for keep, and returns the account and session user of
	// every account where sub has sessions (Account and User set).
	LogoutSubject(ctx context.Context, sub string, keep time.Duration) ([]Indexed, error)
}

// IndexEntry is one session as SubjectIndex records it.
type IndexEntry struct {
	Account, SessionHash, User string
	// SIDHash is the hash of the token's sid; Subject its sub.
	SIDHash, Subject string
	// Until is when the entry may be forgotten: the session's retention.
	Until time.Time
}

// Indexed is a session, or a user in an account, found by SubjectIndex.
type Indexed struct {
	Account, SessionHash, User string
}

// OnceStore is implemented by stores that remember one-time ids (a
// logout token's jti, a webhook's id) for every gateway sharing them, so
// that a replay is refused wherever it arrives. Memory and Redis
// implement it.
type OnceStore interface {
	// Once records id for ttl and reports whether it was new; a second
	// call with the same id within ttl reports false.
	Once(ctx context.Context, id string, ttl time.Duration) (bool, error)
	// Forget drops id, so that a request whose work failed after Once
	// can be retried.
	Forget(ctx context.Context, id string) error
}
