package manage

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/store"
)

// TestPatchLimitBoundsPresetsAudit: the session limit in PATCH follows
// the bounds, a preset carries its limit, and the audit event records
// old, new and effective values of the limit fields.
func TestPatchLimitBoundsPresetsAudit(t *testing.T) {
	f := newFixture(t)
	f.cfg.Bounds.Sessions = policy.CountRange{Min: 1, Max: 5}
	f.cfg.Presets["kiosk"] = f.cfg.Presets[policy.PresetStrict]
	f.cfg.PresetLimits = map[string]policy.Limit{"kiosk": {Max: 1, OnLimit: policy.Deny}}
	ctx := context.Background()

	_, err := f.m.PatchPolicy(ctx, "acme", []byte(`{"max_sessions_per_user":6}`), "ops")
	if me := AsError(err); err == nil || me.Status != 422 || me.Fields[policy.FieldSessions] != "must be between 1 and 5 sessions" {
		t.Fatalf("above the bound: %v %v", err, me.Fields)
	}
	v, err := f.m.PatchPolicy(ctx, "acme", []byte(`{"max_sessions_per_user":5,"on_limit":"deny"}`), "ops")
	if err != nil || *v.Effective.MaxSessions != 5 || v.Effective.OnLimit != policy.Deny || v.Preset != policy.PresetCustom {
		t.Fatalf("at the bound: %v %s", err, js(v))
	}
	if b := js(v.Bounds.Sessions); b != `{"min":1,"max":5}` {
		t.Fatalf("bounds %s", b)
	}
	evs := f.events(t, "acme")
	var data policyUpdate
	if err := json.Unmarshal(evs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	// unlimited is capped by the upper bound 5
	if data.Old.MaxSessions != nil || *data.New.MaxSessions != 5 || *data.New.OnLimit != policy.Deny ||
		*data.EffectiveOld.MaxSessions != 5 || data.EffectiveOld.OnLimit != policy.EvictOldest ||
		*data.EffectiveNew.MaxSessions != 5 || data.EffectiveNew.OnLimit != policy.Deny {
		t.Fatalf("audit data %s", evs[0].Data)
	}

	v, err = f.m.PatchPolicy(ctx, "acme", []byte(`{"preset":"kiosk"}`), "ops")
	if err != nil || v.Preset != "kiosk" || *v.Override.MaxSessions != 1 || *v.Effective.MaxSessions != 1 || v.Effective.OnLimit != policy.Deny {
		t.Fatalf("preset kiosk: %v %s", err, js(v))
	}
	// a preset without a limit clears the limit override
	v, err = f.m.PatchPolicy(ctx, "acme", []byte(`{"preset":"strict"}`), "ops")
	if err != nil || v.Preset != policy.PresetStrict || v.Override.MaxSessions != nil || v.Override.OnLimit != nil {
		t.Fatalf("preset strict: %v %s", err, js(v))
	}
	d := f.m.Defaults(0)
	if p := js(d.Presets["kiosk"]); p != `{"idle_minutes":15,"absolute_minutes":720,"max_sessions_per_user":1,"on_limit":"deny"}` {
		t.Fatalf("kiosk preset shown as %s", p)
	}
}

// TestActiveUsersCountAgainstLimit: the active-users list shows each
// user's live sessions against the account's limit.
func TestActiveUsersCountAgainstLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.touch(t, "acme", "s1", "alice", t0)
	f.touch(t, "acme", "s2", "alice", t0)
	v, err := f.m.Sessions(ctx, "acme", store.Page{})
	if err != nil || len(v.ActiveUsers) != 1 || v.ActiveUsers[0].Sessions != 2 || v.ActiveUsers[0].MaxSessions != nil {
		t.Fatalf("unlimited: %v %s", err, js(v.ActiveUsers))
	}
	if _, err := f.m.PatchPolicy(ctx, "acme", []byte(`{"max_sessions_per_user":3}`), "ops"); err != nil {
		t.Fatal(err)
	}
	v, _ = f.m.Sessions(ctx, "acme", store.Page{})
	if got := js(v.ActiveUsers); got != `[{"user_id":"alice","name":"N alice","email":"alice@example.com","last_login_at":"2030-01-02T03:04:05Z","sessions":2,"max_sessions_per_user":3}]` {
		t.Fatalf("active users %s", got)
	}
}
