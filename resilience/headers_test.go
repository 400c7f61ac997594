package resilience

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/gatewaytest"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

// identity are the request headers the gateway owns, with the values it
// sets for the session "hdr-1" of mint.
func identity() map[string]string {
	return map[string]string{
		"Session-Id-Hash": session.HashID("hdr-1"),
		"Session-User":    "alice",
		"Session-Account": "acme",
		"Session-Role":    "member",
	}
}

// TestOwnedHeadersCannotBeSmuggled: every header the gateway owns, sent
// by a client in every form (case, '_' for '-', duplicated, named by
// Connection, as a trailer), reaches the upstream only as the gateway's
// own value; every response header it owns, sent by the upstream in
// every form, reaches the client only as the gateway's value.
func TestOwnedHeadersCannotBeSmuggled(t *testing.T) {
	srv := testredis.Start(t)
	g := gatewaytest.Start(t, redisGlobals([]string{srv.Addr()}, "timeout 500ms"), site, t0)
	tok := mint(t, g.Clock.Now(), "hdr-1", "acme", nil)
	owned := append([]string{"Session-Guard-Bind-User", "Session-Guard-Bind-Role"}, keys(identity())...)

	forms := func(name string) map[string][]string {
		under := strings.ReplaceAll(name, "-", "_")
		return map[string][]string{
			"as is":                           {name, "forged"},
			"lower case":                      {strings.ToLower(name), "forged"},
			"upper case":                      {strings.ToUpper(name), "forged"},
			"duplicated":                      {name, "forged", name, "forged-too"},
			"underscore":                      {under, "forged"},
			"Connection":                      {"Connection", "keep-alive, " + name},
			"Connection, underscore and case": {"Connection", strings.ToLower(under) + ", " + name, "Connection", "close, " + strings.ToUpper(name)},
			"Connection and value":            {"Connection", name, name, "forged"},
		}
	}
	for _, name := range owned {
		for form, hdrs := range forms(name) {
			r := g.Do(t, "GET", "/", tok, nil, hdrs...)
			wantCode(t, r, 200)
			checkUpstreamIdentity(t, g, name+" "+form)
		}
	}

	// As trailers of a chunked request body.
	addr := strings.TrimPrefix(g.URL, "http://")
	for _, name := range owned {
		status := chunkedWithTrailer(t, addr, tok, name)
		if status != 200 {
			t.Fatalf("trailer %s: status %d", name, status)
		}
		checkUpstreamIdentity(t, g, name+" trailer")
		for k := range g.Upstream.LastTrailer() {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
				t.Fatalf("trailer %s reached the upstream: %q", k, g.Upstream.LastTrailer())
			}
		}
	}

	// Upstream side: the response headers the gateway owns.
	expiry := []string{"Session-Expires-In", "Session-Idle-Expires-In", "Session-Absolute-Expires-In", "Session-Expiry-Warning", "Session-Expiry-Reason"}
	want := g.Do(t, "GET", "/", tok, nil, "Session-Passive", "1")
	for _, name := range expiry {
		for form, hdr := range map[string]http.Header{
			"as is":                {name: {"99999"}},
			"duplicated":           {name: {"99999", "88888"}},
			"Connection":           {"Connection": {name}},
			"Connection and value": {"Connection": {name + ", keep-alive"}, name: {"99999"}},
		} {
			g.Upstream.SetExtra(hdr)
			r := g.Do(t, "GET", "/", tok, nil, "Session-Passive", "1")
			wantCode(t, r, 200)
			if got := r.Header.Values(name); len(got) != 1 || got[0] != want.Header.Get(name) {
				t.Fatalf("upstream %s %s: client got %q, want %q", name, form, got, want.Header.Get(name))
			}
		}
	}
	g.Upstream.SetExtra(http.Header{})
}

// checkUpstreamIdentity fails unless the last upstream request carried
// exactly the gateway's identity headers and no variant of them.
func checkUpstreamIdentity(t *testing.T, g *gatewaytest.Gateway, what string) {
	t.Helper()
	up, _ := g.Upstream.Last()
	for name, v := range identity() {
		if got := up.Values(name); len(got) != 1 || got[0] != v {
			t.Fatalf("%s: upstream %s = %q, want %q", what, name, got, v)
		}
	}
	for k, v := range up {
		if strings.Contains(k, "_") || strings.HasPrefix(strings.ToLower(k), "session-guard-bind") {
			t.Fatalf("%s: %s %q reached the upstream", what, k, v)
		}
	}
}

// chunkedWithTrailer sends GET / with a chunked body whose trailer is
// name: forged, and returns the status.
func chunkedWithTrailer(t *testing.T, addr, tok, name string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\nTrailer: %s\r\nConnection: close\r\n\r\n"+
		"5\r\nhello\r\n0\r\n%s: forged\r\n\r\n", addr, tok, name, name)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
