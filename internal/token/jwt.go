package token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

var (
	// ErrInvalid is returned by [Verifier.Verify] for a token that is not
	// acceptable: bad signature, disallowed algorithm, expired, wrong
	// issuer or audience, missing or bad claims. It is always wrapped with
	// a short description that is safe to log. A gateway answers it with
	// 401 invalid_token.
	ErrInvalid = errors.New("invalid token")

	// ErrKeyUnavailable is returned, together with [ErrInvalid], when the
	// key needed to verify a token is not known and the JWKS could not be
	// fetched. It lets a caller tell an identity provider outage from a
	// bad token.
	ErrKeyUnavailable = errors.New("signing key unavailable")
)

const (
	// MinSecretLength is the minimum length in bytes of an HMAC secret.
	MinSecretLength = 32

	// DefaultJWKSRefresh is the default value of Config.JWKSRefresh.
	DefaultJWKSRefresh = 5 * time.Minute

	// DefaultJWKSTimeout is the timeout of the default JWKS HTTP client.
	DefaultJWKSTimeout = 5 * time.Second

	// maxKIDLength bounds the kid header; longer ones are rejected.
	maxKIDLength = 256
)

// Config configures a [Verifier].
type Config struct {
	// Algorithms is the allowlist of JWS algorithms, for example
	// ["RS256"]. Required. Supported: HS256 HS384 HS512 RS256 RS384 RS512
	// PS256 PS384 PS512 ES256 ES384 ES512 EdDSA. "none" is never allowed.
	Algorithms []string

	// Secret is the HMAC key for HS256, HS384 and HS512. When set it must
	// be at least 32 bytes. Only HS* tokens are ever verified with it.
	Secret []byte

	// PublicKeys are the static verification keys for RS*, PS*, ES* and
	// EdDSA: *rsa.PublicKey (at least 2048 bits), *ecdsa.PublicKey (P-256,
	// P-384 or P-521) or ed25519.PublicKey. See [LoadPublicKeys].
	PublicKeys []crypto.PublicKey

	// JWKSURL is the http or https URL of a JSON Web Key Set. Optional.
	// Keys are fetched lazily when first needed and cached by kid.
	JWKSURL string

	// JWKSRefresh, when set, is the routine refresh interval of the JWKS;
	// otherwise the response's Cache-Control max-age within [1m, 24h] is
	// used, else 5m. The refresh runs in the background from the first
	// successful fetch until Context ends or Close is called.
	JWKSRefresh time.Duration

	// JWKSRefetch is the minimum interval between refetches caused by a
	// token with an unknown kid (or an unknown alg under Discovery).
	// Default: [DefaultJWKSRefetch] (1s).
	JWKSRefetch time.Duration

	// Discovery is an OpenID Provider's issuer URL. Its
	// /.well-known/openid-configuration, fetched on first use, gives the
	// JWKS URL, the issuer iss must equal and the signing algorithms
	// (intersected with Algorithms when set; never none or HS*).
	Discovery string

	// HTTPClient fetches the JWKS and the discovery document. Default: a
	// client with a 5s timeout.
	HTTPClient *http.Client

	// Context, when set, ends the background JWKS refresh. Close ends it
	// too.
	Context context.Context

	// Issuer, when set, must equal the token's iss claim.
	Issuer string

	// Audience, when set, must be one of the token's aud values.
	Audience string

	// Leeway is the clock skew tolerated when checking exp, nbf and iat:
	// a token is accepted until exp plus Leeway, from nbf minus Leeway,
	// and only when its iat is at most Leeway in the future. Default: 0.
	Leeway time.Duration

	// Claims names the claims read from the token. See [ClaimMap].
	Claims ClaimMap

	// MaxLength is the maximum token length in bytes.
	// Default: [DefaultMaxTokenLength] (8192).
	MaxLength int

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// CacheSize is the number of verified tokens remembered, keyed by
	// the SHA-256 of the token, so that a token seen again is not
	// verified again (which matters for RS*, PS*, ES* and EdDSA). An
	// entry is never used at or after the token's exp, before its nbf or
	// iat (minus Leeway), or more than 5 minutes after it was verified. Default:
	// [DefaultCacheSize] (10000); negative disables the cache.
	CacheSize int
}

