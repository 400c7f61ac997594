// Package manage holds the account operations shared by the admin API
// and the owner self-service endpoints: the policy view and its update,
// the listing and revocation of sessions, and the audit log. It works on
// a store.Store and a policy.Config and knows nothing of Caddy; callers
// map its *Error to HTTP responses.
//
// Every successful change writes exactly one audit event to the store
// and logs it through zap at info level. Audit events and logs carry
// session id hashes, never raw session ids or tokens.
package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

// Audit event types.
const (
	EventPolicyUpdate   = "policy.update"
	EventSessionsRevoke = "sessions.revoke"
)

// Audit listing limits.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = store.AuditCap
)

// Limits on identifiers taken from requests.
const (
	MaxAccountBytes = 256
	MaxActorBytes   = 128
)

// Manager performs account operations on one store under one policy
// configuration. A Manager is cheap; callers make one per request from
// the running app, so that it never outlives a config reload.
type Manager struct {
	// Store is the session store.
	Store store.Store
	// Policy is the gateway's policy configuration.
	Policy *policy.Config
	// Now is the clock for audit events. Default time.Now.
	Now func() time.Time
	// Logger receives every audit event. Default: no logging.
	Logger *zap.Logger
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) logger() *zap.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return zap.NewNop()
}

// OverrideMinutes is an account's override in whole minutes; a nil field
// is inherited.
type OverrideMinutes struct {
	// Idle is the idle override in minutes, or null when inherited.
	Idle *int64 `json:"idle_minutes"`
	// Absolute is the absolute override in minutes, or null when
	// inherited.
	Absolute *int64 `json:"absolute_minutes"`
	// MaxSessions is the session limit per user, or null when inherited.
	MaxSessions *int `json:"max_sessions_per_user"`
	// OnLimit is what a new session beyond the limit does, or null when
	// inherited.
	OnLimit *policy.OnLimit `json:"on_limit"`
}

// Minutes is a policy in whole minutes, with its session limit.
type Minutes struct {
	// Idle is the idle limit in minutes.
	Idle int64 `json:"idle_minutes"`
	// Absolute is the absolute limit in minutes.
	Absolute int64 `json:"absolute_minutes"`
	// MaxSessions is the session limit per user, null for unlimited.
	MaxSessions *int `json:"max_sessions_per_user"`
	// OnLimit is what a new session beyond the limit does:
	// "evict_oldest" or "deny".
	OnLimit policy.OnLimit `json:"on_limit"`
}

// RangeView is an inclusive range of minutes.
type RangeView struct {
	// Min is the smallest allowed value in minutes.
	Min int64 `json:"min_minutes"`
	// Max is the largest allowed value in minutes.
	Max int64 `json:"max_minutes"`
}

// CountView is an inclusive range of session counts.
type CountView struct {
	// Min is the smallest allowed session limit.
	Min int `json:"min"`
	// Max is the largest allowed session limit, null when there is none.
	Max *int `json:"max"`
}

// BoundsView shows the bounds in minutes and sessions.
type BoundsView struct {
	// Idle bounds the idle limit.
	Idle RangeView `json:"idle"`
	// Absolute bounds the absolute limit.
	Absolute RangeView `json:"absolute"`
	// Sessions bounds the session limit per user.
	Sessions CountView `json:"sessions"`
}

// PolicyView is an account's policy as the admin API shows it.
type PolicyView struct {
	// Account is the account id.
	Account string `json:"account"`
	// Override is the account's override; fields are null when inherited.
	Override OverrideMinutes `json:"override"`
	// Effective is the policy a new session of the account gets, leaving
	// token claims aside.
	Effective Minutes `json:"effective"`
	// Preset names the preset equal to Effective, or "custom".
	Preset string `json:"preset"`
	// Bounds limit what may be set.
	Bounds BoundsView `json:"bounds"`
	// Apply says when a change reaches live sessions: "next_login" or
	// "immediately".
	Apply policy.Apply `json:"apply"`
}

