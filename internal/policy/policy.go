// Package policy holds sessionguard's policy maths: presets, bounds,
// per-account overrides and the effective idle and absolute limits of a
// session. It knows nothing of Caddy or of any store.
package policy

import (
	"fmt"
	"sort"
	"time"
)

// Policy is a pair of session limits.
type Policy struct {
	// Idle is the longest a session may stay inactive.
	Idle time.Duration `json:"idle"`
	// Absolute is the longest a session may live after login, whatever
	// its activity.
	Absolute time.Duration `json:"absolute"`
}

// Names of the built-in presets.
const (
	PresetStrict   = "strict"
	PresetStandard = "standard"
	// PresetCustom is reported when an effective policy matches no preset.
	PresetCustom = "custom"
)

// BuiltinPresets returns the built-in presets: strict (idle 15m,
// absolute 12h; NIST SP 800-63B AAL3) and standard (idle 1h, absolute
// 24h; NIST SP 800-63B rev. 4 AAL2 ceilings).
func BuiltinPresets() map[string]Policy {
	return map[string]Policy{
		PresetStrict:   {Idle: 15 * time.Minute, Absolute: 12 * time.Hour},
		PresetStandard: {Idle: time.Hour, Absolute: 24 * time.Hour},
	}
}

// Range is an inclusive [Min, Max] interval of durations.
type Range struct {
	Min time.Duration `json:"min"`
	Max time.Duration `json:"max"`
}

// Contains reports whether d lies within r.
func (r Range) Contains(d time.Duration) bool { return d >= r.Min && d <= r.Max }

// Clamp returns d moved into r.
func (r Range) Clamp(d time.Duration) time.Duration {
	if d < r.Min {
		return r.Min
	}
	if d > r.Max {
		return r.Max
	}
	return d
}

// Bounds limit what any policy may set.
type Bounds struct {
	// Idle bounds the idle limit. Default 5m to 720h.
	Idle Range `json:"idle"`
	// Absolute bounds the absolute limit. Default 15m to 2160h.
	Absolute Range `json:"absolute"`
	// Sessions bounds the session limit per user. Default 1, no upper
	// end.
	Sessions CountRange `json:"sessions"`
}

// DefaultBounds returns the default bounds: idle 5m..720h, absolute
// 15m..2160h.
func DefaultBounds() Bounds {
	return Bounds{
		Idle:     Range{Min: 5 * time.Minute, Max: 720 * time.Hour},
		Absolute: Range{Min: 15 * time.Minute, Max: 2160 * time.Hour},
		Sessions: DefaultSessionBounds(),
	}
}

// Apply says when a policy change reaches live sessions.
type Apply string

// Apply modes.
const (
	// ApplyNextLogin keeps live sessions on the policy snapshot taken when
	// they were created. It is the default.
	ApplyNextLogin Apply = "next_login"
	// ApplyImmediately makes live sessions follow the account's current
	// policy on their next request.
	ApplyImmediately Apply = "immediately"
)

// Override is an account's per-field override. A nil field inherits.
type Override struct {
	Idle     *time.Duration
	Absolute *time.Duration
	// MaxSessions is the session limit per user; OnLimit what a session
	// beyond it does.
	MaxSessions *int
	OnLimit     *OnLimit
}

// IsZero reports whether o overrides nothing.
func (o Override) IsZero() bool {
	return o.Idle == nil && o.Absolute == nil && o.MaxSessions == nil && o.OnLimit == nil
}

// Claimed is the policy an app put into a token at login. Zero fields
// are absent.
type Claimed struct {
	Idle     time.Duration
	Absolute time.Duration
}

// Config is the gateway-wide policy configuration.
type Config struct {
	// Presets by name, the built-in ones included.
	Presets map[string]Policy
	// PresetLimits are the session limits of the presets that carry
	// one, by preset name; a preset without one is unlimited.
	PresetLimits map[string]Limit
	// Default is the name of the default preset.
	Default string
	// Bounds limit every policy.
	Bounds Bounds
	// Apply is the apply mode.
	Apply Apply
}