// Verifier verifies JWTs. It is safe for concurrent use.
type Verifier struct {
	static    *keyState  // nil under discovery
	disc      *discovery // nil without discovery
	secret    []byte
	keys      []crypto.PublicKey
	claims    ClaimMap
	issuer    string // configured; under discovery it overrides the discovered one
	audience  string
	maxLength int
	leeway    time.Duration
	now       func() time.Time
	cache     *verifiedCache // nil when disabled
	cancel    context.CancelFunc
}

// keyState is what a token is checked against: the allowed algorithms,
// the issuer and the JWKS. It is fixed by New, or built from discovery.
type keyState struct {
	algs   map[string]algorithm
	names  []string
	issuer string
	jwks   *jwksSource // nil without a JWKS
	parser *jwt.Parser
	// logout parses logout tokens: as parser, but exp is optional (some
	// providers send none; see VerifyLogout)
	logout *jwt.Parser
}

// New validates cfg and returns a Verifier. Every allowed algorithm must
// have a key source of the matching type: HS* need Secret; RS* and PS* an
// RSA key, a JWKS URL or discovery; ES* an ECDSA key on the algorithm's
// curve, a JWKS URL or discovery; EdDSA an Ed25519 key, a JWKS URL or
// discovery. New never touches the network.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Algorithms) == 0 && cfg.Discovery == "" {
		return nil, errors.New("no algorithms configured")
	}
	v := &Verifier{
		claims:    cfg.Claims.WithDefaults(),
		issuer:    cfg.Issuer,
		audience:  cfg.Audience,
		maxLength: cfg.MaxLength,
	}
	algs, names, err := parseAlgorithms(cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	if err := v.setKeys(cfg, algs); err != nil {
		return nil, err
	}
	if cfg.MaxLength < 0 {
		return nil, fmt.Errorf("negative max length %d", cfg.MaxLength)
	}
	if v.maxLength == 0 {
		v.maxLength = DefaultMaxTokenLength
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("negative leeway %s", cfg.Leeway)
	}
	if cfg.JWKSRefresh < 0 || cfg.JWKSRefetch < 0 {
		return nil, errors.New("negative JWKS refresh interval")
	}
	v.leeway, v.now = cfg.Leeway, cfg.Now
	if v.now == nil {
		v.now = time.Now
	}
	ctx := cfg.Context
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, v.cancel = context.WithCancel(ctx)
	newJWKS := func(u string) *jwksSource {
		return newJWKSSource(ctx, u, cfg.HTTPClient, cfg.JWKSRefresh, cfg.JWKSRefetch, v.now)
	}

	switch {
	case cfg.Discovery != "" && cfg.JWKSURL != "":
		return nil, errors.New("discovery and a JWKS URL are exclusive")
	case cfg.Discovery != "":
		if err := checkURL("discovery", cfg.Discovery); err != nil {
			return nil, err
		}
		for _, name := range names {
			if algs[name].kind == kindHMAC && v.secret == nil {
				return nil, fmt.Errorf("algorithm %s needs a secret", name)
			}
		}
		v.disc = newDiscovery(cfg.Discovery, cfg.HTTPClient, cfg.JWKSRefetch, v.now, func(d discoveryDoc, prev *keyState) *keyState {
			jwks := newJWKS
			if prev != nil && prev.jwks.url == d.JWKSURI {
				jwks = func(string) *jwksSource { return prev.jwks }
			}
			return v.newState(intersect(names, d.Algs), d.Issuer, jwks(d.JWKSURI))
		})
	default:
		var jwks *jwksSource
		if cfg.JWKSURL != "" {
			if err := checkURL("JWKS URL", cfg.JWKSURL); err != nil {
				return nil, err
			}
			jwks = newJWKS(cfg.JWKSURL)
		}
		if err := v.checkKeySources(algs, names, jwks != nil); err != nil {
			return nil, err
		}
		v.static = v.newState(names, "", jwks)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	v.cache = newVerifiedCache(size)
	return v, nil
}

// Close stops the background JWKS refresh.
func (v *Verifier) Close() { v.cancel() }

// parseAlgorithms checks the configured allowlist.
func parseAlgorithms(list []string) (map[string]algorithm, []string, error) {
	algs := make(map[string]algorithm, len(list))
	var names []string
	for _, name := range list {
		if strings.EqualFold(strings.TrimSpace(name), "none") {
			return nil, nil, fmt.Errorf("algorithm %q is not allowed", name)
		}
		a, ok := algorithms[name]
		if !ok {
			return nil, nil, fmt.Errorf("unsupported algorithm %q", name)
		}
		if _, dup := algs[name]; !dup {
			algs[name] = a
			names = append(names, name)
		}
	}
	return algs, names, nil
}

// setKeys checks and keeps the secret and the static public keys.
func (v *Verifier) setKeys(cfg Config, algs map[string]algorithm) error {
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < MinSecretLength {
			return fmt.Errorf("secret is %d bytes, want at least %d", len(cfg.Secret), MinSecretLength)
		}
		v.secret = append([]byte(nil), cfg.Secret...)
	}
	for i, k := range cfg.PublicKeys {
		key, err := checkPublicKey(k)
		if err != nil {
			return fmt.Errorf("public key %d: %w", i, err)
		}
		usable := len(algs) == 0 // under discovery without alg, any
		for _, a := range algs {
			usable = usable || a.accepts(key)
		}
		if !usable {
			return fmt.Errorf("public key %d (%T) cannot verify any of the allowed algorithms", i, key)
		}
		v.keys = append(v.keys, key)
	}
	return nil
}

