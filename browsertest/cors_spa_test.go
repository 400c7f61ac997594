package browsertest_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/browsertest"
	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// The SPA on its own origin: React (UMD from web/'s pinned npm copy,
// behind an import map) and the package's React hook and toast, talking
// to the gateway on another origin with a bearer token.
const spaIndex = `<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orders</title><link rel="icon" href="data:,">
<script type="importmap">{"imports": {
  "react": "/vendor/react.js", "react-dom/client": "/vendor/react-dom-client.js",
  "@sessionguard/session-expiry": "/session-expiry.js",
  "@sessionguard/session-expiry/react": "/react.js",
  "@sessionguard/session-expiry/toast": "/toast.js"}}</script>
<script src="/vendor/react.umd.js"></script>
<script src="/vendor/react-dom.umd.js"></script>
<script>window.SPA = CONFIG;</script>
<body><div id="root"></div>
<script type="module" src="/app.js"></script>`

const spaApp = `import { createElement as h, useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { useSessionExpiry } from "@sessionguard/session-expiry/react";
import { defineSessionExpiryToast } from "@sessionguard/session-expiry/toast";
defineSessionExpiryToast();
const cfg = window.SPA;
const banners = {idle: "Your session expired.", absolute: "Your session expired.", revoked: "Your account owner ended your session.", signed_out: "You signed out."};
function App() {
  const s = useSessionExpiry({baseURL: cfg.gateway, getToken: () => cfg.token, tickInterval: 200, pollInterval: 500, loginURL: cfg.gateway + "/login"});
  const toast = useRef(null);
  const [data, setData] = useState(null);
  useEffect(() => { if (toast.current) toast.current.tracker = s.tracker; }, [s.tracker]);
  useEffect(() => {
    if (s.tracker) s.tracker.fetch(cfg.gateway + "/api/orders").then((r) => r.json()).then(setData, (e) => setData({error: String(e)}));
  }, [s.tracker]);
  window.spa = s;
  return h("div", null,
    h("session-expiry-toast", {ref: toast}),
    s.warning === "now" ? h("div", {role: "alert", id: "banner"}, banners[s.reason] || "Your session ended.") : null,
    h("main", null,
      h("h1", null, "Orders"),
      h("p", {id: "left"}, s.expiresIn == null ? "Checking your session…" : "Signed in; " + s.expiresIn + " s left (" + s.reason + ")"),
      h("p", {id: "data"}, data ? JSON.stringify(data) : "Loading orders…")));
}
createRoot(document.getElementById("root")).render(h(App));
`

// spaServer serves the SPA; its config names the gateway and the token.
func spaServer(t *testing.T, config *string) *httptest.Server {
	return servePage(t, func() string { return strings.Replace(spaIndex, "CONFIG", *config, 1) }, map[string][]byte{
		"/vendor/react.umd.js":        browsertest.NodeModule(t, "react/umd/react.production.min.js"),
		"/vendor/react-dom.umd.js":    browsertest.NodeModule(t, "react-dom/umd/react-dom.production.min.js"),
		"/vendor/react.js":            []byte("const R = window.React; export const {createElement, useEffect, useMemo, useRef, useState} = R; export default R;"),
		"/vendor/react-dom-client.js": []byte("export const createRoot = window.ReactDOM.createRoot;"),
		"/app.js":                     []byte(spaApp),
	})
}

func TestCrossOriginSPAThroughCORS(t *testing.T) {
	var config string
	spa := spaServer(t, &config)
	site := `{SITE} {
	session_guard {
		jwt {
			alg HS256
			secret ` + spaSecret + `
		}
		cors {
			origins ` + spa.URL + `
		}
	}
	reverse_proxy {UPSTREAM}
}`
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	g := gatewaytest.Start(t, "session_guard {\n\t\tstore memory\n\t\twarn_before 5m\n\t}", site, start)
	tok, err := devtoken.Mint([]byte(spaSecret), devtoken.Claims{Session: "spa-1", User: "alice", Account: "acme", Now: start, TTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{"gateway": g.URL, "token": tok})
	config = string(cfg)

	ctx := browsertest.Start(t, browsertest.Options{Timeout: time.Minute})
	browsertest.Do(t, ctx, "open the SPA", chromedp.Navigate(spa.URL+"/"))
	// the headers of the gateway's answers are read across origins
	browsertest.WaitJS(t, ctx, 10*time.Second, `window.spa && spa.idleExpiresIn === 900 && spa.warning === "none" && /alice/.test(document.getElementById("data").textContent)`,
		`[window.spa, document.body.innerText]`)

	// the kit served by the gateway imports across origins too
	kit := browsertest.Eval[string](t, ctx, `import(window.SPA.gateway + "/.session/kit.js").then((m) => typeof m.createSessionExpiry + "/" + typeof m.defineSessionExpiryToast)`)
	if kit != "function/function" {
		t.Fatalf("kit.js from the gateway: %s", kit)
	}

	// 11 minutes later the status poll says 4 left: the toast appears
	g.Clock.Advance(11 * time.Minute)
	browsertest.WaitJS(t, ctx, 10*time.Second, `spa.warning === "soon" && !document.querySelector("session-expiry-toast").hidden`,
		`[window.spa, document.querySelector("session-expiry-toast").hidden]`)
	browsertest.Screenshot(t, ctx, "spa-toast")
	browsertest.Do(t, ctx, "stay signed in", chromedp.Click(chromedp.JSPath(shadowPrimary)))
	browsertest.WaitJS(t, ctx, 10*time.Second, `spa.warning === "none" && spa.idleExpiresIn === 900 && document.querySelector("session-expiry-toast").hidden`,
		`[window.spa, document.querySelector("session-expiry-toast").hidden]`)

	// past the idle limit the next poll ends it: the banner
	g.Clock.Advance(16 * time.Minute)
	browsertest.WaitJS(t, ctx, 10*time.Second, `spa.warning === "now" && spa.reason === "idle" && document.getElementById("banner")`,
		`[window.spa, document.body.innerText]`)
	browsertest.Screenshot(t, ctx, "spa-expired")
	browsertest.Axe(t, ctx, "the SPA")

	// Every call had a preflight (a bearer token, Session-Passive): the
	// gateway answered them all; only GET /api/orders reached the app.
	if _, hits := g.Upstream.Last(); hits != 1 {
		t.Fatalf("%d requests reached the upstream, want 1 (GET /api/orders): preflights were forwarded", hits)
	}
}

const spaSecret = "0123456789abcdef0123456789abcdef-spa"
