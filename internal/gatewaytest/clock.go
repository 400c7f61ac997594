package gatewaytest

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(clockModule{})
}

// clocks are the clocks handed to configs by WithClock, by id: a config
// is JSON, so the clock module finds its clock here.
var (
	clocks  sync.Map // string → func() time.Time
	clockID atomic.Int64
)

// clockModule is the session_guard.clocks module of the configs of
// WithClock.
type clockModule struct {
	ID  string `json:"id"`
	now func() time.Time
}

// CaddyModule returns the Caddy module information.
func (clockModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "session_guard.clocks.gatewaytest",
		New: func() caddy.Module { return new(clockModule) },
	}
}

// Provision finds the clock.
func (m *clockModule) Provision(caddy.Context) error {
	v, ok := clocks.Load(m.ID)
	if !ok {
		return fmt.Errorf("no test clock %q", m.ID)
	}
	m.now = v.(func() time.Time)
	return nil
}

// Now implements caddymodule.Clock.
func (m *clockModule) Now() time.Time { return m.now() }

// WithClock returns the Caddy JSON config cfg with its session_guard app
// (added when missing) taking its time from now, until the test ends.
func WithClock(t testing.TB, cfg []byte, now func() time.Time) []byte {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatalf("config: %v", err)
	}
	apps, _ := c["apps"].(map[string]any)
	if apps == nil {
		apps = map[string]any{}
		c["apps"] = apps
	}
	app, _ := apps["session_guard"].(map[string]any)
	if app == nil {
		app = map[string]any{}
		apps["session_guard"] = app
	}
	id := fmt.Sprint(clockID.Add(1))
	clocks.Store(id, now)
	t.Cleanup(func() { clocks.Delete(id) })
	app["clock"] = map[string]any{"source": "gatewaytest", "id": id}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return out
}
