package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/browsertest"
	"github.com/sessionguard/sessionguard/web"
)

// These tests run web/session-expiry.js in Chromium against a fake fetch
// and a fake monotonic clock, so every transition is checked without
// waiting. The demo's tests (cmd/demo) drive it against the real gateway.

const harness = `<!doctype html><meta charset="utf-8"><title>session-expiry harness</title>
<script type="module">
import { createSessionExpiry } from "/session-expiry.js";
window.createSessionExpiry = createSessionExpiry;
// fake: a settable clock, a scripted fetch that records its calls
window.t = 0;
window.now = () => window.t;
window.calls = [];
window.reply = () => new Response("{}", {status: 200});
window.fakeFetch = async (url, init = {}) => {
  calls.push({url: String(url), method: init.method || "GET", headers: init.headers || {}});
  return reply(url, init);
};
window.res = (status, headers, body) => new Response(body === undefined ? null : JSON.stringify(body), {status, headers});
window.fresh = (o = {}) => createSessionExpiry({now, fetch: fakeFetch, autoStart: false, channel: "", ...o});
window.ready = true;
</script>`

// servePage serves the page html() at /, the files of extra by path,
// and the package's modules by name.
func servePage(t *testing.T, html func() string, extra map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(html()))
			return
		}
		b, ok := extra[r.URL.Path]
		if !ok {
			var err error
			b, err = web.FS.ReadFile(strings.TrimPrefix(r.URL.Path, "/"))
			ok = err == nil && strings.HasSuffix(r.URL.Path, ".js")
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// page is a constant page for servePage.
func page(html string) func() string { return func() string { return html } }

func TestSessionExpiryModule(t *testing.T) {
	srv := servePage(t, page(harness), nil)
	ctx := browsertest.Start(t, browsertest.Options{})

	run := func(t *testing.T, script string) map[string]any {
		t.Helper()
		browsertest.Do(t, ctx, "load harness", chromedp.Navigate(srv.URL+"/"))
		browsertest.WaitJS(t, ctx, 5*time.Second, `window.ready`, `document.readyState`)
		return browsertest.Eval[map[string]any](t, ctx, "(async () => {"+script+"})()")
	}
	check := func(t *testing.T, got map[string]any, key string, want any) {
		t.Helper()
		if got[key] != want {
			t.Errorf("%s = %v (%T), want %v; all: %v", key, got[key], got[key], want, got)
		}
	}

	t.Run("deadlines from headers", func(t *testing.T) {
		got := run(t, `
const se = fresh();
const out = {initial: se.state.state};
se.observe(new Headers({"Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600", "Session-Expiry-Warning": "none"}));
out.none = se.state.state; out.idle = se.state.idleExpiresIn; out.abs = se.state.absoluteExpiresIn;
t += 301000; // 299 s of idle left: inside the default 300 s window
out.soon = se.state.state; out.soonReason = se.state.reason; out.left = se.state.expiresIn;
t += 300000;
out.over = se.state.state;
return out;`)
		check(t, got, "initial", "none")
		check(t, got, "none", "none")
		check(t, got, "idle", float64(600))
		check(t, got, "abs", float64(3600))
		check(t, got, "soon", "soon")
		check(t, got, "soonReason", "idle")
		check(t, got, "left", float64(299))
		check(t, got, "over", "now")
	})

	t.Run("absolute is the closer limit", func(t *testing.T) {
		got := run(t, `
const se = fresh({warnBefore: 60});
se.observe({"Session-Idle-Expires-In": "300", "Session-Absolute-Expires-In": "100"});
const out = {state: se.state.state, reason: se.state.reason};
t += 50000;
out.later = se.state.state; out.laterReason = se.state.reason;
return out;`)
		check(t, got, "state", "none")
		check(t, got, "reason", "absolute")
		check(t, got, "later", "soon")
		check(t, got, "laterReason", "absolute")
	})

	t.Run("a wrong wall clock does not matter", func(t *testing.T) {
		got := run(t, `
Date.now = () => 0; // 1970
const se = createSessionExpiry({fetch: fakeFetch, autoStart: false, channel: ""});
se.observe({"Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600"});
return {state: se.state.state, idle: se.state.idleExpiresIn};`)
		check(t, got, "state", "none")
		check(t, got, "idle", float64(600))
	})

	t.Run("status poll is passive and reads warn_before", func(t *testing.T) {
		got := run(t, `
const se = fresh();
reply = () => res(200, {"Session-Idle-Expires-In": "100", "Session-Absolute-Expires-In": "1000", "Content-Type": "application/json"}, {warn_before: 60});
await se.poll();
const out = {url: calls[0].url, method: calls[0].method, passive: calls[0].headers["Session-Passive"], polls: se.state.polls,
  warn: se.state.warnBefore, state: se.state.state};
t += 41000;
out.later = se.state.state;
return out;`)
		check(t, got, "url", "/.session/status")
		check(t, got, "method", "GET")
		check(t, got, "passive", "1")
		check(t, got, "polls", float64(1))
		check(t, got, "warn", float64(60))
		check(t, got, "state", "none")
		check(t, got, "later", "soon")
	})

	t.Run("expired and revoked sessions", func(t *testing.T) {
		got := run(t, `
const se = fresh();
se.observe({"Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600"});
// the app's own 401 on a live session is not the end of the session
se.observe(res(401, {"Session-Idle-Expires-In": "599", "Session-Absolute-Expires-In": "3599", "Session-Expiry-Warning": "none", "Session-Expiry-Reason": "idle"}));
const out = {appError: se.state.state};
reply = () => res(401, {"Session-Expiry-Warning": "now", "Session-Expiry-Reason": "absolute", "WWW-Authenticate": 'Bearer error="invalid_token"'}, {error: "session_expired", reason: "absolute"});
await se.poll();
out.state = se.state.state; out.reason = se.state.reason;
const se2 = fresh();
se2.observe(res(401, {"Session-Expiry-Warning": "now", "Session-Expiry-Reason": "revoked"}));
out.revoked = se2.state.reason;
const se3 = fresh();
se3.observe(res(401, {"WWW-Authenticate": 'Bearer realm="app"'}));
out.noToken = se3.state.state + "/" + se3.state.reason;
return out;`)
		check(t, got, "appError", "none")
		check(t, got, "state", "now")
		check(t, got, "reason", "absolute")
		check(t, got, "revoked", "revoked")
		check(t, got, "noToken", "now/signed_out")
	})

	t.Run("dismiss holds until keepalive", func(t *testing.T) {
		got := run(t, `
const se = fresh({warnBefore: 120});
const seen = [];
se.subscribe((s) => {
  const v = s.state + (s.dismissed ? "-dismissed" : "");
  if (seen[seen.length - 1] !== v) seen.push(v);
});
se.observe({"Session-Idle-Expires-In": "100", "Session-Absolute-Expires-In": "3600"});
se.dismiss();
const out = {dismissed: se.state.dismissed};
// a later response with a slightly different deadline does not re-fire
se.observe({"Session-Idle-Expires-In": "90", "Session-Absolute-Expires-In": "3590"});
out.still = se.state.dismissed;
reply = () => res(200, {"Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3580"});
await se.keepalive();
out.keepalive = calls[calls.length - 1].method + " " + calls[calls.length - 1].url;
out.after = se.state.state;
t += 500000; // a new warning later is a new warning
out.next = se.state.state + (se.state.dismissed ? "-dismissed" : "");
out.seen = seen.join(",");
return out;`)
		check(t, got, "dismissed", true)
		check(t, got, "still", true)
		check(t, got, "keepalive", "POST /.session/keepalive")
		check(t, got, "after", "none")
		check(t, got, "next", "soon")
		check(t, got, "seen", "none,soon,soon-dismissed,none")
	})

	t.Run("fetch wrapper observes", func(t *testing.T) {
		got := run(t, `
const se = fresh();
reply = () => res(200, {"Session-Idle-Expires-In": "42", "Session-Absolute-Expires-In": "4200"});
const r = await se.fetch("/api/data");
return {status: r.status, idle: se.state.idleExpiresIn, url: calls[0].url};`)
		check(t, got, "status", float64(200))
		check(t, got, "idle", float64(42))
		check(t, got, "url", "/api/data")
	})

	t.Run("tabs share deadlines and dismissals", func(t *testing.T) {
		got := run(t, `
const a = fresh({channel: "test-sync", warnBefore: 120});
const b = fresh({channel: "test-sync", warnBefore: 120});
const settle = () => new Promise((r) => setTimeout(r, 50));
a.observe({"Session-Idle-Expires-In": "100", "Session-Absolute-Expires-In": "3600"});
await settle();
const out = {bState: b.state.state, bIdle: b.state.idleExpiresIn};
b.dismiss();
await settle();
out.aDismissed = a.state.dismissed;
a.observe(res(401, {"Session-Expiry-Warning": "now", "Session-Expiry-Reason": "revoked"}));
await settle();
out.bEnded = b.state.state + "/" + b.state.reason;
a.close(); b.close();
return out;`)
		check(t, got, "bState", "soon")
		check(t, got, "bIdle", float64(100))
		check(t, got, "aDismissed", true)
		check(t, got, "bEnded", "now/revoked")
	})

	t.Run("a tab that becomes visible polls", func(t *testing.T) {
		got := run(t, `
reply = () => res(200, {"Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600"});
const se = createSessionExpiry({now, fetch: fakeFetch, channel: "", tickInterval: 1e9, pollInterval: 1e9});
await se.poll(); // the start-up poll, shared
const before = calls.length;
const settle = () => new Promise((r) => setTimeout(r, 30));
document.dispatchEvent(new Event("visibilitychange"));
await settle();
const after = calls.length;
se.stop();
document.dispatchEvent(new Event("visibilitychange"));
await settle();
return {before, after, stopped: calls.length, visible: document.visibilityState};`)
		check(t, got, "visible", "visible")
		check(t, got, "before", float64(1))
		check(t, got, "after", float64(2))
		check(t, got, "stopped", float64(2))
	})

	t.Run("timer re-evaluates and polls a quiet page", func(t *testing.T) {
		got := run(t, `
reply = () => res(200, {"Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600"});
const se = createSessionExpiry({fetch: fakeFetch, channel: "", tickInterval: 20, pollInterval: 50});
await new Promise((r) => setTimeout(r, 400));
se.stop();
const n = calls.length;
await new Promise((r) => setTimeout(r, 100));
return {polls: n, stopped: calls.length === n, allStatus: calls.every((c) => c.url === "/.session/status")};`)
		if p, _ := got["polls"].(float64); p < 3 || p > 12 {
			t.Errorf("polls in 400ms with a 50ms poll interval = %v, want 3..12", got["polls"])
		}
		check(t, got, "stopped", true)
		check(t, got, "allStatus", true)
	})
}