// checkKeySources checks that every allowed algorithm has a key.
func (v *Verifier) checkKeySources(algs map[string]algorithm, names []string, jwks bool) error {
	for _, name := range names {
		a := algs[name]
		ok := false
		switch {
		case a.kind == kindHMAC:
			ok = v.secret != nil
		case jwks:
			ok = true
		default:
			for _, k := range v.keys {
				ok = ok || a.accepts(k)
			}
		}
		if !ok {
			if a.kind == kindHMAC {
				return fmt.Errorf("algorithm %s needs a secret", name)
			}
			return fmt.Errorf("algorithm %s needs %s or a JWKS URL", name, keyDescription(a))
		}
	}
	return nil
}

func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", what, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s must be an absolute http or https URL", what)
	}
	return nil
}

// newState builds the parser for the given algorithms and issuer; the
// configured issuer, when set, wins over a discovered one.
func (v *Verifier) newState(names []string, issuer string, jwks *jwksSource) *keyState {
	if v.issuer != "" {
		issuer = v.issuer
	}
	st := &keyState{algs: make(map[string]algorithm, len(names)), names: names, issuer: issuer, jwks: jwks}
	for _, n := range names {
		st.algs[n] = algorithms[n]
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(names),
		jwt.WithIssuedAt(), // iat in the future (beyond the leeway) is invalid
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithJSONNumber(),
		jwt.WithStrictDecoding(),
	}
	if issuer != "" {
		opts = append(opts, jwt.WithIssuer(issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	st.logout = jwt.NewParser(opts...)
	st.parser = jwt.NewParser(append(opts, jwt.WithExpirationRequired())...)
	return st
}

func keyDescription(a algorithm) string {
	if a.kind == kindECDSA {
		return a.kind.String() + " on " + a.curve
	}
	return a.kind.String()
}

// Verify checks the token raw and returns the identity it carries.
//
// It first checks the token's shape (three non-empty base64url segments,
// at most MaxLength bytes) and returns [ErrMalformed] without further
// parsing when it is wrong. It then checks the header (alg in the
// allowlist; typ absent or, case-insensitively, "JWT" or "at+jwt" with an
// optional "application/" prefix; no crit), the signature, exp
// (required, numeric), nbf, iat (not in the future), iss and aud, and
// finally the sessionguard
// claims described by [ClaimMap]. Header parameters jwk, jku, x5u and x5c
// are ignored; kid is only used to look a key up in the JWKS.
//
// Every failure wraps [ErrMalformed] or [ErrInvalid], and additionally
// [ErrKeyUnavailable] when the JWKS or the discovery document could not be
// fetched. A failure about iss, aud, alg or kid is a [*Mismatch]. ctx
// bounds a fetch, if one is needed.
//
// A token that verified is remembered (see Config.CacheSize) and, seen
// again before its exp, returns a copy of the same identity without
// being parsed or verified again.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	var key [sha256.Size]byte
	if v.cache != nil && len(raw) <= v.maxLength {
		// A cached token passed checkShape before it was put.
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))) // read only: no copy
		if id, ok := v.cache.get(key, v.now()); ok {
			return id, nil
		}
	}
	if err := checkShape(raw, v.maxLength); err != nil {
		return nil, err
	}
	st, err := v.state(ctx, raw, jwtType)
	if err != nil {
		return nil, err
	}
	claims, err := v.parse(ctx, st, st.parser, raw)
	if err != nil {
		return nil, err
	}
	id, err := v.claims.identity(claims)
	if err != nil {
		return nil, err
	}
	if id.LoginAt.After(v.now().Add(v.leeway)) {
		// a login time in the future would slip past revocation cutoffs
		return nil, fmt.Errorf("%w: login time claim is in the future", ErrInvalid)
	}
	if v.cache == nil {
		return id, nil
	}
	v.cache.put(key, id, notBefore(claims, v.leeway), v.now())
	return id, nil
}

