package caddymodule_test

import (
	"bytes"
	"testing"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/web"
)

func TestKitServedWithoutSession(t *testing.T) {
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t}", corsSite, t0)
	r := g.Do(t, "GET", "/.session/kit.js", "", nil, "Origin", appOrigin)
	wantCode(t, r, 200)
	wantCORS(t, r)
	wantHeader(t, r, "Content-Type", "text/javascript; charset=utf-8")
	wantHeader(t, r, "Cache-Control", "public, max-age=3600")
	if !bytes.Equal(r.Body, web.Kit) {
		t.Fatalf("kit.js body differs from web.Kit (%d bytes, want %d)", len(r.Body), len(web.Kit))
	}
	for _, want := range []string{"export function createSessionExpiry", "export class SessionExpiryToast", "export function defineSessionExpiryToast"} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Fatalf("kit.js lacks %q", want)
		}
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	wantCode(t, g.Do(t, "GET", "/.session/kit.js", "", nil, "If-None-Match", etag), 304)
	wantCode(t, g.Do(t, "POST", "/.session/kit.js", "", nil), 405)
	if _, hits := g.Upstream.Last(); hits != 0 {
		t.Fatalf("kit.js requests reached the upstream: %d", hits)
	}
}
