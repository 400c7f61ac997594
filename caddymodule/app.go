// Package caddymodule is sessionguard's Caddy glue: the session_guard
// app, the http.handlers.session_guard handler and their Caddyfile
// syntax. The policy maths, the session state machine and the stores live
// in Caddy-free packages under internal/.
package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/store"
)

func init() {
	caddy.RegisterModule(App{})
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// DefaultTouchInterval is App.TouchInterval when unset.
const DefaultTouchInterval = time.Second

// App is the session_guard app: the state shared by every
// session_guard handler and by the admin API — the session store, the
// policy configuration and the pooled Redis client. A config without it
// gets the zero value: the memory store and the built-in defaults.
type App struct {
	// Store says where sessions live. Default: the embedded memory store.
	Store *StoreConfig `json:"store,omitempty"`

	// DefaultPreset names the preset new sessions get when neither the
	// account nor the token sets a policy. Default "strict".
	DefaultPreset string `json:"default_preset,omitempty"`

	// Presets adds presets or overrides the built-in ones (strict: idle
	// 15m, absolute 12h; standard: idle 1h, absolute 24h).
	Presets map[string]PresetConfig `json:"presets,omitempty"`

	// Bounds limit every policy. Default idle 5m..720h, absolute
	// 15m..2160h, session limit per user 1 and up.
	Bounds *BoundsConfig `json:"bounds,omitempty"`

	// Apply is when a policy change reaches live sessions: "next_login"
	// (default; sessions keep the policy they were created with) or
	// "immediately".
	Apply string `json:"apply,omitempty"`

	// WarnBefore is how long before expiry responses say
	// Session-Expiry-Warning: soon. Default 5m.
	WarnBefore caddy.Duration `json:"warn_before,omitempty"`

	// TouchInterval coalesces activity writes: a request that comes less
	// than this after the session's recorded last activity is checked
	// but not written, so a page that fires many requests costs one
	// store write per interval. The idle deadline may then trail the
	// true last activity by up to this much (a session can end that
	// much early, never late). Default 1s, or a quarter of the shortest
	// allowed idle timeout when that is less; it must be shorter than
	// that timeout. A negative value (Caddyfile "off") records every
	// request.
	TouchInterval caddy.Duration `json:"touch_interval,omitempty"`

	// OnStoreError is what happens when the store cannot be reached:
	// "closed" (default; 503 with Retry-After) or "open" (requests pass
	// with Session-Expiry-Warning: unknown).
	OnStoreError string `json:"on_store_error,omitempty"`

	// Events configures the session lifecycle events: the sweep
	// interval, the outbox bound, retries and the webhook sink. Default:
	// events go to Caddy's log only.
	Events *EventsConfig `json:"events,omitempty"`

	// ClockRaw is a module of the session_guard.clocks namespace the app
	// takes the time from. Default: the system clock (and, for the
	// Redis store, Redis TIME). Tests set it; production has no need.
	ClockRaw json.RawMessage `json:"clock,omitempty" caddy:"namespace=session_guard.clocks inline_key=source"`

	policy policy.Config
	store  store.Store
	// opaqueStore is the store's OpaqueStore side; nil when it has none
	opaqueStore store.OpaqueStore
	index       store.SubjectIndex // nil when the store keeps no such index
	once        store.OnceStore    // nil when the store cannot
	poolKey     string
	pooled      *pooledStore  // the pooled Redis client; nil for memory
	sinks       []eventSink   // the event sinks (events.go)
	cacheDone   chan struct{} // closed when the session cache's Run ends
	now         func() time.Time
	logger      *zap.Logger
	ctx         context.Context
}

// PresetConfig is one preset.
type PresetConfig struct {
	// Idle is the inactivity limit.
	Idle caddy.Duration `json:"idle"`
	// Absolute is the limit since login.
	Absolute caddy.Duration `json:"absolute"`
	// MaxSessions is the most live sessions one user of an account on
	// this preset may have; 0 (default) is unlimited.
	MaxSessions int `json:"max_sessions_per_user,omitempty"`
	// OnLimit is what a new session beyond MaxSessions does:
	// "evict_oldest" (default; the user's oldest-login sessions end) or
	// "deny" (403 session_limit_reached).
	OnLimit string `json:"on_limit,omitempty"`
}

// BoundsConfig limits what any policy may set. Zero fields keep the
// defaults.
type BoundsConfig struct {
	// IdleMin default 5m.
	IdleMin caddy.Duration `json:"idle_min,omitempty"`
	// IdleMax default 720h.
	IdleMax caddy.Duration `json:"idle_max,omitempty"`
	// AbsoluteMin default 15m.
	AbsoluteMin caddy.Duration `json:"absolute_min,omitempty"`
	// AbsoluteMax default 2160h.
	AbsoluteMax caddy.Duration `json:"absolute_max,omitempty"`
	// SessionsMin is the smallest session limit per user; default 1.
	SessionsMin int `json:"sessions_min,omitempty"`
	// SessionsMax is the largest session limit per user; default none.
	// With it, accounts without a limit get this one.
	SessionsMax int `json:"sessions_max,omitempty"`
}

// Store error modes.
const (
	OnStoreErrorClosed = "closed"
	OnStoreErrorOpen   = "open"
)

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "session_guard",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision sets defaults and acquires the store. It never touches the
// network: a Redis client is created (or shared from the pool) without
// connecting, so `caddy validate` passes with Redis down.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	clock, err := a.loadClock(ctx)
	if err != nil {
		return err
	}
	a.now = time.Now
	if clock != nil {
		a.now = clock
	}
	if a.Store == nil {
		a.Store = &StoreConfig{Type: StoreMemory}
	}
	if a.WarnBefore == 0 {
		a.WarnBefore = caddy.Duration(5 * time.Minute)
	}
	if a.OnStoreError == "" {
		a.OnStoreError = OnStoreErrorClosed
	}
	a.policy = policy.NewConfig()
	if a.DefaultPreset != "" {
		a.policy.Default = a.DefaultPreset
	}
	a.provisionPresets()
	if b := a.Bounds; b != nil {
		set := func(dst *time.Duration, v caddy.Duration) {
			if v != 0 {
				*dst = time.Duration(v)
			}
		}
		set(&a.policy.Bounds.Idle.Min, b.IdleMin)
		set(&a.policy.Bounds.Idle.Max, b.IdleMax)
		set(&a.policy.Bounds.Absolute.Min, b.AbsoluteMin)
		set(&a.policy.Bounds.Absolute.Max, b.AbsoluteMax)
		if b.SessionsMin != 0 {
			a.policy.Bounds.Sessions.Min = b.SessionsMin
		}
		a.policy.Bounds.Sessions.Max = b.SessionsMax
	}
	if a.Apply != "" {
		a.policy.Apply = policy.Apply(a.Apply)
	}
	if a.TouchInterval == 0 {
		// never coarser than a quarter of the shortest idle timeout
		a.TouchInterval = caddy.Duration(min(DefaultTouchInterval, a.policy.Bounds.Idle.Min/4))
	}
	st, key, pooled, err := a.Store.acquire(ctx, clock)
	if err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	a.store, a.poolKey, a.pooled = instrumentStore(st), key, pooled
	if os, ok := st.(store.OpaqueStore); ok {
		a.opaqueStore = instrumentedOpaque{os}
	}
	a.index, a.once = indexCapabilities(st)
	if err := a.provisionEvents(); err != nil {
		return err
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// provisionPresets adds the configured presets, with their session
// limits, to the policy configuration.
func (a *App) provisionPresets() {
	for name, p := range a.Presets {
		a.policy.Presets[name] = policy.Policy{Idle: time.Duration(p.Idle), Absolute: time.Duration(p.Absolute)}
		if p.MaxSessions == 0 && p.OnLimit == "" {
			continue
		}
		if a.policy.PresetLimits == nil {
			a.policy.PresetLimits = make(map[string]policy.Limit)
		}
		a.policy.PresetLimits[name] = policy.Limit{Max: p.MaxSessions, OnLimit: policy.OnLimit(p.OnLimit)}
	}
}

// Validate checks the configuration; it acquires nothing.
func (a *App) Validate() error {
	if err := a.policy.Validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	switch a.OnStoreError {
	case OnStoreErrorClosed, OnStoreErrorOpen:
	default:
		return fmt.Errorf("on_store_error %q: must be %s or %s", a.OnStoreError, OnStoreErrorClosed, OnStoreErrorOpen)
	}
	if a.WarnBefore < 0 {
		return errors.New("warn_before must not be negative")
	}
	if time.Duration(a.TouchInterval) >= a.policy.Bounds.Idle.Min {
		return fmt.Errorf("touch_interval %s must be shorter than the shortest idle timeout (%s)", time.Duration(a.TouchInterval), a.policy.Bounds.Idle.Min)
	}
	return a.Store.validate()
}

// Start starts the memory store's pruning, or the Redis session cache's
// lease and subscription and the recording of revoked sessions, and the
// event delivery, stopped by the Provision context.
func (a *App) Start() error {
	a.startEvents()
	if c, ok := unwrapStore(a.store).(store.RevocationCleaner); ok {
		go a.cleanRevoked(c)
	}
	switch st := unwrapStore(a.store).(type) {
	case *store.Memory:
		go st.Run(a.ctx, time.Minute)
	case *store.Cached:
		a.cacheDone = make(chan struct{})
		go func() {
			defer close(a.cacheDone)
			st.Run(a.ctx)
		}()
	}
	return nil
}

// Stop implements caddy.App; resources are released in Cleanup.
func (a *App) Stop() error { return nil }

// Cleanup releases exactly what Provision acquired: this config's
// reference to the pooled store.
func (a *App) Cleanup() error {
	if a.cacheDone != nil {
		// the context is canceled: the cache gives its lease and
		// subscription up before the client may close
		select {
		case <-a.cacheDone:
		case <-time.After(time.Second):
		}
		a.cacheDone = nil
	}
	if a.poolKey == "" {
		return nil
	}
	_, err := storePool.Delete(a.poolKey)
	a.poolKey = ""
	return err
}

// SessionStore returns the app's store.
func (a *App) SessionStore() store.Store { return a.store }

// OpaqueStore returns the store's opaque-cookie side, or nil when the
// store has none.
func (a *App) OpaqueStore() store.OpaqueStore { return a.opaqueStore }

// Policy returns the app's policy configuration.
func (a *App) Policy() *policy.Config { return &a.policy }

// Now returns the app's clock reading.
func (a *App) Now() time.Time { return a.now() }

// Clock is a time source: a module of the session_guard.clocks
// namespace gives the app and its store their time.
type Clock interface {
	Now() time.Time
}

// loadClock returns the configured clock's Now, or nil when none is
// configured.
func (a *App) loadClock(ctx caddy.Context) (func() time.Time, error) {
	if a.ClockRaw == nil {
		return nil, nil
	}
	mod, err := ctx.LoadModule(a, "ClockRaw")
	if err != nil {
		return nil, fmt.Errorf("loading clock: %w", err)
	}
	c, ok := mod.(Clock)
	if !ok {
		return nil, fmt.Errorf("clock module %T has no Now method", mod)
	}
	return c.Now, nil
}

// Logger returns the app's logger.
func (a *App) Logger() *zap.Logger { return a.logger }