// parse verifies raw's signature and registered claims with p and the
// keys of st, and returns its claims.
func (v *Verifier) parse(ctx context.Context, st *keyState, p *jwt.Parser, raw string) (claimSet, error) {
	claims := claimSet{}
	tok, err := p.ParseWithClaims(raw, &claims, v.keyfunc(ctx, st))
	if err != nil {
		return nil, v.parseError(err, st, claims)
	}
	if tok == nil || !tok.Valid {
		return nil, fmt.Errorf("%w: token is invalid", ErrInvalid)
	}
	return claims, nil
}

// state returns the key state to check raw against, after checking its
// header; typeOK decides which typ header values are accepted. Under
// discovery, an alg the current state does not allow makes the discovery
// document be fetched again (rate limited).
func (v *Verifier) state(ctx context.Context, raw string, typeOK func(string) bool) (*keyState, error) {
	h, err := decodeHeader(raw)
	if err != nil {
		return nil, err
	}
	if v.disc == nil {
		return v.static, v.checkHeader(h, v.static, typeOK)
	}
	st, err := v.disc.resolve(ctx)
	if err != nil {
		return nil, err
	}
	err = v.checkHeader(h, st, typeOK)
	var m *Mismatch
	if errors.As(err, &m) && m.Field == "alg" {
		if st, err = v.disc.refetch(ctx, st); err == nil {
			err = v.checkHeader(h, st, typeOK)
		}
	}
	return st, err
}

// notBefore returns the earliest time a verified token may be used: the
// later of its nbf and iat, minus leeway. It is zero when the token has
// neither.
func notBefore(c claimSet, leeway time.Duration) time.Time {
	var t time.Time
	if nbf, err := c.GetNotBefore(); err == nil && nbf != nil {
		t = nbf.Time
	}
	if iat, err := c.GetIssuedAt(); err == nil && iat != nil && iat.After(t) {
		t = iat.Time
	}
	if t.IsZero() {
		return t
	}
	return t.Add(-leeway)
}

