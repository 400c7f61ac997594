package caddymodule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// TestPassiveAll: `passive *` makes every request passive, so requests
// are checked but never extend idle.
func TestPassiveAll(t *testing.T) {
	gw := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}",
		strings.Replace(site, "passive /poll*", "passive *", 1), t0)
	e := &env{Gateway: gw}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
	e.Clock.Advance(5 * time.Minute)
	wantHeader(t, e.Do(t, "GET", "/app", tok, nil), "Session-Idle-Expires-In", "600")
	e.Clock.Advance(5 * time.Minute)
	wantHeader(t, e.Do(t, "POST", "/app", tok, nil), "Session-Idle-Expires-In", "300")
	e.Clock.Advance(5 * time.Minute)
	wantCode(t, e.Do(t, "GET", "/", tok, nil), 401)
}
