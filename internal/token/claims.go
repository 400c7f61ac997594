package token

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessionguard/sessionguard/internal/session"
)

// Default claim names used by [ClaimMap.WithDefaults].
const (
	DefaultSessionClaim = "sid"
	DefaultUserClaim    = "sub"
	DefaultAccountClaim = "acct"
	DefaultRoleClaim    = "role"
	DefaultLoginClaim   = "auth_time"
	DefaultNameClaim    = "name"
	DefaultEmailClaim   = "email"
)

const (
	// maxClaimLength is the maximum length in bytes of a string claim.
	maxClaimLength = 256

	// maxTimeout bounds the idle and absolute timeout claims.
	maxTimeout = 10 * 365 * 24 * time.Hour

	// maxUnixSeconds is 9999-12-31T23:59:59Z, the latest NumericDate
	// accepted in any time claim.
	maxUnixSeconds = 253402300799

	// iatClaim is the fallback for the login time claim.
	iatClaim = "iat"
)

// ClaimMap names the JWT claims sessionguard reads. Zero fields take the
// defaults shown. A name may be a path, "ext.acct" (dots step into
// objects), or a JSON Pointer, "/https:~1~1example.com~1roles" (RFC 6901),
// for names that contain dots.
type ClaimMap struct {
	// Session is the session key: space-separated alternatives, the
	// first one present wins; an alternative "sub+auth_time" joins
	// several claims into one key. Default: "sid".
	Session string `json:"session,omitempty"`

	// User is the user id claim. Default: "sub".
	User string `json:"user,omitempty"`

	// Account is the account (tenant) id claim. Default: "acct".
	Account string `json:"account,omitempty"`

	// Role is the role claim, a string or an array of strings.
	// Default: "role".
	Role string `json:"role,omitempty"`

	// Login is the login time claim, in seconds since the epoch; when it
	// is absent, "iat" is used instead. Default: "auth_time".
	Login string `json:"login,omitempty"`

	// Name is the display name claim. Default: "name".
	Name string `json:"name,omitempty"`

	// Email is the email address claim. Default: "email".
	Email string `json:"email,omitempty"`

	// Idle is the claim holding a per-session idle timeout in seconds.
	// Default: empty (not mapped).
	Idle string `json:"idle,omitempty"`

	// Absolute is the claim holding a per-session absolute timeout in
	// seconds. Default: empty (not mapped).
	Absolute string `json:"absolute,omitempty"`

	// DefaultAccount, when set, is the account of a token without an
	// account claim; otherwise such a token is invalid.
	DefaultAccount string `json:"-"`
}

// WithDefaults returns a copy of m with every empty field except Idle and
// Absolute set to its default claim name.
func (m ClaimMap) WithDefaults() ClaimMap {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&m.Session, DefaultSessionClaim)
	def(&m.User, DefaultUserClaim)
	def(&m.Account, DefaultAccountClaim)
	def(&m.Role, DefaultRoleClaim)
	def(&m.Login, DefaultLoginClaim)
	def(&m.Name, DefaultNameClaim)
	def(&m.Email, DefaultEmailClaim)
	return m
}

// Identity is what a verified token says.
type Identity struct {
	// SessionID is the session claim; never empty.
	SessionID string
	// SessionHash is session.HashID(SessionID), computed once when the
	// token is verified (and kept by the verified-token cache), because
	// the store, the upstream header and the placeholders all need it.
	SessionHash string
	// UserID is the user claim; never empty.
	UserID string
	// AccountID is the account claim, or ClaimMap.DefaultAccount when
	// the claim is absent. It is opaque and may contain any character
	// except NUL, CR and LF.
	AccountID string
	// Roles are the role claim's values: one for a string, each for an
	// array of strings; none when it is absent or of another type.
	Roles []string
	// Role is Roles joined with ", ".
	Role string
	// Name is the display name claim, or empty.
	Name string
	// Email is the email claim, or empty.
	Email string
	// LoginAt is the login time (auth_time, else iat), truncated to the
	// millisecond; revocation cutoffs are compared at that precision.
	LoginAt time.Time
	// ExpiresAt is the token's expiration time (exp).
	ExpiresAt time.Time
	// IssuedAt is the token's iat, or zero when absent.
	IssuedAt time.Time
	// Idle is the idle timeout carried by the token, or 0 when the claim
	// is not mapped or absent.
	Idle time.Duration
	// Absolute is the absolute timeout carried by the token, or 0 when the
	// claim is not mapped or absent.
	Absolute time.Duration
	// SIDHash is session.HashID of the token's top-level sid claim (the
	// OpenID Provider's session), or empty; and Subject its top-level
	// sub claim. Back-channel logout finds sessions by them, whatever
	// the claims mapping.
	SIDHash, Subject string
}

