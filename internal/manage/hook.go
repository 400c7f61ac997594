package manage

import "github.com/sessionguard/sessionguard/internal/store"

// ParseHookRevoke strictly decodes the body of a revoke hook:
// {"account":…,"user_id":…} (every session of the user),
// {"account":…,"session":…} (one session, raw id or hash) or
// {"account":…,"scope":"all"}. It returns the account and the
// revocation. Errors are 400.
func ParseHookRevoke(body []byte) (string, RevokeRequest, error) {
	fields, err := decodeObject(body, "account", "user_id", "session", "scope")
	if err != nil {
		return "", RevokeRequest{}, err
	}
	str := func(name string) (string, bool, *Error) {
		raw, ok := fields[name]
		if !ok {
			return "", false, nil
		}
		s, ok := parseString(raw)
		if !ok || s == "" || len(s) > 1024 {
			return "", true, badRequest("%s must be a non-empty string of at most 1024 bytes", name)
		}
		return s, true, nil
	}
	var vals [4]string
	var has [4]bool
	for i, name := range []string{"account", "user_id", "session", "scope"} {
		var e *Error
		if vals[i], has[i], e = str(name); e != nil {
			return "", RevokeRequest{}, e
		}
	}
	if !has[0] {
		return "", RevokeRequest{}, badRequest("account is required")
	}
	var req RevokeRequest
	switch {
	case has[1] && !has[2] && !has[3]:
		req = RevokeRequest{Scope: store.ScopeUser, UserID: vals[1]}
	case has[2] && !has[1] && !has[3]:
		req = RevokeRequest{Scope: store.ScopeSession, Session: vals[2]}
	case has[3] && !has[1] && !has[2] && vals[3] == string(store.ScopeAll):
		req = RevokeRequest{Scope: store.ScopeAll}
	default:
		return "", RevokeRequest{}, badRequest(`want exactly one of user_id, session or "scope":"all" with the account`)
	}
	return vals[0], req, nil
}