// DefaultsView is the gateway-wide policy configuration.
type DefaultsView struct {
	// DefaultPreset names the default preset.
	DefaultPreset string `json:"default_preset"`
	// Default is the default preset's policy.
	Default Minutes `json:"default"`
	// Presets are all presets by name.
	Presets map[string]Minutes `json:"presets"`
	// Bounds limit every policy.
	Bounds BoundsView `json:"bounds"`
	// Apply is the apply mode.
	Apply policy.Apply `json:"apply"`
	// WarnBeforeSeconds is how long before expiry responses warn.
	WarnBeforeSeconds int64 `json:"warn_before_seconds"`
}

func minutes(d time.Duration) int64 { return int64(d / time.Minute) }

func ceilMinutes(d time.Duration) int64 {
	m := minutes(d)
	if time.Duration(m)*time.Minute < d {
		m++
	}
	return m
}

func toMinutes(p policy.Policy, l policy.Limit) Minutes {
	return Minutes{Idle: minutes(p.Idle), Absolute: minutes(p.Absolute), MaxSessions: count(l.Max), OnLimit: l.OnLimit}
}

// count is n, or nil for 0 (none, unlimited).
func count(n int) *int {
	if n <= 0 {
		return nil
	}
	return &n
}

func toOverrideMinutes(ov policy.Override) OverrideMinutes {
	var out OverrideMinutes
	if ov.Idle != nil {
		m := minutes(*ov.Idle)
		out.Idle = &m
	}
	if ov.Absolute != nil {
		m := minutes(*ov.Absolute)
		out.Absolute = &m
	}
	out.MaxSessions, out.OnLimit = ov.MaxSessions, ov.OnLimit
	return out
}

func boundsView(b policy.Bounds) BoundsView {
	return BoundsView{
		Idle:     RangeView{Min: ceilMinutes(b.Idle.Min), Max: minutes(b.Idle.Max)},
		Absolute: RangeView{Min: ceilMinutes(b.Absolute.Min), Max: minutes(b.Absolute.Max)},
		Sessions: CountView{Min: b.Sessions.Min, Max: count(b.Sessions.Max)},
	}
}

// Defaults returns the gateway-wide policy configuration.
func (m *Manager) Defaults(warnBefore time.Duration) DefaultsView {
	v := DefaultsView{
		DefaultPreset:     m.Policy.Default,
		Default:           toMinutes(m.Policy.DefaultPolicy(), m.Policy.PresetLimit(m.Policy.Default)),
		Presets:           make(map[string]Minutes, len(m.Policy.Presets)),
		Bounds:            boundsView(m.Policy.Bounds),
		Apply:             m.Policy.Apply,
		WarnBeforeSeconds: int64(warnBefore / time.Second),
	}
	for name, p := range m.Policy.Presets {
		v.Presets[name] = toMinutes(p, m.Policy.PresetLimit(name))
	}
	return v
}

func (m *Manager) view(account string, ov policy.Override) PolicyView {
	eff, lim := m.Policy.Effective(ov, policy.Claimed{}), m.Policy.EffectiveLimit(ov)
	return PolicyView{
		Account:   account,
		Override:  toOverrideMinutes(ov),
		Effective: toMinutes(eff, lim),
		Preset:    m.Policy.PresetOf(eff, lim),
		Bounds:    boundsView(m.Policy.Bounds),
		Apply:     m.Policy.Apply,
	}
}

// PolicyView returns an account's policy.
func (m *Manager) PolicyView(ctx context.Context, account string) (PolicyView, error) {
	ov, err := m.Store.Override(ctx, account)
	if err != nil {
		return PolicyView{}, storeError("reading policy", err)
	}
	return m.view(account, ov), nil
}

// patchMu serialises policy updates within this process, so that two
// concurrent partial updates cannot together break the idle <= absolute
// invariant. (Gateways sharing a Redis store may still race; the last
// write wins and both are audited.)
var patchMu sync.Mutex

