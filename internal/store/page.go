package store

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/sessionguard/sessionguard/internal/policy"
)

// Page asks for one page of an account's sessions.
type Page struct {
	// Cursor is "" for the first page, else a SessionPage.Next.
	Cursor string
	// Limit bounds how many sessions the store examines for the page:
	// DefaultPageLimit when zero or negative, at most MaxPageLimit.
	Limit int
}

// SessionPage is one page of a listing.
type SessionPage struct {
	// Sessions are live sessions, oldest login first, then by hash.
	Sessions []SessionInfo
	// Users has, for each user of Sessions, how many live sessions the
	// user has in the whole account.
	Users map[string]int
	// Next is the cursor of the following page, "" on the last one.
	Next string
}

// Page limits.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 100
)

// ErrBadCursor is returned for a cursor no store produced.
var ErrBadCursor = errors.New("invalid cursor")

// limit is p.Limit within (0, MaxPageLimit].
func (p Page) limit() int {
	if p.Limit <= 0 {
		return DefaultPageLimit
	}
	return min(p.Limit, MaxPageLimit)
}

// A cursor is the position of the last session a page examined: its
// login time and hash, base64url-encoded so that clients treat it as
// opaque. Every store orders by (login, escaped hash), so a cursor of one
// store means the same to another.
func encodeCursorMember(loginMs int64, m string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(loginMs, 10) + "." + m))
}

// decodeCursor returns the login time in ms and the index member of a
// cursor; "" is the start (ok, zero values, start true).
func decodeCursor(c string) (loginMs int64, m string, start bool, err error) {
	if c == "" {
		return 0, "", true, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", false, ErrBadCursor
	}
	ms, m, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < -maxSafeMillis || n > maxSafeMillis {
		return 0, "", false, ErrBadCursor
	}
	if _, ok := keyUnescape(m); !ok {
		return 0, "", false, ErrBadCursor
	}
	return n, m, false, nil
}

// ListAll pages through all live sessions of an account, for tools and
// tests; a server answers one page per request.
func ListAll(ctx context.Context, s Store, account string, cfg *policy.Config) ([]SessionInfo, error) {
	out := []SessionInfo{}
	p := Page{Limit: MaxPageLimit}
	for {
		pg, err := s.Sessions(ctx, account, cfg, p)
		if err != nil {
			return nil, err
		}
		out = append(out, pg.Sessions...)
		if pg.Next == "" {
			return out, nil
		}
		p.Cursor = pg.Next
	}
}
