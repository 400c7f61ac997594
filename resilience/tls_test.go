package resilience

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// TestRedisTLS runs the gateway on a TLS-only redis-server (throwaway
// CA): sessions and revocation work over TLS with `tls_ca_file`, also
// with `tls_server_name`; a certificate that does not verify (another
// CA, the system roots, a wrong name) or plain TCP fails closed: 503 with
// Retry-After for a live and for a revoked session, never 200 or 401.
// Going back to the right CA recovers.
func TestRedisTLS(t *testing.T) {
	srv := testredis.StartTLS(t)
	ca := srv.TLS().CAFile
	good := redisGlobals([]string{srv.Addr()}, "tls_ca_file "+ca, "timeout 500ms")
	g := gatewaytest.Start(t, good, site, t0)

	live := mint(t, t0, "tls-live", "tls-acct", nil)
	wantCode(t, g.Do(t, "GET", "/", live, nil), 200)
	revoked := mint(t, t0, "tls-revoked", "tls-victim", nil)
	wantCode(t, g.Do(t, "GET", "/", revoked, nil), 200)
	wantCode(t, g.AdminDo(t, "POST", "/session_guard/accounts/tls-victim/revoke", []byte(`{"scope":"all"}`)), 200)
	wantError(t, g.Do(t, "GET", "/", revoked, nil), 401, "session_revoked")
	wantCode(t, g.Do(t, "GET", "/", live, nil), 200)
	// The state is in the TLS server, written by the gateway's client.
	if n := srv.CLI(t, "DBSIZE"); n == "0" {
		t.Fatal("no key in the TLS redis-server")
	}
	if !strings.Contains(srv.CLI(t, "CLIENT", "LIST"), "name=sessionguard") {
		t.Fatal("no sessionguard connection on the TLS redis-server")
	}

	// Each config marks its responses, so that an answer of the old
	// config (a keep-alive connection it still serves during the
	// reload) is not taken for one of the new config.
	gen := 0
	load := func(globals string) {
		t.Helper()
		gen++
		g.Load(t, globals, strings.Replace(site, "session_guard {", fmt.Sprintf("header X-Config-Gen %d\n\tsession_guard {", gen), 1))
	}
	do := func(tok string) *gatewaytest.Response {
		t.Helper()
		want := fmt.Sprint(gen)
		for i := 0; ; i++ {
			r := g.DoAfterReload(t, "GET", "/", tok)
			if got := r.Header.Get("X-Config-Gen"); got == want {
				return r
			} else if i == 50 {
				t.Fatalf("still answered by config %q, want %s", got, want)
			}
			g.Client.CloseIdleConnections()
			time.Sleep(20 * time.Millisecond)
		}
	}
	failClosed := func(name, globals string) {
		t.Helper()
		load(globals)
		for i := 0; i < 3; i++ {
			for _, tok := range []string{live, revoked} {
				r := do(tok)
				if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
					t.Fatalf("%s: status %d (Retry-After %q), want 503 with Retry-After; body %s",
						name, r.StatusCode, r.Header.Get("Retry-After"), r.Body)
				}
			}
		}
	}
	failClosed("another CA", redisGlobals([]string{srv.Addr()}, "tls_ca_file "+testredis.NewTLSCerts(t).CAFile, "timeout 150ms"))
	failClosed("system roots", redisGlobals([]string{srv.Addr()}, "tls", "timeout 150ms"))
	failClosed("wrong server name", redisGlobals([]string{srv.Addr()}, "tls_ca_file "+ca, "tls_server_name wrong.example", "timeout 150ms"))
	failClosed("plain TCP", redisGlobals([]string{srv.Addr()}, "timeout 150ms"))

	// A CA file that cannot be used is a config error: the load fails
	// (and the running config stays).
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(t.TempDir(), "missing.pem"), notPEM} {
		err := g.TryLoad(t, redisGlobals([]string{srv.Addr()}, "tls_ca_file "+f), site)
		if err == nil || !strings.Contains(err.Error(), "tls_ca_file") {
			t.Fatalf("loading with tls_ca_file %s: err = %v, want a tls_ca_file error", f, err)
		}
	}

	// The right name, checked instead of the address's IP.
	load(redisGlobals([]string{srv.Addr()}, "tls_ca_file "+ca, "tls_server_name "+testredis.TLSServerName, "timeout 500ms"))
	wantCode(t, do(live), 200)
	wantError(t, do(revoked), 401, "session_revoked")

	load(good)
	wantCode(t, do(live), 200)
	wantError(t, do(revoked), 401, "session_revoked")
}