// claimSet is the decoded payload of a token. It implements [jwt.Claims]
// with stricter rules than [jwt.MapClaims]: time claims must be finite,
// non-negative numbers no later than year 9999, so that no value can
// overflow a time conversion.
type claimSet map[string]any

// identity builds the Identity from a verified claim set. It must only be
// called after the token signature has been verified.
func (m ClaimMap) identity(c claimSet) (*Identity, error) {
	var (
		id  Identity
		err error
	)
	if _, ok := c["events"]; ok && isLogoutToken(c) {
		// cross-JWT confusion: a logout token is no credential
		return nil, fmt.Errorf("%w: a logout token is not accepted as a credential", ErrInvalid)
	}
	if id.SessionID, err = c.sessionKey(m.Session); err != nil {
		return nil, err
	}
	id.SessionHash = session.HashID(id.SessionID)
	id.idpClaims(c)
	if id.UserID, err = c.requiredString("user", m.User); err != nil {
		return nil, err
	}
	id.AccountID = m.DefaultAccount
	if v, _ := c.get(m.Account); v != nil || m.DefaultAccount == "" {
		if id.AccountID, err = c.requiredString("account", m.Account); err != nil {
			return nil, err
		}
	}
	if id.Roles, err = c.roles(m.Role); err != nil {
		return nil, err
	}
	id.Role = strings.Join(id.Roles, ", ")
	// Name and email that are not strings are treated as absent.
	if id.Name, err = c.optionalString("name", m.Name); err != nil {
		return nil, err
	}
	if id.Email, err = c.optionalString("email", m.Email); err != nil {
		return nil, err
	}

	login, ok, err := c.date(m.Login)
	if err != nil {
		return nil, err
	}
	if !ok && m.Login != iatClaim {
		if login, ok, err = c.date(iatClaim); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: token has no login time claim %q or %q", ErrInvalid, m.Login, iatClaim)
	}
	id.LoginAt = login.Truncate(time.Millisecond)

	exp, ok, err := c.date("exp")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: token has no exp claim", ErrInvalid)
	}
	id.ExpiresAt = exp
	if id.IssuedAt, _, err = c.date(iatClaim); err != nil {
		return nil, err
	}

	if id.Idle, err = c.timeout("idle", m.Idle); err != nil {
		return nil, err
	}
	if id.Absolute, err = c.timeout("absolute", m.Absolute); err != nil {
		return nil, err
	}
	return &id, nil
}

// idpClaims sets SIDHash and Subject from the top-level sid and sub
// claims, when they are strings (a sub that could not be a user id is
// left out: the user claim decides whether the token is valid).
func (id *Identity) idpClaims(c claimSet) {
	if sid, ok := c["sid"].(string); ok && sid != "" {
		id.SIDHash = session.HashID(sid)
	}
	if sub, ok := c["sub"].(string); ok && checkString("subject", "sub", sub) == nil {
		id.Subject = sub
	}
}

