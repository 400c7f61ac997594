package policy

import (
	"strings"
	"testing"
	"time"
)

func limitConfig() Config {
	c := NewConfig()
	c.Presets["kiosk"] = Policy{Idle: 15 * time.Minute, Absolute: 12 * time.Hour}
	c.PresetLimits = map[string]Limit{"kiosk": {Max: 1, OnLimit: Deny}}
	return c
}

func TestEffectiveLimit(t *testing.T) {
	n := func(v int) *int { return &v }
	m := func(v OnLimit) *OnLimit { return &v }
	c := limitConfig()
	cases := []struct {
		name   string
		def    string
		bounds CountRange
		ov     Override
		want   Limit
	}{
		{"default unlimited", PresetStrict, DefaultSessionBounds(), Override{}, Limit{0, EvictOldest}},
		{"override", PresetStrict, DefaultSessionBounds(), Override{MaxSessions: n(3)}, Limit{3, EvictOldest}},
		{"override mode only", PresetStrict, DefaultSessionBounds(), Override{OnLimit: m(Deny)}, Limit{0, Deny}},
		{"preset carries a limit", "kiosk", DefaultSessionBounds(), Override{}, Limit{1, Deny}},
		{"override beats preset", "kiosk", DefaultSessionBounds(), Override{MaxSessions: n(4), OnLimit: m(EvictOldest)}, Limit{4, EvictOldest}},
		{"clamped up", PresetStrict, CountRange{Min: 2, Max: 5}, Override{MaxSessions: n(1)}, Limit{2, EvictOldest}},
		{"clamped down", PresetStrict, CountRange{Min: 2, Max: 5}, Override{MaxSessions: n(9)}, Limit{5, EvictOldest}},
		{"unlimited capped by bounds", PresetStrict, CountRange{Min: 1, Max: 5}, Override{}, Limit{5, EvictOldest}},
	}
	for _, tc := range cases {
		c.Default, c.Bounds.Sessions = tc.def, tc.bounds
		if got := c.EffectiveLimit(tc.ov); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestLimitValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"ok", func(c *Config) {}, ""},
		{"bounds min zero", func(c *Config) { c.Bounds.Sessions.Min = 0 }, "at least 1"},
		{"bounds reversed", func(c *Config) { c.Bounds.Sessions = CountRange{Min: 3, Max: 2} }, "above maximum"},
		{"preset outside bounds", func(c *Config) { c.Bounds.Sessions = CountRange{Min: 2, Max: 4} }, "outside the bounds"},
		{"unknown preset", func(c *Config) { c.PresetLimits["nope"] = Limit{Max: 2} }, "no such preset"},
		{"bad mode", func(c *Config) { c.PresetLimits["kiosk"] = Limit{Max: 2, OnLimit: "drop"} }, "on_limit"},
		{"negative", func(c *Config) { c.PresetLimits["kiosk"] = Limit{Max: -1} }, "positive"},
	}
	for _, tc := range cases {
		c := limitConfig()
		tc.edit(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestApplyPatchLimit(t *testing.T) {
	cnt := func(v int64) *int64 { return &v }
	deny, bad := Deny, OnLimit("drop")
	c := limitConfig()
	c.Bounds.Sessions = CountRange{Min: 1, Max: 10}
	cases := []struct {
		name    string
		old     Override
		p       Patch
		wantErr string
		wantMax *int
		wantOn  *OnLimit
	}{
		{"set", Override{}, Patch{Sessions: CountPatch{true, cnt(3)}}, "", ptrInt(3), nil},
		{"clear", Override{MaxSessions: ptrInt(3)}, Patch{Sessions: CountPatch{Set: true}}, "", nil, nil},
		{"zero", Override{}, Patch{Sessions: CountPatch{true, cnt(0)}}, FieldSessions, nil, nil},
		{"above bound", Override{}, Patch{Sessions: CountPatch{true, cnt(11)}}, FieldSessions, nil, nil},
		{"huge", Override{}, Patch{Sessions: CountPatch{true, cnt(1 << 40)}}, FieldSessions, nil, nil},
		{"mode", Override{}, Patch{OnLimit: ModePatch{true, &deny}}, "", nil, &deny},
		{"bad mode", Override{}, Patch{OnLimit: ModePatch{true, &bad}}, FieldOnLimit, nil, nil},
		{"preset with a limit", Override{}, Patch{Preset: "kiosk"}, "", ptrInt(1), &deny},
		{"preset without one clears", Override{MaxSessions: ptrInt(3), OnLimit: &deny}, Patch{Preset: PresetStandard}, "", nil, nil},
		{"preset and a field", Override{}, Patch{Preset: "kiosk", Sessions: CountPatch{true, cnt(2)}}, FieldPreset, nil, nil},
	}
	for _, tc := range cases {
		got, errs := c.ApplyPatch(tc.old, tc.p)
		if tc.wantErr != "" {
			if _, ok := errs[tc.wantErr]; !ok || got.MaxSessions != tc.old.MaxSessions {
				t.Errorf("%s: errors %v, override %+v; want an error on %s and the old override", tc.name, errs, got, tc.wantErr)
			}
			continue
		}
		if len(errs) > 0 {
			t.Errorf("%s: errors %v", tc.name, errs)
			continue
		}
		if !eqPtr(got.MaxSessions, tc.wantMax) || !eqPtr(got.OnLimit, tc.wantOn) {
			t.Errorf("%s: got max %v on %v", tc.name, deref(got.MaxSessions), deref(got.OnLimit))
		}
	}
}

func ptrInt(v int) *int { return &v }

func eqPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
