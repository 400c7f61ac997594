package policy

import (
	"testing"
	"time"
)

func dur(m int) *time.Duration { d := time.Duration(m) * time.Minute; return &d }
func mins(m int64) *int64      { return &m }

func TestBuiltinPresets(t *testing.T) {
	p := BuiltinPresets()
	if p[PresetStrict] != (Policy{15 * time.Minute, 12 * time.Hour}) {
		t.Fatalf("strict = %+v", p[PresetStrict])
	}
	if p[PresetStandard] != (Policy{time.Hour, 24 * time.Hour}) {
		t.Fatalf("standard = %+v", p[PresetStandard])
	}
	c := NewConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Default != PresetStrict || c.Apply != ApplyNextLogin || c.Bounds != DefaultBounds() {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(c *Config){
		"unknown default":    func(c *Config) { c.Default = "nope" },
		"bad apply":          func(c *Config) { c.Apply = "later" },
		"idle above abs":     func(c *Config) { c.Presets["x"] = Policy{2 * time.Hour, time.Hour} },
		"preset out of bnd":  func(c *Config) { c.Presets["x"] = Policy{time.Minute, time.Hour} },
		"reserved name":      func(c *Config) { c.Presets[PresetCustom] = Policy{time.Hour, 2 * time.Hour} },
		"bounds inverted":    func(c *Config) { c.Bounds.Idle = Range{time.Hour, time.Minute} },
		"bounds nonpositive": func(c *Config) { c.Bounds.Absolute.Min = 0 },
		"sub-minute preset": func(c *Config) {
			c.Bounds.Idle.Min = time.Second
			c.Presets["x"] = Policy{30 * time.Second, time.Hour}
		},
	} {
		c := NewConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEffective(t *testing.T) {
	c := NewConfig()
	cases := []struct {
		name string
		ov   Override
		cl   Claimed
		want Policy
	}{
		{"default", Override{}, Claimed{}, Policy{15 * time.Minute, 12 * time.Hour}},
		{"claims", Override{}, Claimed{30 * time.Minute, 2 * time.Hour}, Policy{30 * time.Minute, 2 * time.Hour}},
		{"override beats claims per field", Override{Idle: dur(20)}, Claimed{30 * time.Minute, 2 * time.Hour}, Policy{20 * time.Minute, 2 * time.Hour}},
		{"override both", Override{Idle: dur(20), Absolute: dur(60)}, Claimed{30 * time.Minute, 2 * time.Hour}, Policy{20 * time.Minute, time.Hour}},
		{"clamped up", Override{}, Claimed{time.Second, time.Second}, Policy{5 * time.Minute, 15 * time.Minute}},
		{"clamped down", Override{}, Claimed{10000 * time.Hour, 10000 * time.Hour}, Policy{720 * time.Hour, 2160 * time.Hour}},
		{"idle capped at absolute", Override{Absolute: dur(16)}, Claimed{}, Policy{15 * time.Minute, 16 * time.Minute}},
		{"idle capped (claims)", Override{}, Claimed{5 * time.Hour, time.Hour}, Policy{time.Hour, time.Hour}},
	}
	for _, tc := range cases {
		if got := c.Effective(tc.ov, tc.cl); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestPresetOf(t *testing.T) {
	c := NewConfig()
	if n := c.PresetOf(Policy{time.Hour, 24 * time.Hour}, c.PresetLimit(PresetStandard)); n != PresetStandard {
		t.Fatalf("got %q", n)
	}
	if n := c.PresetOf(Policy{time.Hour, 25 * time.Hour}, Limit{OnLimit: EvictOldest}); n != PresetCustom {
		t.Fatalf("got %q", n)
	}
}

func TestApplyPatch(t *testing.T) {
	c := NewConfig() // strict default: 15m / 12h
	cases := []struct {
		name     string
		old      Override
		p        Patch
		wantErr  string // field with an error, "" for none
		wantIdle *time.Duration
		wantAbs  *time.Duration
	}{
		{"set idle", Override{}, Patch{Idle: FieldPatch{true, mins(30)}}, "", dur(30), nil},
		{"clear idle", Override{Idle: dur(30)}, Patch{Idle: FieldPatch{Set: true}}, "", nil, nil},
		{"leave absent field", Override{Absolute: dur(600)}, Patch{Idle: FieldPatch{true, mins(30)}}, "", dur(30), dur(600)},
		{"zero", Override{}, Patch{Idle: FieldPatch{true, mins(0)}}, FieldIdle, nil, nil},
		{"negative", Override{}, Patch{Absolute: FieldPatch{true, mins(-5)}}, FieldAbsolute, nil, nil},
		{"below bound", Override{}, Patch{Idle: FieldPatch{true, mins(4)}}, FieldIdle, nil, nil},
		{"above bound", Override{}, Patch{Absolute: FieldPatch{true, mins(2160*60 + 1)}}, FieldAbsolute, nil, nil},
		{"huge", Override{}, Patch{Absolute: FieldPatch{true, mins(1e18)}}, FieldAbsolute, nil, nil},
		{"at bounds", Override{}, Patch{Idle: FieldPatch{true, mins(5)}, Absolute: FieldPatch{true, mins(2160 * 60)}}, "", dur(5), dur(2160 * 60)},
		{"idle above abs", Override{}, Patch{Idle: FieldPatch{true, mins(120)}, Absolute: FieldPatch{true, mins(60)}}, FieldIdle, nil, nil},
		// partial override: only idle set, but above the inherited 12h absolute
		{"partial idle above inherited abs", Override{}, Patch{Idle: FieldPatch{true, mins(13 * 60)}}, FieldIdle, nil, nil},
		// partial override: only absolute set, below the inherited 15m idle
		{"partial abs below inherited idle", Override{}, Patch{Absolute: FieldPatch{true, mins(15)}}, "", nil, dur(15)},
		{"partial abs below overridden idle", Override{Idle: dur(60)}, Patch{Absolute: FieldPatch{true, mins(30)}}, FieldAbsolute, nil, nil},
		{"clearing abs breaks idle", Override{Idle: dur(13 * 60), Absolute: dur(24 * 60)}, Patch{Absolute: FieldPatch{Set: true}}, FieldIdle, nil, nil},
		{"preset", Override{Idle: dur(30)}, Patch{Preset: PresetStandard}, "", dur(60), dur(24 * 60)},
		{"unknown preset", Override{}, Patch{Preset: "nope"}, FieldPreset, nil, nil},
		{"preset and minutes", Override{}, Patch{Preset: PresetStrict, Idle: FieldPatch{true, mins(30)}}, FieldPreset, nil, nil},
	}
	eq := func(a, b *time.Duration) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for _, tc := range cases {
		got, errs := c.ApplyPatch(tc.old, tc.p)
		if tc.wantErr != "" {
			if _, ok := errs[tc.wantErr]; !ok || len(errs) == 0 {
				t.Errorf("%s: errors %v, want one on %s", tc.name, errs, tc.wantErr)
			}
			if !eq(got.Idle, tc.old.Idle) || !eq(got.Absolute, tc.old.Absolute) {
				t.Errorf("%s: a failed patch changed the override", tc.name)
			}
			continue
		}
		if len(errs) != 0 {
			t.Errorf("%s: unexpected errors %v", tc.name, errs)
			continue
		}
		if !eq(got.Idle, tc.wantIdle) || !eq(got.Absolute, tc.wantAbs) {
			t.Errorf("%s: got idle=%v abs=%v", tc.name, got.Idle, got.Absolute)
		}
	}
}
