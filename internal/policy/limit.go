package policy

import (
	"fmt"
	"strconv"
)

// OnLimit says what a new session of a user who is at the session limit
// does.
type OnLimit string

// What happens at the limit.
const (
	// EvictOldest ends the user's oldest-login live sessions to make
	// room. It is the default.
	EvictOldest OnLimit = "evict_oldest"
	// Deny refuses the new session.
	Deny OnLimit = "deny"
)

// Valid reports whether o is one of the modes.
func (o OnLimit) Valid() bool { return o == EvictOldest || o == Deny }

// Limit is how many live sessions one user of an account may have.
type Limit struct {
	// Max is the most live sessions of one user; 0 is unlimited.
	Max int `json:"max_sessions_per_user,omitempty"`
	// OnLimit is what a new session beyond Max does; empty is
	// EvictOldest.
	OnLimit OnLimit `json:"on_limit,omitempty"`
}

// mode is l.OnLimit with the default filled in.
func (l Limit) mode() OnLimit {
	if l.OnLimit == "" {
		return EvictOldest
	}
	return l.OnLimit
}

// CountRange is an inclusive range of session counts; Max 0 has no
// upper end.
type CountRange struct {
	Min int `json:"min"`
	Max int `json:"max,omitempty"`
}

// Contains reports whether n lies within r.
func (r CountRange) Contains(n int) bool { return n >= r.Min && (r.Max == 0 || n <= r.Max) }

// String shows r as "min..max" ("min.." without an upper end).
func (r CountRange) String() string {
	if r.Max == 0 {
		return strconv.Itoa(r.Min) + ".."
	}
	return strconv.Itoa(r.Min) + ".." + strconv.Itoa(r.Max)
}

// DefaultSessionBounds bounds session limits by default: at least 1, no
// upper end.
func DefaultSessionBounds() CountRange { return CountRange{Min: 1} }

// EffectiveLimit returns the session limit of a new session of an
// account with override ov: per field the override, else the default
// preset's limit, else unlimited and evict_oldest. The count is clamped
// to the bounds; with an upper bound, unlimited becomes that bound (the
// bounds limit every policy).
func (c Config) EffectiveLimit(ov Override) Limit {
	l := c.PresetLimits[c.Default]
	if ov.MaxSessions != nil {
		l.Max = *ov.MaxSessions
	}
	if ov.OnLimit != nil {
		l.OnLimit = *ov.OnLimit
	}
	return c.clampLimit(l)
}

// clampLimit fills in the default mode and moves the count into the
// session bounds.
func (c Config) clampLimit(l Limit) Limit {
	l.OnLimit = l.mode()
	b := c.Bounds.Sessions
	switch {
	case l.Max <= 0:
		l.Max = b.Max
	case l.Max < b.Min:
		l.Max = b.Min
	case b.Max > 0 && l.Max > b.Max:
		l.Max = b.Max
	}
	return l
}

// PresetLimit is the session limit preset name carries, as a new
// session would get it.
func (c Config) PresetLimit(name string) Limit { return c.clampLimit(c.PresetLimits[name]) }

// validateLimits checks the session bounds and every preset's limit.
func (c Config) validateLimits() error {
	b := c.Bounds.Sessions
	if b.Min < 1 {
		return fmt.Errorf("bounds sessions: minimum must be at least 1")
	}
	if b.Max != 0 && b.Max < b.Min {
		return fmt.Errorf("bounds sessions: minimum %d is above maximum %d", b.Min, b.Max)
	}
	for name, l := range c.PresetLimits {
		if _, ok := c.Presets[name]; !ok {
			return fmt.Errorf("session limit of preset %q: no such preset", name)
		}
		if l.Max < 0 {
			return fmt.Errorf("preset %q: sessions must be positive", name)
		}
		if l.OnLimit != "" && !l.OnLimit.Valid() {
			return fmt.Errorf("preset %q: on_limit %q: must be %s or %s", name, l.OnLimit, EvictOldest, Deny)
		}
		if l.Max != 0 && !b.Contains(l.Max) {
			return fmt.Errorf("preset %q: sessions %d is outside the bounds %s", name, l.Max, b)
		}
	}
	return nil
}