// checkShape cheaply checks that raw looks like a compact JWS: three
// non-empty segments of unpadded base64url separated by dots.
func checkShape(raw string, maxLen int) error {
	if raw == "" {
		return fmt.Errorf("%w: token is empty", ErrMalformed)
	}
	if len(raw) > maxLen {
		return fmt.Errorf("%w: token is longer than %d bytes", ErrMalformed, maxLen)
	}
	dots, seg := 0, 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			seg++
		case c == '.':
			if seg == 0 || seg%4 == 1 {
				return fmt.Errorf("%w: token has an invalid segment", ErrMalformed)
			}
			if dots++; dots > 2 {
				return fmt.Errorf("%w: token does not have three segments", ErrMalformed)
			}
			seg = 0
		default:
			return fmt.Errorf("%w: token contains an invalid character", ErrMalformed)
		}
	}
	if dots != 2 {
		return fmt.Errorf("%w: token does not have three segments", ErrMalformed)
	}
	if seg == 0 || seg%4 == 1 {
		return fmt.Errorf("%w: token has an invalid segment", ErrMalformed)
	}
	return nil
}

// decodeHeader decodes the JOSE header.
func decodeHeader(raw string) (map[string]any, error) {
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decode header", ErrMalformed)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: cannot decode header", ErrMalformed)
	}
	return h, nil
}

// checkHeader rejects tokens whose alg is not allowed, whose typ is not
// one typeOK accepts, that have critical extensions or a kid that is not
// a short string.
func (v *Verifier) checkHeader(h map[string]any, st *keyState, typeOK func(string) bool) error {
	alg, _ := h["alg"].(string)
	switch {
	case alg == "":
		return fmt.Errorf("%w: token has no algorithm", ErrInvalid)
	case strings.EqualFold(alg, "none"):
		return fmt.Errorf("%w: unsigned tokens are not allowed", ErrInvalid)
	}
	if _, ok := st.algs[alg]; !ok {
		return mismatch("alg", strings.Join(st.names, " "), alg, "algorithm is not allowed")
	}
	if t, ok := h["typ"]; ok {
		s, _ := t.(string)
		if !typeOK(s) {
			return fmt.Errorf("%w: token type is not accepted", ErrInvalid)
		}
	}
	if _, ok := h["crit"]; ok {
		return fmt.Errorf("%w: critical header parameters are not supported", ErrInvalid)
	}
	if k, ok := h["kid"]; ok {
		s, ok := k.(string)
		if !ok {
			return fmt.Errorf("%w: kid header is not a string", ErrInvalid)
		}
		if len(s) > maxKIDLength {
			return fmt.Errorf("%w: kid header is too long", ErrInvalid)
		}
	}
	return nil
}

// jwtType reports whether typ names a JWT or a JWT access token
// (RFC 9068), with or without the "application/" prefix.
func jwtType(typ string) bool {
	typ = strings.ToLower(typ)
	typ = strings.TrimPrefix(typ, "application/")
	return typ == "jwt" || typ == "at+jwt"
}

// keyfunc returns the jwt.Keyfunc that selects verification keys by
// algorithm and key type. Header parameters carrying keys or key URLs (jwk,
// jku, x5u, x5c) are never consulted.
func (v *Verifier) keyfunc(ctx context.Context, st *keyState) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if t.Method == nil {
			return nil, &verifyError{fmt.Errorf("%w: algorithm is not allowed", ErrInvalid)}
		}
		alg := t.Method.Alg()
		a, ok := st.algs[alg]
		if !ok {
			return nil, &verifyError{fmt.Errorf("%w: algorithm is not allowed", ErrInvalid)}
		}
		if a.kind == kindHMAC {
			if v.secret == nil {
				return nil, &verifyError{fmt.Errorf("%w: no key for algorithm", ErrInvalid)}
			}
			return v.secret, nil
		}
		kid, _ := t.Header["kid"].(string)
		keys, err := v.publicKeys(ctx, st, a, alg, kid)
		if err != nil {
			return nil, &verifyError{err}
		}
		if len(keys) == 1 {
			return keys[0], nil
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
}