// PatchPolicy applies a JSON policy change to an account's override:
// {"idle_minutes":int|null,"absolute_minutes":int|null,
// "max_sessions_per_user":int|null,"on_limit":"evict_oldest"|"deny"|null}
// or {"preset":"name"}. An absent field is left alone; null clears the
// override. Unknown or duplicate fields and malformed JSON are 400;
// values that are not positive JSON integers within the bounds, an
// unknown on_limit, or values that would make the effective idle exceed
// the effective absolute, are 422 with a message per field.
//
// Every PATCH that passes validation is successful and writes exactly
// one policy.update audit event, also when it changes nothing (e.g. {}):
// the audit log records every accepted request.
func (m *Manager) PatchPolicy(ctx context.Context, account string, body []byte, actor string) (PolicyView, error) {
	p, typeErrs, perr := parsePatch(body)
	if perr != nil {
		return PolicyView{}, perr
	}
	patchMu.Lock()
	defer patchMu.Unlock()
	cur, err := m.Store.Override(ctx, account)
	if err != nil {
		return PolicyView{}, storeError("reading policy", err)
	}
	next, ferrs := m.Policy.ApplyPatch(cur, p)
	if len(typeErrs) > 0 {
		// report the well-typed fields' problems too, one message a field
		for f, msg := range ferrs {
			if _, ok := typeErrs[f]; !ok {
				typeErrs[f] = msg
			}
		}
		return PolicyView{}, validation(typeErrs)
	}
	if len(ferrs) > 0 {
		return PolicyView{}, validation(ferrs)
	}
	old, err := m.Store.SetOverride(ctx, account, next)
	if err != nil {
		return PolicyView{}, storeError("updating policy", err)
	}
	data := policyUpdate{
		Old:          toOverrideMinutes(old),
		New:          toOverrideMinutes(next),
		EffectiveOld: m.effective(old),
		EffectiveNew: m.effective(next),
	}
	if err := m.audit(ctx, account, EventPolicyUpdate, actor, data); err != nil {
		return PolicyView{}, err
	}
	return m.view(account, next), nil
}

// effective is the policy and limit a new session of an account with
// override ov gets, leaving token claims aside.
func (m *Manager) effective(ov policy.Override) Minutes {
	return toMinutes(m.Policy.Effective(ov, policy.Claimed{}), m.Policy.EffectiveLimit(ov))
}

// policyUpdate is the data of a policy.update event.
type policyUpdate struct {
	Old          OverrideMinutes `json:"old"`
	New          OverrideMinutes `json:"new"`
	EffectiveOld Minutes         `json:"effective_old"`
	EffectiveNew Minutes         `json:"effective_new"`
}

// parsePatch decodes a PATCH body. Structural problems are a 400 error;
// values of the wrong JSON type are returned as field errors, their
// fields left unset in the patch so that the others can still be checked.
func parsePatch(body []byte) (policy.Patch, policy.FieldErrors, *Error) {
	fields, err := decodeObject(body, policy.FieldIdle, policy.FieldAbsolute, policy.FieldPreset, policy.FieldSessions, policy.FieldOnLimit)
	if err != nil {
		return policy.Patch{}, nil, err
	}
	var p policy.Patch
	ferrs := policy.FieldErrors{}
	minutesField := func(name string, dst *policy.FieldPatch) {
		raw, ok := fields[name]
		if !ok {
			return
		}
		if isNull(raw) {
			dst.Set = true
			return
		}
		n, ok := parseMinutes(raw)
		if !ok {
			ferrs[name] = "must be a positive whole number of minutes or null"
			return
		}
		dst.Set, dst.Minutes = true, &n
	}
	minutesField(policy.FieldIdle, &p.Idle)
	minutesField(policy.FieldAbsolute, &p.Absolute)
	parseLimitPatch(fields, &p, ferrs)
	if raw, ok := fields[policy.FieldPreset]; ok {
		name, ok := parseString(raw)
		switch {
		case !ok:
			ferrs[policy.FieldPreset] = "must be a preset name"
		case name == "":
			ferrs[policy.FieldPreset] = "must not be empty"
		default:
			p.Preset = name
		}
	}
	return p, ferrs, nil
}

