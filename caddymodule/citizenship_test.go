package caddymodule_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestValidateOffline: provisioning never needs the network, so a config
// validates with Redis down (what `caddy validate` does).
func TestValidateOffline(t *testing.T) {
	cfg := gatewaytest.Adapt(t, `{
	session_guard {
		store redis {
			address 127.0.0.1:1
			timeout 50ms
		}
	}
}
:0 {
	session_guard {
		jwt {
			alg HS256
			secret `+secret+`
		}
	}
	reverse_proxy 127.0.0.1:1
}`)
	start := time.Now()
	if err := validate(t, cfg); err != nil {
		t.Fatalf("validate with redis down: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("validate took %s: it touched the network", d)
	}
	// Invalid global options, each with a valid site.
	for _, tc := range []struct{ options, want string }{
		{"default_preset nope", `default preset "nope"`},
		{"bounds idle 1m 1h\n\t\ttouch_interval 1m", "touch_interval"},
		{"store redis {\n\t\t\taddress 127.0.0.1:1\n\t\t\tmaster_name m\n\t\t\tcluster\n\t\t}", "master_name (Sentinel) and cluster"},
		{"bounds idle 10s 1h\n\t\tpreset quick 30s 1h\n\t\ttouch_interval 1s", `preset "quick": idle and absolute must be at least 1m`},
	} {
		cfg := gatewaytest.Adapt(t, `{
	session_guard {
		`+tc.options+`
	}
}
:0 {
	session_guard {
		jwt {
			alg HS256
			secret `+secret+`
		}
	}
}`)
		if err := validate(t, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: validate = %v, want an error about %s", tc.options, err, tc.want)
		}
	}
	weak := gatewaytest.Adapt(t, `:0 {
	session_guard {
		jwt {
			alg none
			secret `+secret+`
		}
	}
}`)
	if err := validate(t, weak); err == nil {
		t.Fatal("alg none accepted")
	}
}

func validate(t *testing.T, raw []byte) error {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

func clientCount(t *testing.T, srv *testredis.Server) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(srv.CLI(t, "CLIENT", "LIST"), "\n") {
		if strings.Contains(line, "name=sessionguard") {
			n++
		}
	}
	return n
}

// TestRedisClientPooledAcrossReloads: one Redis client per connection
// settings, shared by every config; reloads neither leak nor reconnect;
// the last unload closes it.
func TestRedisClientPooledAcrossReloads(t *testing.T) {
	srv := testredis.Start(t)
	// 2s: the subject is pooling, not latency (100ms failed under load)
	globals := "session_guard {\n\t\tstore redis {\n\t\t\taddress " + srv.Addr() + "\n\t\t\ttimeout 2s\n\t\t}\n\t}"
	g := gatewaytest.Start(t, globals, site, t0)
	e := &env{Gateway: g, redis: srv}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
	before := clientCount(t, srv)
	if before < 1 {
		t.Fatalf("no sessionguard client connected")
	}
	for i := 0; i < 20; i++ {
		// a different site config each time forces a real reload
		e.Load(t, globals, strings.Replace(site, "realm", "realm", 1)+"\n# reload "+strings.Repeat("x", i))
		// a reload closes the old server's idle connections; start afresh
		// (reloads under load are the fault suite's subject)
		wantCode(t, e.DoAfterReload(t, "GET", "/", tok), 200)
	}
	// one more connection may be open from a request in flight; a leak
	// per reload would show as 20
	if after := clientCount(t, srv); after > before+1 {
		t.Fatalf("redis clients grew from %d to %d over 20 reloads", before, after)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for clientCount(t, srv) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d redis connections left open after the last config was unloaded", clientCount(t, srv))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMemoryStoreSurvivesReload: the memory store is kept across config
// reloads, so a revocation is not forgotten when the config changes.
func TestMemoryStoreSurvivesReload(t *testing.T) {
	g := gatewaytest.Start(t, "", site, t0)
	e := &env{Gateway: g}
	tok := e.mint(t, devtoken.Claims{Session: "s1"})
	wantCode(t, e.Do(t, "GET", "/", tok, nil), 200)
	wantCode(t, e.Do(t, "POST", "/.session/logout", tok, nil), 200)
	e.Load(t, "session_guard {\n\t\twarn_before 1m\n\t}", site)
	wantCode(t, e.Do(t, "GET", "/", tok, nil), 401)
}

// TestHandlerConfigRejectedByValidate: a handler configuration that is
// wrong in itself fails at load in Validate, with Caddy's "invalid
// configuration" and the option at fault; Provision only acquires.
func TestHandlerConfigRejectedByValidate(t *testing.T) {
	jwt := `"jwt":{"algorithms":["HS256"],"secret":"` + secret + `"}`
	cookie := `"tokens":[{"from":"cookie","name":"sid"}]`
	for _, tc := range []struct{ handler, want string }{
		{``, "jwt: configuration is required"},
		{cookie + `,` + jwt + `,"opaque":{}`, "opaque: jwt and opaque are mutually exclusive"},
		{`"opaque":{}`, "opaque: needs exactly one token source, a cookie"},
		{`"tokens":[{"from":"cookie","name":"a"},{"from":"cookie","name":"b"}],"opaque":{}`, "opaque: needs exactly one token source, a cookie"},
		{cookie + `,"opaque":{"unbound":"maybe"}`, `opaque: unbound "maybe"`},
		{cookie + `,"opaque":{"cookie_path":"app"}`, `opaque: invalid cookie_path "app"`},
		{cookie + `,"opaque":{"cookie_domain":"a;b"}`, `opaque: invalid cookie_path "/" or cookie_domain "a;b"`},
		{jwt + `,"login_url":"ftp://idp"`, `login_url "ftp://idp"`},
	} {
		h := `{"handler":"session_guard"`
		if tc.handler != "" {
			h += "," + tc.handler
		}
		cfg := `{"apps":{"http":{"servers":{"s":{"listen":[":0"],"routes":[{"handle":[` + h + `}]}]}}}}}`
		err := validate(t, []byte(cfg))
		if err == nil || !strings.Contains(err.Error(), "http.handlers.session_guard: invalid configuration: "+tc.want) {
			t.Errorf("%s: load = %v, want an invalid configuration: %s", tc.handler, err, tc.want)
		}
	}
}