// get returns the claim at name: a top-level name, a dotted path into
// objects, or a JSON Pointer (RFC 6901) when name starts with "/". A
// JSON null is present, with a nil value.
func (c claimSet) get(name string) (any, bool) {
	var steps []string
	if p, ok := strings.CutPrefix(name, "/"); ok {
		steps = strings.Split(p, "/")
		for i, s := range steps {
			steps[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		}
	} else {
		steps = strings.Split(name, ".")
	}
	var cur any = map[string]any(c)
	for _, s := range steps {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[s]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(v) || strconv.Itoa(i) != s {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// sessionKey returns the first of the space-separated alternatives that
// is present; "a+b" joins claims a and b with "+".
func (c claimSet) sessionKey(alts string) (string, error) {
	for _, alt := range strings.Fields(alts) {
		var parts []string
		names := strings.Split(alt, "+")
		for _, name := range names {
			s, err := c.keyPart(name, len(names) > 1)
			if err != nil {
				return "", err
			}
			if s == "" {
				parts = nil
				break
			}
			parts = append(parts, s)
		}
		if len(parts) > 0 {
			return strings.Join(parts, "+"), nil
		}
	}
	names := `"` + strings.Join(strings.Fields(alts), `" or "`) + `"`
	return "", fmt.Errorf("%w: token has no session claim %s", ErrInvalid, names)
}

// keyPart returns a string claim, or in a joined key also an integer one,
// as a string; "" when absent.
func (c claimSet) keyPart(name string, joined bool) (string, error) {
	v, _ := c.get(name)
	if v == nil {
		return "", nil
	}
	if f, isNum := number(v); isNum && joined {
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return "", fmt.Errorf("%w: session claim %q is not a string or an integer", ErrInvalid, name)
		}
		return strconv.FormatInt(int64(f), 10), nil
	}
	if _, isString := v.(string); !isString {
		return "", fmt.Errorf("%w: session claim %q is not a string", ErrInvalid, name)
	}
	return c.optionalString("session", name)
}

// requiredString returns the non-empty string claim name.
func (c claimSet) requiredString(what, name string) (string, error) {
	if v, _ := c.get(name); v != nil {
		if _, isString := v.(string); !isString {
			return "", fmt.Errorf("%w: %s claim %q is not a string", ErrInvalid, what, name)
		}
	}
	s, err := c.optionalString(what, name)
	if err == nil && s == "" {
		err = fmt.Errorf("%w: token has no %s claim %q", ErrInvalid, what, name)
	}
	return s, err
}

// optionalString returns the claim name when it is a string, else "". A
// string with a forbidden character or longer than 256 bytes is an error.
func (c claimSet) optionalString(what, name string) (string, error) {
	v, _ := c.get(name)
	s, ok := v.(string)
	if !ok {
		return "", nil
	}
	return s, checkString(what, name, s)
}

func checkString(what, name, s string) error {
	if len(s) > maxClaimLength {
		return fmt.Errorf("%w: %s claim %q is longer than %d bytes", ErrInvalid, what, name, maxClaimLength)
	}
	if !ValidValue(s) {
		return fmt.Errorf("%w: %s claim %q contains a forbidden character (a control character)", ErrInvalid, what, name)
	}
	return nil
}

// roles returns the role claim: a string, or an array of strings. Any
// other type, or an array with a non-string, counts as no role, so that
// nothing unexpected turns into a privilege.
func (c claimSet) roles(name string) ([]string, error) {
	v, _ := c.get(name)
	switch r := v.(type) {
	case string:
		if r == "" {
			return nil, nil
		}
		return []string{r}, checkString("role", name, r)
	case []any:
		out := make([]string, 0, len(r))
		for _, e := range r {
			s, ok := e.(string)
			if !ok {
				return nil, nil
			}
			if err := checkString("role", name, s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		if len(strings.Join(out, ", ")) > 4*maxClaimLength {
			return nil, fmt.Errorf("%w: role claim %q is too long", ErrInvalid, name)
		}
		return out, nil
	}
	return nil, nil
}

// HasRole reports whether any of the identity's roles is in set.
func (id *Identity) HasRole(set map[string]struct{}) bool {
	roles := id.Roles
	if roles == nil && id.Role != "" {
		roles = []string{id.Role}
	}
	for _, r := range roles {
		if _, ok := set[r]; ok {
			return true
		}
	}
	return false
}

// ValidValue reports whether s may become a header value, a store field
// and a line in a listing: it has no control character (U+0000-U+001F,
// U+007F), which would break the upstream hop or inject terminal escapes.
func ValidValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// timeout returns the mapped timeout claim name, in whole seconds. It
// returns 0 when name is empty or the claim is absent or null.
func (c claimSet) timeout(what, name string) (time.Duration, error) {
	if name == "" {
		return 0, nil
	}
	v, ok := c.get(name)
	if !ok || v == nil {
		return 0, nil
	}
	f, ok := number(v)
	switch {
	case !ok:
		return 0, fmt.Errorf("%w: %s claim %q is not a number", ErrInvalid, what, name)
	case f != math.Trunc(f):
		return 0, fmt.Errorf("%w: %s claim %q is not a whole number of seconds", ErrInvalid, what, name)
	case f <= 0:
		return 0, fmt.Errorf("%w: %s claim %q is not positive", ErrInvalid, what, name)
	case f > maxTimeout.Seconds():
		return 0, fmt.Errorf("%w: %s claim %q is too large", ErrInvalid, what, name)
	}
	return time.Duration(f) * time.Second, nil
}

// date returns the time claim name and whether it is present. A present
// claim must be a finite number of seconds between 0 and year 9999.
func (c claimSet) date(name string) (time.Time, bool, error) {
	v, ok := c.get(name)
	if !ok {
		return time.Time{}, false, nil
	}
	f, ok := number(v)
	if !ok {
		return time.Time{}, true, fmt.Errorf("%w: %s claim is not a number", ErrInvalid, name)
	}
	if math.IsNaN(f) || f < 0 || f > maxUnixSeconds {
		return time.Time{}, true, fmt.Errorf("%w: %s claim is out of range", ErrInvalid, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// number returns v as a float64 if it is a finite JSON number.
func number(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, false
		}
	case float64:
		f = n
	default:
		return 0, false
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// numericDate implements the jwt.Claims time getters.
func (c claimSet) numericDate(name string) (*jwt.NumericDate, error) {
	t, ok, err := c.date(name)
	if err != nil {
		return nil, &verifyError{err}
	}
	if !ok {
		return nil, nil
	}
	return &jwt.NumericDate{Time: t}, nil
}

// GetExpirationTime implements [jwt.Claims].
func (c claimSet) GetExpirationTime() (*jwt.NumericDate, error) { return c.numericDate("exp") }

// GetNotBefore implements [jwt.Claims].
func (c claimSet) GetNotBefore() (*jwt.NumericDate, error) { return c.numericDate("nbf") }

// GetIssuedAt implements [jwt.Claims].
func (c claimSet) GetIssuedAt() (*jwt.NumericDate, error) { return c.numericDate(iatClaim) }

// GetIssuer implements [jwt.Claims].
func (c claimSet) GetIssuer() (string, error) { return c.registeredString("iss") }

// GetSubject implements [jwt.Claims].
func (c claimSet) GetSubject() (string, error) { return c.registeredString("sub") }

// GetAudience implements [jwt.Claims]. The aud claim must be a string or
// an array of strings.
func (c claimSet) GetAudience() (jwt.ClaimStrings, error) {
	switch v := c["aud"].(type) {
	case nil:
		return nil, nil
	case string:
		return jwt.ClaimStrings{v}, nil
	case []any:
		aud := make(jwt.ClaimStrings, 0, len(v))
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				return nil, &verifyError{fmt.Errorf("%w: aud claim is not a string or an array of strings", ErrInvalid)}
			}
			aud = append(aud, s)
		}
		return aud, nil
	}
	return nil, &verifyError{fmt.Errorf("%w: aud claim is not a string or an array of strings", ErrInvalid)}
}

func (c claimSet) registeredString(name string) (string, error) {
	v, ok := c[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &verifyError{fmt.Errorf("%w: %s claim is not a string", ErrInvalid, name)}
	}
	return s, nil
}
