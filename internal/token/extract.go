package token

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Token source kinds understood by [Source].
const (
	// SourceHeader reads the token from a request header.
	SourceHeader = "header"
	// SourceCookie reads the token from a request cookie.
	SourceCookie = "cookie"
)

// DefaultMaxTokenLength is the maximum length in bytes of a token accepted
// by [Extract] and [Verifier.Verify] when no other limit is configured.
const DefaultMaxTokenLength = 8192

var (
	// ErrNoToken is returned by [Extract] when the request carries no token
	// in any of the configured sources. A gateway answers it with 401 and
	// no error code.
	ErrNoToken = errors.New("no token")

	// ErrInvalidRequest is returned by [Extract] when the request carries
	// an ambiguous or badly formatted credential: a token in more than one
	// source, a repeated header or cookie, a header with the wrong scheme,
	// or empty credentials. A gateway answers it with 400 invalid_request.
	ErrInvalidRequest = errors.New("invalid request")

	// ErrMalformed is returned when a token is too long or is not shaped
	// like a compact JWS. A gateway answers it with 401 invalid_token.
	ErrMalformed = errors.New("malformed token")
)

// Source describes one place in a request where a token may be found.
type Source struct {
	// Kind is either "header" ([SourceHeader]) or "cookie"
	// ([SourceCookie]). Required.
	Kind string `json:"kind,omitempty"`

	// Name is the header name (for example "Authorization"; matched
	// case-insensitively) or the cookie name (matched exactly). Required.
	Name string `json:"name,omitempty"`

	// Scheme is, for headers only, the authentication scheme that must
	// prefix the token, for example "Bearer". The scheme is matched
	// case-insensitively and must be followed by exactly one space.
	// Default: empty, which means the whole header value is the token.
	Scheme string `json:"scheme,omitempty"`
}

// Validate reports whether s is a usable source configuration.
func (s Source) Validate() error {
	switch s.Kind {
	case SourceHeader:
		if !isToken(s.Name) {
			return fmt.Errorf("invalid header name %q", s.Name)
		}
		if s.Scheme != "" && !isToken(s.Scheme) {
			return fmt.Errorf("invalid scheme %q for header %s", s.Scheme, s.Name)
		}
	case SourceCookie:
		if !isToken(s.Name) {
			return fmt.Errorf("invalid cookie name %q", s.Name)
		}
		if s.Scheme != "" {
			return fmt.Errorf("cookie %s cannot have a scheme", s.Name)
		}
	default:
		return fmt.Errorf("unknown token source kind %q (want %q or %q)", s.Kind, SourceHeader, SourceCookie)
	}
	return nil
}

// ValidateSources validates every source and rejects a list that names the
// same header or cookie twice, which would make every request ambiguous.
func ValidateSources(sources []Source) error {
	if len(sources) == 0 {
		return errors.New("no token sources configured")
	}
	seen := make(map[string]bool, len(sources))
	for _, s := range sources {
		if err := s.Validate(); err != nil {
			return err
		}
		key := s.Kind + ":" + s.Name
		if s.Kind == SourceHeader {
			key = s.Kind + ":" + http.CanonicalHeaderKey(s.Name)
		}
		if seen[key] {
			return fmt.Errorf("token source %s %s configured more than once", s.Kind, s.Name)
		}
		seen[key] = true
	}
	return nil
}

// Extract returns the one token found in r across all sources.
//
// It returns an error wrapping [ErrInvalidRequest] when a token appears in
// more than one source, when a header source appears more than once in the
// request, when a cookie source appears more than once in the Cookie
// header(s), when a header is present but has the wrong scheme or empty or
// malformed credentials. It returns [ErrNoToken] when no source holds a
// token; a cookie with an empty value counts as absent.
//
// A token longer than maxLen bytes is rejected with an error wrapping
// [ErrMalformed] before any further parsing. A maxLen <= 0 means
// [DefaultMaxTokenLength] (8192).
func Extract(r *http.Request, sources []Source, maxLen int) (string, error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxTokenLength
	}
	var (
		token string
		found bool
	)
	for _, s := range sources {
		tok, ok, err := s.extract(r)
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		if found {
			return "", fmt.Errorf("%w: token found in more than one place", ErrInvalidRequest)
		}
		token, found = tok, true
	}
	if !found {
		return "", ErrNoToken
	}
	if len(token) > maxLen {
		return "", fmt.Errorf("%w: token is longer than %d bytes", ErrMalformed, maxLen)
	}
	return token, nil
}

