// Package devtoken mints HS256 JWTs shaped the way sessionguard reads
// them, for the demo app, the `caddy session-guard token` command and
// tests. It is not an identity provider.
package devtoken

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims describe a token to mint. Zero fields are left out, except the
// session id (random when empty) and the times.
type Claims struct {
	Session, User, Account, Role, Name, Email string
	// LoginAt is the auth_time; default now.
	LoginAt time.Time
	// TTL is the token's lifetime from now; default 1h.
	TTL time.Duration
	// Idle and Absolute, when set, are put into idle_max / abs_max
	// (seconds).
	Idle, Absolute time.Duration
	// Now is the issue time; default time.Now().
	Now time.Time
	// Extra claims, added last.
	Extra map[string]any
}

// NewSessionID returns a random session id.
func NewSessionID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Mint signs c with secret using HS256.
func Mint(secret []byte, c Claims) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("empty secret")
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	if c.LoginAt.IsZero() {
		c.LoginAt = now
	}
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.Session == "" {
		c.Session = NewSessionID()
	}
	mc := jwt.MapClaims{
		"sid":       c.Session,
		"sub":       c.User,
		"iat":       now.Unix(),
		"auth_time": loginTime(c.LoginAt),
		"exp":       now.Add(c.TTL).Unix(),
	}
	for k, v := range map[string]string{"acct": c.Account, "role": c.Role, "name": c.Name, "email": c.Email} {
		if v != "" {
			mc[k] = v
		}
	}
	if c.Idle > 0 {
		mc["idle_max"] = int64(c.Idle / time.Second)
	}
	if c.Absolute > 0 {
		mc["abs_max"] = int64(c.Absolute / time.Second)
	}
	for k, v := range c.Extra {
		mc[k] = v
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, mc).SignedString(secret)
}

// loginTime is auth_time in seconds with millisecond precision (RFC 7519
// allows fractions): revocation cutoffs compare milliseconds, so a login
// later in the same second as a revocation is told apart from one before.
func loginTime(t time.Time) any {
	if t.UnixMilli()%1000 == 0 {
		return t.Unix()
	}
	return float64(t.UnixMilli()) / 1000
}