// parseLimitPatch decodes the session-limit fields of a PATCH body into
// p; values of the wrong JSON type are field errors.
func parseLimitPatch(fields map[string]json.RawMessage, p *policy.Patch, ferrs policy.FieldErrors) {
	if raw, ok := fields[policy.FieldSessions]; ok {
		n, isInt := parseMinutes(raw)
		switch {
		case isNull(raw):
			p.Sessions.Set = true
		case !isInt:
			ferrs[policy.FieldSessions] = "must be a positive whole number of sessions or null"
		default:
			p.Sessions.Set, p.Sessions.Count = true, &n
		}
	}
	if raw, ok := fields[policy.FieldOnLimit]; ok {
		v, isStr := parseString(raw)
		switch {
		case isNull(raw):
			p.OnLimit.Set = true
		case !isStr:
			ferrs[policy.FieldOnLimit] = fmt.Sprintf("must be %q, %q or null", policy.EvictOldest, policy.Deny)
		default:
			mode := policy.OnLimit(v)
			p.OnLimit.Set, p.OnLimit.Value = true, &mode
		}
	}
}

// Session is a live session in a listing.
type Session struct {
	store.SessionInfo
	// Current marks the caller's own session in self-service listings.
	Current bool `json:"current,omitempty"`
}

// ActiveUser is a user with at least one live session.
type ActiveUser struct {
	// UserID is the user's id.
	UserID string `json:"user_id"`
	// Name is the user's display name from the token, if any.
	Name string `json:"name"`
	// Email is the user's email from the token, if any.
	Email string `json:"email"`
	// LastLoginAt is the login time of the user's newest live session.
	LastLoginAt time.Time `json:"last_login_at"`
	// Sessions is how many live sessions the user has.
	Sessions int `json:"sessions"`
	// MaxSessions is the account's session limit per user that Sessions
	// counts against, null for unlimited.
	MaxSessions *int `json:"max_sessions_per_user"`
	// You marks the caller in self-service listings.
	You bool `json:"you,omitempty"`
}