// publicKeys returns the candidate keys for a token signed with alg. When
// the token has a kid and the JWKS holds a key of the right type under it,
// only that one is used; otherwise every static key of the right type is
// a candidate, plus, for a token without kid, every JWKS key of the right
// type.
func (v *Verifier) publicKeys(ctx context.Context, st *keyState, a algorithm, alg, kid string) ([]jwt.VerificationKey, error) {
	var (
		out     []jwt.VerificationKey
		jwksErr error
	)
	if st.jwks != nil {
		keys, err := st.jwks.keys(ctx, alg, kid)
		if err != nil && !errors.Is(err, ErrKeyUnavailable) {
			return nil, err
		}
		jwksErr = err
		for _, k := range keys {
			out = append(out, k)
		}
		if kid != "" && len(out) > 0 {
			return out, nil
		}
	}
	for _, k := range v.keys {
		if a.accepts(k) {
			out = append(out, k)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case jwksErr != nil:
		return nil, jwksErr
	case kid != "" && st.jwks != nil:
		return nil, mismatch("kid", st.jwks.kids(), kid, "no signing key matches the token")
	}
	return nil, fmt.Errorf("%w: no signing key matches the token", ErrInvalid)
}

// Mismatch is a rejection of a token value that differs from the
// configuration: iss, aud, alg or kid. Its message names neither value,
// so it is safe in a response; Expected and Received are for a debug log.
type Mismatch struct {
	Field    string // "iss", "aud", "alg" or "kid"
	Expected string // the configured value(s), space separated
	Received string // the token's value, at most 256 bytes
	err      error
}

func (m *Mismatch) Error() string { return m.err.Error() }
func (m *Mismatch) Unwrap() error { return m.err }

func mismatch(field, expected, received, desc string) *Mismatch {
	if len(received) > maxClaimLength {
		received = received[:maxClaimLength]
	}
	return &Mismatch{Field: field, Expected: expected, Received: received, err: fmt.Errorf("%w: %s", ErrInvalid, desc)}
}

// verifyError carries one of this package's errors through the jwt
// library, so that it can be returned as is instead of the library's.
type verifyError struct{ err error }

func (e *verifyError) Error() string { return e.err.Error() }
func (e *verifyError) Unwrap() error { return e.err }

// parseError maps an error returned by the jwt library to ErrMalformed or
// ErrInvalid with a short description.
func (v *Verifier) parseError(err error, st *keyState, c claimSet) error {
	var ve *verifyError
	if errors.As(err, &ve) {
		return ve.err
	}
	desc := "token is invalid"
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: cannot decode token", ErrMalformed)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		desc = "signature is invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		desc = "token cannot be verified"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		iss, _ := c["iss"].(string)
		switch {
		case c["exp"] == nil:
			desc = "token has no exp claim"
		case st.issuer != "" && iss == "":
			desc = "token has no iss claim"
		default:
			desc = "token has no aud claim"
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		desc = "token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		desc = "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		desc = "token is issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		iss, _ := c["iss"].(string)
		return mismatch("iss", st.issuer, iss, "issuer is not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		aud, _ := c.GetAudience()
		return mismatch("aud", v.audience, strings.Join(aud, " "), "audience is not accepted")
	}
	return fmt.Errorf("%w: %s", ErrInvalid, desc)
}

// LoadPublicKeys parses every PEM block in pemBytes: PKIX "PUBLIC KEY",
// PKCS #1 "RSA PUBLIC KEY" and "CERTIFICATE" (whose public key is used;
// the certificate itself is not validated). Any other block type, notably
// a private key, is an error, as is input without PEM blocks.
func LoadPublicKeys(pemBytes []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("pem block %d: unexpected type %q", len(keys), block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("pem block %d (%s): %w", len(keys), block.Type, err)
		}
		k, err := checkPublicKey(key)
		if err != nil {
			return nil, fmt.Errorf("pem block %d (%s): %w", len(keys), block.Type, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public keys found")
	}
	return keys, nil
}