// extract returns the token held by s in r, if any.
func (s Source) extract(r *http.Request) (string, bool, error) {
	switch s.Kind {
	case SourceHeader:
		return s.fromHeader(r.Header)
	case SourceCookie:
		return s.fromCookie(r.Header)
	}
	return "", false, fmt.Errorf("unknown token source kind %q", s.Kind)
}

func (s Source) fromHeader(h http.Header) (string, bool, error) {
	vals := h.Values(s.Name)
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", false, fmt.Errorf("%w: multiple %s headers", ErrInvalidRequest, s.Name)
	}
	v := trimOWS(vals[0])
	cred := v
	if s.Scheme != "" {
		n := len(s.Scheme)
		switch {
		case strings.EqualFold(v, s.Scheme):
			cred = ""
		case len(v) > n && strings.EqualFold(v[:n], s.Scheme) && v[n] == '\t':
			return "", false, fmt.Errorf("%w: %s header has a malformed %s value", ErrInvalidRequest, s.Name, s.Scheme)
		case len(v) <= n || !strings.EqualFold(v[:n], s.Scheme) || v[n] != ' ':
			// Another scheme (Basic credentials a browser cached, say)
			// carries no token of ours: the request has no token.
			return "", false, nil
		default:
			cred = strings.TrimLeft(v[n+1:], " ") // 1*SP (RFC 7235)
		}
	}
	if cred == "" {
		return "", false, fmt.Errorf("%w: %s header has empty credentials", ErrInvalidRequest, s.Name)
	}
	if hasSpaceOrControl(cred) {
		return "", false, fmt.Errorf("%w: %s header has malformed credentials", ErrInvalidRequest, s.Name)
	}
	return cred, true, nil
}

func (s Source) fromCookie(h http.Header) (string, bool, error) {
	vals := cookieValues(h, s.Name)
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", false, fmt.Errorf("%w: cookie %s appears more than once", ErrInvalidRequest, s.Name)
	}
	v := vals[0]
	if v == "" {
		return "", false, nil
	}
	if hasSpaceOrControl(v) {
		return "", false, fmt.Errorf("%w: cookie %s is malformed", ErrInvalidRequest, s.Name)
	}
	return v, true, nil
}

// cookieValues returns the value of every occurrence of the cookie named
// name in all Cookie header lines of h. Unlike [http.Request.Cookies] it
// does not skip occurrences with invalid values, so that a duplicate cannot
// hide behind a malformed twin.
func cookieValues(h http.Header, name string) []string {
	var vals []string
	for _, line := range h.Values("Cookie") {
		for part := range strings.SplitSeq(line, ";") {
			n, v, _ := strings.Cut(part, "=")
			if strings.Trim(n, " \t") != name {
				continue
			}
			v = strings.Trim(v, " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			vals = append(vals, v)
		}
	}
	return vals
}

// hasSpaceOrControl reports whether s has a space, an ASCII control or
// DEL. It looks at bytes, eight at a time: every byte of a multi-byte
// UTF-8 sequence is >= 0x80, so no rune decoding is needed, and this
// runs on every request.
func hasSpaceOrControl(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; len(s) >= 8; s = s[8:] {
		x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		// A byte's high bit is set in below (del) when the byte is < 0x21
		// (is 0x7f); a borrow only crosses from a byte that matched.
		below := (x - 0x21*ones) &^ x
		del := x ^ 0x7f*ones
		del = (del - ones) &^ del
		if (below|del)&highs != 0 {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// trimOWS is strings.Trim(s, " \t") without building a cutset per call.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is a non-empty RFC 9110 token, the syntax of
// header names, cookie names and authentication schemes.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