// SessionsView is one page of an account's live sessions and the users
// of those sessions.
type SessionsView struct {
	// Sessions are the page's live sessions, oldest login first.
	Sessions []Session `json:"sessions"`
	// ActiveUsers are the distinct users of Sessions, newest login
	// first; each one's Sessions counts the whole account.
	ActiveUsers []ActiveUser `json:"active_users"`
	// NextCursor asks for the following page; absent on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// ParsePage reads the cursor and limit query parameters of a listing.
// Errors are 400.
func ParsePage(cursor, limit string) (store.Page, error) {
	p := store.Page{Cursor: cursor, Limit: store.DefaultPageLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > store.MaxPageLimit {
			return p, badRequest("limit must be an integer from 1 to %d", store.MaxPageLimit)
		}
		p.Limit = n
	}
	if len(cursor) > 2048 {
		return p, badRequest("cursor is too long")
	}
	return p, nil
}

// PageQuery reads the cursor and limit of a listing's query string;
// each may be given once. Errors are 400.
func PageQuery(q url.Values) (store.Page, error) {
	for _, name := range []string{"cursor", "limit"} {
		if len(q[name]) > 1 {
			return store.Page{}, badRequest("%s given more than once", name)
		}
	}
	return ParsePage(q.Get("cursor"), q.Get("limit"))
}

// Sessions lists one page of an account's live sessions and their
// users. Expired and revoked sessions never appear.
func (m *Manager) Sessions(ctx context.Context, account string, page store.Page) (SessionsView, error) {
	pg, err := m.Store.Sessions(ctx, account, m.Policy, page)
	if errors.Is(err, store.ErrBadCursor) {
		return SessionsView{}, badRequest("cursor is not one this API returned")
	}
	if err != nil {
		return SessionsView{}, storeError("listing sessions", err)
	}
	ov, err := m.Store.Override(ctx, account)
	if err != nil {
		return SessionsView{}, storeError("reading policy", err)
	}
	limit := count(m.Policy.EffectiveLimit(ov).Max)
	v := SessionsView{Sessions: make([]Session, 0, len(pg.Sessions)), ActiveUsers: []ActiveUser{}, NextCursor: pg.Next}
	byUser := map[string]int{}
	for _, in := range pg.Sessions {
		in.CreatedAt, in.LastSeenAt = in.CreatedAt.UTC(), in.LastSeenAt.UTC()
		in.IdleExpiresAt, in.AbsoluteExpiresAt = in.IdleExpiresAt.UTC(), in.AbsoluteExpiresAt.UTC()
		v.Sessions = append(v.Sessions, Session{SessionInfo: in})
		i, ok := byUser[in.User]
		if !ok {
			i = len(v.ActiveUsers)
			byUser[in.User] = i
			v.ActiveUsers = append(v.ActiveUsers, ActiveUser{UserID: in.User, MaxSessions: limit, Sessions: pg.Users[in.User]})
		}
		v.ActiveUsers[i].add(in)
	}
	SortUsers(v.ActiveUsers)
	return v, nil
}

// add folds a session of the user into u: the newest login's name and
// email win, an older one fills what is missing.
func (u *ActiveUser) add(in store.SessionInfo) {
	if !in.CreatedAt.Before(u.LastLoginAt) {
		u.LastLoginAt = in.CreatedAt
		if in.Name != "" {
			u.Name = in.Name
		}
		if in.Email != "" {
			u.Email = in.Email
		}
		return
	}
	if u.Name == "" {
		u.Name = in.Name
	}
	if u.Email == "" {
		u.Email = in.Email
	}
}

// SortUsers orders users newest login first, then by id.
func SortUsers(users []ActiveUser) {
	sort.SliceStable(users, func(i, j int) bool {
		a, b := users[i], users[j]
		if !a.LastLoginAt.Equal(b.LastLoginAt) {
			return a.LastLoginAt.After(b.LastLoginAt)
		}
		return a.UserID < b.UserID
	})
}

// MergeUsers adds the users of a later page to users (as a client that
// pages through a listing does): counts are account-wide already, so a
// user seen again keeps its count and gains the page's sessions' login,
// name and email.
func MergeUsers(users []ActiveUser, page []ActiveUser) []ActiveUser {
	at := make(map[string]int, len(users))
	for i, u := range users {
		at[u.UserID] = i
	}
	for _, p := range page {
		i, ok := at[p.UserID]
		if !ok {
			at[p.UserID] = len(users)
			users = append(users, p)
			continue
		}
		u := &users[i]
		u.Sessions = p.Sessions
		u.add(store.SessionInfo{CreatedAt: p.LastLoginAt, Name: p.Name, Email: p.Email})
	}
	return users
}

// RevokeResult is the answer to a revocation.
type RevokeResult struct {
	// Revoked is the exact number of live sessions ended.
	Revoked int `json:"revoked"`
}

// RevokeRequest is the JSON body of a revocation.
type RevokeRequest struct {
	// Scope is "session", "user", "all" or "others".
	Scope store.Scope `json:"scope"`
	// Session is the session (raw id or hash) to end, for scope session.
	Session string `json:"session,omitempty"`
	// KeepSession is the session (raw id or hash) to keep, for scope
	// others.
	KeepSession string `json:"keep_session,omitempty"`
	// UserID is the user whose sessions end, for scope user.
	UserID string `json:"user_id,omitempty"`
	// By says who revokes, for the session.revoked events; empty is
	// "admin". Never read from a body.
	By string `json:"-"`
}

// ParseRevoke strictly decodes a revocation body and checks that the
// fields fit the scope. Errors are 400.
func ParseRevoke(body []byte) (RevokeRequest, error) {
	fields, err := decodeObject(body, "scope", "session", "keep_session", "user_id")
	if err != nil {
		return RevokeRequest{}, err
	}
	var req RevokeRequest
	str := func(name string, dst *string) *Error {
		raw, ok := fields[name]
		if !ok {
			return nil
		}
		s, ok := parseString(raw)
		if !ok || s == "" {
			return badRequest("%s must be a non-empty string", name)
		}
		if len(s) > 1024 {
			return badRequest("%s is too long", name)
		}
		*dst = s
		return nil
	}
	var scope string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"scope", &scope}, {"session", &req.Session}, {"keep_session", &req.KeepSession}, {"user_id", &req.UserID}} {
		if err := str(f.name, f.dst); err != nil {
			return RevokeRequest{}, err
		}
	}
	req.Scope = store.Scope(scope)
	need := map[store.Scope]string{store.ScopeSession: "session", store.ScopeOthers: "keep_session", store.ScopeUser: "user_id", store.ScopeAll: ""}
	want, ok := need[req.Scope]
	if !ok {
		return RevokeRequest{}, badRequest("scope must be one of session, user, all, others")
	}
	for _, f := range []struct {
		name, val string
	}{{"session", req.Session}, {"keep_session", req.KeepSession}, {"user_id", req.UserID}} {
		if f.name == want && f.val == "" {
			return RevokeRequest{}, badRequest("scope %s needs %s", req.Scope, f.name)
		}
		if f.name != want && f.val != "" {
			return RevokeRequest{}, badRequest("%s is not allowed with scope %s", f.name, req.Scope)
		}
	}
	return req, nil
}

