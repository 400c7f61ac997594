package policy

import (
	"fmt"
	"time"
)

// Field names used in validation errors; they match the admin API's JSON.
const (
	FieldIdle     = "idle_minutes"
	FieldAbsolute = "absolute_minutes"
	FieldPreset   = "preset"
	FieldSessions = "max_sessions_per_user"
	FieldOnLimit  = "on_limit"
)

// FieldPatch changes one override field. When Set is false the field is
// left alone; when Set is true and Minutes is nil the override is cleared
// (the field inherits again).
type FieldPatch struct {
	Set     bool
	Minutes *int64
}

// CountPatch changes a count field like FieldPatch: unset, cleared
// (Count nil) or set.
type CountPatch struct {
	Set   bool
	Count *int64
}

// ModePatch changes the on_limit field: unset, cleared (Value nil) or
// set.
type ModePatch struct {
	Set   bool
	Value *OnLimit
}

// Patch is a change to an account's override: either per-field minutes
// or a preset name, never both.
type Patch struct {
	Idle     FieldPatch
	Absolute FieldPatch
	// Sessions changes the session limit per user.
	Sessions CountPatch
	// OnLimit changes what happens at the limit.
	OnLimit ModePatch
	// Preset, when not empty, sets every field to that preset's values
	// (a preset without a session limit clears the limit fields).
	Preset string
}

// FieldErrors maps a field name to what is wrong with it.
type FieldErrors map[string]string

// Error implements error.
func (fe FieldErrors) Error() string {
	return fmt.Sprintf("validation failed: %v", map[string]string(fe))
}

// ApplyPatch returns the override that results from applying p to old,
// or the reasons it may not. The effective policy of the result (ignoring
// token claims) must keep idle <= absolute, also when only one field is
// overridden.
func (c Config) ApplyPatch(old Override, p Patch) (Override, FieldErrors) {
	errs := FieldErrors{}
	next := old
	if p.Preset != "" {
		if p.Idle.Set || p.Absolute.Set || p.Sessions.Set || p.OnLimit.Set {
			errs[FieldPreset] = "give either a preset or the fields, not both"
			return old, errs
		}
		pp, ok := c.Presets[p.Preset]
		if !ok {
			errs[FieldPreset] = fmt.Sprintf("unknown preset %q", p.Preset)
			return old, errs
		}
		idle, abs := pp.Idle, pp.Absolute
		next = Override{Idle: &idle, Absolute: &abs}
		if l, ok := c.PresetLimits[p.Preset]; ok && l.Max > 0 {
			n, mode := l.Max, l.mode()
			next.MaxSessions, next.OnLimit = &n, &mode
		}
	}
	set := func(field string, fp FieldPatch, r Range, dst **time.Duration) {
		if !fp.Set {
			return
		}
		if fp.Minutes == nil {
			*dst = nil
			return
		}
		m := *fp.Minutes
		if m <= 0 {
			errs[field] = "must be a positive whole number of minutes"
			return
		}
		minM, maxM := int64(r.Min/time.Minute), int64(r.Max/time.Minute)
		if m < minM || m > maxM || time.Duration(m)*time.Minute < r.Min {
			errs[field] = fmt.Sprintf("must be between %d and %d minutes", ceilMinutes(r.Min), maxM)
			return
		}
		d := time.Duration(m) * time.Minute
		*dst = &d
	}
	set(FieldIdle, p.Idle, c.Bounds.Idle, &next.Idle)
	set(FieldAbsolute, p.Absolute, c.Bounds.Absolute, &next.Absolute)
	c.patchLimit(p, &next, errs)
	if len(errs) > 0 {
		return old, errs
	}
	idle, abs := c.DefaultPolicy().Idle, c.DefaultPolicy().Absolute
	if next.Idle != nil {
		idle = *next.Idle
	}
	if next.Absolute != nil {
		abs = *next.Absolute
	}
	if idle > abs {
		msg := fmt.Sprintf("idle (%d minutes) must not exceed absolute (%d minutes)", int64(idle/time.Minute), int64(abs/time.Minute))
		switch {
		case p.Idle.Set && p.Idle.Minutes != nil:
			errs[FieldIdle] = msg
		case p.Absolute.Set && p.Absolute.Minutes != nil:
			errs[FieldAbsolute] = msg
		default:
			errs[FieldIdle] = msg
		}
		return old, errs
	}
	return next, nil
}

func ceilMinutes(d time.Duration) int64 {
	m := int64(d / time.Minute)
	if time.Duration(m)*time.Minute < d {
		m++
	}
	return m
}

// patchLimit applies the session-limit fields of p to next.
func (c Config) patchLimit(p Patch, next *Override, errs FieldErrors) {
	if fp := p.Sessions; fp.Set {
		b := c.Bounds.Sessions
		switch {
		case fp.Count == nil:
			next.MaxSessions = nil
		case *fp.Count < 1 || *fp.Count > 1<<31 || !b.Contains(int(*fp.Count)):
			if b.Max == 0 {
				errs[FieldSessions] = fmt.Sprintf("must be a whole number of sessions, at least %d", b.Min)
			} else {
				errs[FieldSessions] = fmt.Sprintf("must be between %d and %d sessions", b.Min, b.Max)
			}
		default:
			n := int(*fp.Count)
			next.MaxSessions = &n
		}
	}
	if op := p.OnLimit; op.Set {
		switch {
		case op.Value == nil:
			next.OnLimit = nil
		case !op.Value.Valid():
			errs[FieldOnLimit] = fmt.Sprintf("must be %q or %q", EvictOldest, Deny)
		default:
			v := *op.Value
			next.OnLimit = &v
		}
	}
}
