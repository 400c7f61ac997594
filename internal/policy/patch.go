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
)

// FieldPatch changes one override field. When Set is false the field is
// left alone; when Set is true and Minutes is nil the override is cleared
// (the field inherits again).
type FieldPatch struct {
	Set     bool
	Minutes *int64
}

// Patch is a change to an account's override: either per-field minutes
// or a preset name, never both.
type Patch struct {
	Idle     FieldPatch
	Absolute FieldPatch
	// Preset, when not empty, sets both fields to that preset's values.
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
		if p.Idle.Set || p.Absolute.Set {
			errs[FieldPreset] = "give either a preset or minutes, not both"
			return old, errs
		}
		pp, ok := c.Presets[p.Preset]
		if !ok {
			errs[FieldPreset] = fmt.Sprintf("unknown preset %q", p.Preset)
			return old, errs
		}
		idle, abs := pp.Idle, pp.Absolute
		next = Override{Idle: &idle, Absolute: &abs}
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