// ParseOwnerRevoke strictly decodes an owner's revocation body,
// {"scope":"others"}, {"scope":"all"} or {"scope":"user","user_id":...}.
// Errors are 400.
func ParseOwnerRevoke(body []byte) (RevokeRequest, error) {
	fields, err := decodeObject(body, "scope", "user_id")
	if err != nil {
		return RevokeRequest{}, err
	}
	s, _ := parseString(fields["scope"])
	req := RevokeRequest{Scope: store.Scope(s)}
	raw, hasUser := fields["user_id"]
	switch req.Scope {
	case store.ScopeOthers, store.ScopeAll:
		if !hasUser {
			return req, nil
		}
	case store.ScopeUser:
		if u, ok := parseString(raw); ok && u != "" && len(u) <= 1024 {
			req.UserID = u
			return req, nil
		}
		return RevokeRequest{}, badRequest("scope user needs user_id, a non-empty string")
	}
	return RevokeRequest{}, badRequest(`scope must be "others", "all" or "user" (with user_id)`)
}

// candidates returns the hashes a session reference may stand for: the
// reference itself when it has the shape of a hash, and the hash of it
// as a raw id.
func candidates(ref string) []string {
	var out []string
	if session.LooksLikeHash(ref) {
		out = append(out, ref)
	}
	return append(out, session.HashID(ref))
}

// shownHash is how a session reference appears in audit events and
// logs: a hash as given, a raw id hashed. A raw id is never shown.
func shownHash(ref string) string {
	if session.LooksLikeHash(ref) {
		return ref
	}
	return session.HashID(ref)
}

// revokeEvent is the data of a sessions.revoke event.
type revokeEvent struct {
	Scope         store.Scope `json:"scope"`
	Count         int         `json:"count"`
	UserID        string      `json:"user_id,omitempty"`
	SessionIDHash string      `json:"session_id_hash,omitempty"`
	KeepIDHash    string      `json:"keep_session_id_hash,omitempty"`
}

