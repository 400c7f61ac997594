package token

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/session"
)

// LogoutEvent is the member of a logout token's events claim that makes
// it one (OpenID Connect Back-Channel Logout 1.0, section 2.4).
const LogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// MaxLogoutAge is how long after its iat a logout token is accepted, at
// most (and less when its exp comes first). It bounds how long a jti
// must be remembered to refuse every replay.
const MaxLogoutAge = 24 * time.Hour

// MaxLogoutAgeWithoutExp is how long after its iat a logout token without
// exp is accepted. The spec requires exp since 2023, but providers that
// predate that (Ory Hydra 2.2, Keycloak before 22.0.8/23.0.4) send none;
// two minutes is the lifetime the spec recommends, plus skew.
const MaxLogoutAgeWithoutExp = 5 * time.Minute

// Logout is what a verified logout token says.
type Logout struct {
	// Issuer is the iss claim.
	Issuer string
	// JTI is the jti claim; never empty.
	JTI string
	// SIDHash is session.HashID of the sid claim, or empty without one.
	SIDHash string
	// Subject is the sub claim, or empty without one. At least one of
	// SIDHash and Subject is set.
	Subject string
	// IssuedAt is the iat claim.
	IssuedAt time.Time
	// Until is the last moment the token is accepted (its exp or iat plus
	// MaxLogoutAge, whichever is first, plus the leeway): a replay memory
	// of its jti must last until then.
	Until time.Time
}

// errLogoutConfig is returned when the verifier has no issuer or no
// audience: a logout token can then not be checked as the spec demands.
var errLogoutConfig = errors.New("logout tokens need a configured issuer (or discovery) and audience")

// LogoutConfigured reports whether v can verify logout tokens: it needs
// an audience and an issuer (configured, or from discovery).
func (v *Verifier) LogoutConfigured() bool {
	return v.audience != "" && (v.issuer != "" || v.disc != nil)
}

// VerifyLogout verifies a logout token as OpenID Connect Back-Channel
// Logout 1.0, section 2.6, says: the signature, alg, iss, aud, exp and iat
// as for any token (JWE is refused as malformed); typ, when present, JWT
// or logout+jwt; an events claim holding the LogoutEvent member with an
// object value; a jti; a sub or sid claim, or both; no nonce. A token
// without exp is accepted for MaxLogoutAgeWithoutExp after its iat. Whether
// the jti was seen before is the caller's to check, with Logout.Until.
// Failures wrap ErrMalformed or ErrInvalid (and ErrKeyUnavailable when
// the keys could not be fetched), as Verify's do.
func (v *Verifier) VerifyLogout(ctx context.Context, raw string) (*Logout, error) {
	if !v.LogoutConfigured() {
		return nil, errLogoutConfig
	}
	if err := checkShape(raw, v.maxLength); err != nil {
		return nil, err
	}
	st, err := v.state(ctx, raw, logoutType)
	if err != nil {
		return nil, err
	}
	if st.issuer == "" {
		return nil, errLogoutConfig
	}
	claims, err := v.parse(ctx, st, st.logout, raw)
	if err != nil {
		return nil, err
	}
	return v.logoutClaims(claims)
}

// logoutType accepts a logout token's typ header: JWT, or the explicit
// logout+jwt, with or without "application/". An access token's at+jwt
// is refused.
func logoutType(typ string) bool {
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	return typ == "jwt" || typ == "logout+jwt"
}

// logoutClaims checks the claims particular to a logout token, after the
// signature and the registered claims were verified.
func (v *Verifier) logoutClaims(c claimSet) (*Logout, error) {
	if !isLogoutToken(c) {
		return nil, fmt.Errorf("%w: events claim does not hold the back-channel logout event", ErrInvalid)
	}
	if _, ok := c["nonce"]; ok {
		return nil, fmt.Errorf("%w: logout token has a nonce claim", ErrInvalid)
	}
	lo := &Logout{}
	lo.Issuer, _ = c["iss"].(string)
	var err error
	if lo.JTI, err = c.requiredString("jti", "jti"); err != nil {
		return nil, err
	}
	sid, err := c.topString("sid")
	if err != nil {
		return nil, err
	}
	if sid != "" {
		lo.SIDHash = session.HashID(sid)
	}
	if lo.Subject, err = c.topString("sub"); err != nil {
		return nil, err
	}
	if sid == "" && lo.Subject == "" {
		return nil, fmt.Errorf("%w: logout token has neither sub nor sid", ErrInvalid)
	}
	iat, ok, err := c.date(iatClaim)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: logout token has no iat claim", ErrInvalid)
	}
	exp, hasExp, err := c.date("exp")
	if err != nil {
		return nil, err
	}
	lo.IssuedAt = iat
	lo.Until = iat.Add(MaxLogoutAge)
	if !hasExp {
		lo.Until = iat.Add(MaxLogoutAgeWithoutExp)
	} else if exp.Before(lo.Until) {
		lo.Until = exp
	}
	lo.Until = lo.Until.Add(v.leeway)
	if !v.now().Before(lo.Until) {
		return nil, fmt.Errorf("%w: logout token is too old", ErrInvalid)
	}
	return lo, nil
}

// isLogoutToken reports whether the claims hold an events object with the
// back-channel logout member, whose value is an object.
func isLogoutToken(c claimSet) bool {
	events, ok := c["events"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = events[LogoutEvent].(map[string]any)
	return ok
}

// topString returns the top-level claim name: "" when absent, an error
// when it is not a string of the accepted length and characters, or
// empty.
func (c claimSet) topString(name string) (string, error) {
	v, ok := c[name]
	if !ok {
		return "", nil
	}
	s, isString := v.(string)
	if !isString || s == "" {
		return "", fmt.Errorf("%w: %s claim is not a non-empty string", ErrInvalid, name)
	}
	return s, checkString(name, name, s)
}
