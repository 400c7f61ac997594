package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// With the provider unreachable the config still loads (Provision never
// needs the network), and requests get 503 with Retry-After.
func TestDiscoveryProviderDown(t *testing.T) {
	dead := gatewaytest.FreePorts(t, 1)[0]
	site := fmt.Sprintf(`{SITE} {
	session_guard {
		jwt {
			discovery http://127.0.0.1:%d/realms/main
		}
	}
	reverse_proxy {UPSTREAM}
}`, dead)
	gw := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", site, t0)
	tok, err := devtoken.Mint([]byte(secret), devtoken.Claims{Session: "s1", User: "alice", Account: "acme", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	r := gw.Do(t, http.MethodGet, "/", tok, nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("provider down: status %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
}