// Revoke ends sessions of an account as req says and writes one
// sessions.revoke audit event. Scopes all, others and user also reject
// tokens that logged in before now and were not seen yet.
func (m *Manager) Revoke(ctx context.Context, account string, req RevokeRequest, actor string) (RevokeResult, error) {
	sr := store.RevokeRequest{Account: account, Scope: req.Scope, User: req.UserID, Policy: m.Policy, By: req.By}
	ev := revokeEvent{Scope: req.Scope, UserID: req.UserID}
	switch req.Scope {
	case store.ScopeSession:
		sr.Sessions = candidates(req.Session)
		ev.SessionIDHash = shownHash(req.Session)
	case store.ScopeOthers:
		sr.Sessions = candidates(req.KeepSession)
		ev.KeepIDHash = shownHash(req.KeepSession)
	case store.ScopeUser, store.ScopeAll:
	default:
		return RevokeResult{}, badRequest("scope must be one of session, user, all, others")
	}
	n, err := m.Store.Revoke(ctx, sr)
	if err != nil {
		return RevokeResult{}, storeError("revoking sessions", err)
	}
	ev.Count = n
	if err := m.audit(ctx, account, EventSessionsRevoke, actor, ev); err != nil {
		return RevokeResult{}, err
	}
	return RevokeResult{Revoked: n}, nil
}

// RevokeJSON parses body with ParseRevoke and revokes.
func (m *Manager) RevokeJSON(ctx context.Context, account string, body []byte, actor string) (RevokeResult, error) {
	req, err := ParseRevoke(body)
	if err != nil {
		return RevokeResult{}, err
	}
	return m.Revoke(ctx, account, req, actor)
}

// AuditView lists audit events.
type AuditView struct {
	// Events are the account's audit events, newest first.
	Events []store.Event `json:"events"`
}

// ParseLimit parses an audit limit from a query parameter: empty is
// DefaultAuditLimit; otherwise an integer from 1 to MaxAuditLimit.
func ParseLimit(s string) (int, error) {
	if s == "" {
		return DefaultAuditLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxAuditLimit {
		return 0, badRequest("limit must be an integer from 1 to %d", MaxAuditLimit)
	}
	return n, nil
}

// Audit returns up to limit audit events of an account, newest first.
func (m *Manager) Audit(ctx context.Context, account string, limit int) (AuditView, error) {
	if limit < 1 || limit > MaxAuditLimit {
		return AuditView{}, badRequest("limit must be an integer from 1 to %d", MaxAuditLimit)
	}
	evs, err := m.Store.Audit(ctx, account, limit)
	if err != nil {
		return AuditView{}, storeError("reading audit log", err)
	}
	if evs == nil {
		evs = []store.Event{}
	}
	for i := range evs {
		evs[i].Time = evs[i].Time.UTC()
	}
	return AuditView{Events: evs}, nil
}

// audit stores one event and logs it.
func (m *Manager) audit(ctx context.Context, account, typ, actor string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Message: "encoding audit event", Err: err}
	}
	ev := store.Event{Time: m.now().UTC(), Type: typ, Actor: actor, Account: account, Data: raw}
	fields := []zap.Field{
		zap.String("type", typ),
		zap.String("account", account),
		zap.String("actor", actor),
		zap.Time("time", ev.Time),
		zap.Any("data", data),
	}
	if err := m.Store.AppendAudit(ctx, account, ev); err != nil {
		// the change is done; keep its record in the log at least
		m.logger().Error("audit event not stored", append(fields, zap.Error(err))...)
		return storeError("storing audit event", err)
	}
	m.logger().Info("audit", fields...)
	return nil
}

// CheckAccount validates an account id taken from a request: not empty,
// at most MaxAccountBytes, valid UTF-8 and free of control characters.
func CheckAccount(account string) error {
	switch {
	case account == "":
		return badRequest("account must not be empty")
	case len(account) > MaxAccountBytes:
		return badRequest("account is longer than %d bytes", MaxAccountBytes)
	case !utf8.ValidString(account):
		return badRequest("account is not valid UTF-8")
	case strings.IndexFunc(account, unicode.IsControl) >= 0:
		return badRequest("account contains control characters")
	}
	return nil
}

// SanitizeActor makes an actor name safe to store and log: control
// characters and invalid UTF-8 are dropped and the result is cut to
// MaxActorBytes. An empty result is def.
func SanitizeActor(actor, def string) string {
	actor = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return -1
		}
		return r
	}, actor)
	actor = strings.TrimSpace(Truncate(actor, MaxActorBytes))
	if actor == "" {
		return def
	}
	return actor
}