// NewConfig returns a Config with the built-in presets, default preset
// strict, default bounds and apply mode next_login.
func NewConfig() Config {
	return Config{
		Presets: BuiltinPresets(),
		Default: PresetStrict,
		Bounds:  DefaultBounds(),
		Apply:   ApplyNextLogin,
	}
}

// Validate checks that c is consistent: the default preset exists,
// bounds are ordered and every preset fits the bounds with idle <=
// absolute.
func (c Config) Validate() error {
	if err := c.Bounds.validate(); err != nil {
		return err
	}
	if _, ok := c.Presets[c.Default]; !ok {
		return fmt.Errorf("default preset %q is not defined", c.Default)
	}
	if err := c.validateLimits(); err != nil {
		return err
	}
	switch c.Apply {
	case ApplyNextLogin, ApplyImmediately:
	default:
		return fmt.Errorf("apply mode %q: must be %s or %s", c.Apply, ApplyNextLogin, ApplyImmediately)
	}
	for _, name := range c.PresetNames() {
		p := c.Presets[name]
		if name == PresetCustom {
			return fmt.Errorf("preset name %q is reserved", name)
		}
		if p.Idle < time.Minute || p.Absolute < time.Minute {
			// the admin API and CLI show and set policies in whole minutes
			return fmt.Errorf("preset %q: idle and absolute must be at least 1m (policies are administered in minutes)", name)
		}
		if !c.Bounds.Idle.Contains(p.Idle) {
			return fmt.Errorf("preset %q: idle %s is outside the bounds %s..%s", name, p.Idle, c.Bounds.Idle.Min, c.Bounds.Idle.Max)
		}
		if !c.Bounds.Absolute.Contains(p.Absolute) {
			return fmt.Errorf("preset %q: absolute %s is outside the bounds %s..%s", name, p.Absolute, c.Bounds.Absolute.Min, c.Bounds.Absolute.Max)
		}
		if p.Idle > p.Absolute {
			return fmt.Errorf("preset %q: idle %s is longer than absolute %s", name, p.Idle, p.Absolute)
		}
	}
	return nil
}

func (b Bounds) validate() error {
	for _, f := range []struct {
		name string
		r    Range
	}{{"idle", b.Idle}, {"absolute", b.Absolute}} {
		if f.r.Min <= 0 {
			return fmt.Errorf("bounds %s: minimum must be positive", f.name)
		}
		if f.r.Min > f.r.Max {
			return fmt.Errorf("bounds %s: minimum %s is above maximum %s", f.name, f.r.Min, f.r.Max)
		}
	}
	return nil
}

// PresetNames returns the preset names in sorted order.
func (c Config) PresetNames() []string {
	names := make([]string, 0, len(c.Presets))
	for n := range c.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultPolicy returns the default preset's policy.
func (c Config) DefaultPolicy() Policy { return c.Presets[c.Default] }

// Effective returns the policy of a session of an account with override
// ov whose token claimed cl. Per field: the override, else the claim,
// else the default preset; each clamped to the bounds; then idle is
// capped at absolute.
func (c Config) Effective(ov Override, cl Claimed) Policy {
	def := c.DefaultPolicy()
	p := def
	switch {
	case ov.Idle != nil:
		p.Idle = *ov.Idle
	case cl.Idle > 0:
		p.Idle = cl.Idle
	}
	switch {
	case ov.Absolute != nil:
		p.Absolute = *ov.Absolute
	case cl.Absolute > 0:
		p.Absolute = cl.Absolute
	}
	p.Idle = c.Bounds.Idle.Clamp(p.Idle)
	p.Absolute = c.Bounds.Absolute.Clamp(p.Absolute)
	if p.Idle > p.Absolute {
		p.Idle = p.Absolute
	}
	return p
}

// PresetOf names the preset whose values equal p and l, or
// PresetCustom. The default preset wins a tie.
func (c Config) PresetOf(p Policy, l Limit) string {
	is := func(n string) bool { return c.Presets[n] == p && c.PresetLimit(n) == l }
	if is(c.Default) {
		return c.Default
	}
	for _, n := range c.PresetNames() {
		if is(n) {
			return n
		}
	}
	return PresetCustom
}
