package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/browsertest"
	"github.com/sessionguard/sessionguard/internal/gatewaytest"
)

// The browser tests drive the demo in a real headless Chromium. The
// gateway runs on an injected clock that follows real time plus an
// offset the test moves forward; the pages re-evaluate every 200ms and
// poll the (passive) status after 500ms without a response, so a jump of
// the gateway clock reaches the page within a second, without waiting
// for the policy's real minutes.

// offsetClock is real time plus an offset.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// The demo's short policy for the browser tests.
const (
	bIdle     = 5 * time.Minute
	bAbsolute = 15 * time.Minute
	bWarn     = 2 * time.Minute
	// wait is how long a page may take to react to a clock jump.
	wait = 10 * time.Second
)

type browserDemo struct {
	*demo
	clock *offsetClock
	ctx   context.Context
}

func startBrowserDemo(t *testing.T, o browsertest.Options) *browserDemo {
	t.Helper()
	clock := new(offsetClock)
	d := startDemo(t, options{
		Idle: bIdle, Absolute: bAbsolute, WarnBefore: bWarn,
		ClientTick: 200 * time.Millisecond, ClientPoll: 500 * time.Millisecond,
		configure: func(cfg []byte) []byte { return gatewaytest.WithClock(t, cfg, clock.Now) },
	})
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	return &browserDemo{demo: d, clock: clock, ctx: browsertest.Start(t, o)}
}

// demoSite is one of the demo's two apps as the browser sees it.
type demoSite struct {
	name string
	// cookie is the app's session cookie.
	cookie string
	// opaque: the site runs session_guard in opaque mode, which expires
	// the cookie of an ended session.
	opaque bool
	// url is the site's base URL.
	url func(*demo) string
}

// demoSites are the JWT app and the cookie app, each behind its site of
// the gateway.
var demoSites = []demoSite{
	{name: "jwt", cookie: cookieName, url: func(d *demo) string { return d.GatewayURL }},
	{name: "cookie", cookie: appCookieName, opaque: true, url: func(d *demo) string { return d.CookieGatewayURL }},
}

// browserCookie reports whether the browser holds the cookie name for
// base. The demo's cookies are HttpOnly, so it asks the browser itself.
func browserCookie(t *testing.T, ctx context.Context, base, name string) bool {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return true
		}
	}
	return false
}

// signIn signs in through the login form at base and waits until the
// page's tracker knows the deadlines.
func (b *browserDemo) signIn(t *testing.T, ctx context.Context, base, user, role string) {
	t.Helper()
	browsertest.Do(t, ctx, "sign in",
		chromedp.Navigate(base+"/login"),
		chromedp.SetValue(chromedp.CSS(`input[name=user]`), user),
		chromedp.SetValue(chromedp.CSS(`select[name=role]`), role),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
	)
	browsertest.WaitJS(t, ctx, wait,
		`location.pathname === "/" && window.sessionExpiry && sessionExpiry.state.idleExpiresIn > 0`,
		`[location.href, window.sessionExpiry && sessionExpiry.state]`)
}

// statusHeader reads a header of GET /.session/status from the page
// (passive, so reading it changes nothing).
func statusHeader(t *testing.T, ctx context.Context, name string) int {
	t.Helper()
	v := browsertest.Eval[string](t, ctx, `fetch("/.session/status", {cache: "no-store"}).then(r => r.headers.get(`+strconv.Quote(name)+`) || "")`)
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, v, err)
	}
	return n
}

const toastVisible = `!document.getElementById("toast").hidden`

// TestBrowserIdleToast runs the idle toast against both apps: the JWT
// app and the cookie app, which knows nothing about JWTs and binds its
// own session cookie. "Stay signed in" extends the session; silence
// past the idle limit ends it, and the page goes to the login page with
// the reason.
func TestBrowserIdleToast(t *testing.T) {
	for _, site := range demoSites {
		t.Run(site.name, func(t *testing.T) { testBrowserIdleToast(t, site) })
	}
}

func testBrowserIdleToast(t *testing.T, site demoSite) {
	b := startBrowserDemo(t, browsertest.Options{})
	ctx := b.ctx
	base := site.url(b.demo)
	b.signIn(t, ctx, base, "alice", "member")
	if browsertest.Eval[bool](t, ctx, toastVisible) {
		t.Fatal("toast visible right after sign-in")
	}
	if !browserCookie(t, ctx, base, site.cookie) {
		t.Fatalf("no %s cookie after sign-in", site.cookie)
	}
	if got := browsertest.Eval[string](t, ctx, `document.querySelector("h1").textContent`); got != "Hello, alice" {
		t.Fatalf("home page heading %q, want Hello, alice", got)
	}

	// 3m30s of silence: 90s of idle left, inside the 2m warning window.
	b.clock.Advance(bIdle - 90*time.Second)
	browsertest.WaitJS(t, ctx, wait, toastVisible, `sessionExpiry.state`)
	got := browsertest.Eval[map[string]any](t, ctx, `({
		cls: document.getElementById("toast").className,
		reason: document.getElementById("toast").dataset.reason,
		text: document.getElementById("toast-text").textContent,
		stay: !document.getElementById("toast-stay").hidden,
		signin: !document.getElementById("toast-signin").hidden,
	})`)
	if got["cls"] != "toast toast-idle" || got["reason"] != "idle" || got["stay"] != true || got["signin"] != false {
		t.Fatalf("idle toast = %v, want amber idle toast with only Stay signed in", got)
	}
	if !strings.Contains(got["text"].(string), "inactive") {
		t.Errorf("idle toast text = %q", got["text"])
	}
	if site.name == "jwt" {
		browsertest.Screenshot(t, ctx, "toast-idle")
	}
	if n := statusHeader(t, ctx, "Session-Idle-Expires-In"); n > 91 {
		t.Fatalf("before keepalive Session-Idle-Expires-In = %d, want <= 90", n)
	}

	// "Stay signed in" extends the idle window back to the full 5m.
	browsertest.Do(t, ctx, "stay signed in", chromedp.Click(chromedp.ID("toast-stay")))
	browsertest.WaitJS(t, ctx, wait, `!(`+toastVisible+`) && sessionExpiry.state.idleExpiresIn > 280`, `sessionExpiry.state`)
	if n := statusHeader(t, ctx, "Session-Idle-Expires-In"); n < int(bIdle/time.Second)-5 {
		t.Fatalf("after Stay signed in Session-Idle-Expires-In = %d, want about %d", n, int(bIdle/time.Second))
	}
	if w := browsertest.Eval[string](t, ctx, `fetch("/.session/status").then(r => r.headers.get("Session-Expiry-Warning"))`); w != "none" {
		t.Errorf("after Stay signed in Session-Expiry-Warning = %q, want none", w)
	}

	// Silence past the (extended) idle limit: the page's status poll
	// gets the 401 and the page goes to the login page with the reason.
	b.clock.Advance(bIdle + time.Second)
	browsertest.WaitJS(t, ctx, wait,
		`location.pathname === "/login" && location.search === "?reason=session_expired&return_to=%2F" && (document.querySelector(".banner-expired") || {}).textContent === "Your session expired — please sign in again."`,
		`[location.href, document.body && document.body.innerText]`)
	// In opaque mode the gateway expired the app's cookie in that 401: the
	// browser no longer has it, and "/" reaches the app as a stranger,
	// which sends it to its login page. The JWT app's cookie stays until
	// the app clears it; the gateway redirects it with the reason.
	if got := browserCookie(t, ctx, base, site.cookie); got == site.opaque {
		t.Errorf("after expiry the browser has the %s cookie: %v, want %v", site.cookie, got, !site.opaque)
	}
	want := "?reason=session_expired&reauth=1"
	if site.opaque {
		want = ""
	}
	browsertest.Do(t, ctx, "open / again", chromedp.Navigate(base+"/"))
	if loc := browsertest.Eval[string](t, ctx, `location.pathname + location.search`); loc != "/login"+want {
		t.Errorf("after expiry, / shows %s, want /login%s", loc, want)
	}
}

func TestBrowserDismissSyncsTabsAndDoesNotRefire(t *testing.T) {
	b := startBrowserDemo(t, browsertest.Options{})
	tab1 := b.ctx
	b.signIn(t, tab1, b.GatewayURL, "alice", "member")
	tab2, cancel := chromedp.NewContext(tab1)
	defer cancel()
	browsertest.Do(t, tab2, "second tab", chromedp.Navigate(b.GatewayURL+"/"))
	browsertest.WaitJS(t, tab2, wait, `window.sessionExpiry && sessionExpiry.state.idleExpiresIn > 0`, `location.href`)

	b.clock.Advance(bIdle - 90*time.Second)
	browsertest.WaitJS(t, tab1, wait, toastVisible, `sessionExpiry.state`)
	browsertest.WaitJS(t, tab2, wait, toastVisible, `sessionExpiry.state`)

	browsertest.Do(t, tab1, "dismiss", chromedp.Click(chromedp.ID("toast-dismiss")))
	browsertest.WaitJS(t, tab1, wait, `!(`+toastVisible+`)`, `sessionExpiry.state`)
	// the other tab hears of it over the BroadcastChannel
	browsertest.WaitJS(t, tab2, wait, `!(`+toastVisible+`) && sessionExpiry.state.dismissed`, `sessionExpiry.state`)

	// several polls and re-evaluations later it is still dismissed (a
	// tab that hears of another tab's poll does not poll itself)
	polls := func() int {
		return browsertest.Eval[int](t, tab1, `sessionExpiry.state.polls`) + browsertest.Eval[int](t, tab2, `sessionExpiry.state.polls`)
	}
	for p0, deadline := polls(), time.Now().Add(wait); polls() < p0+3; {
		if time.Now().After(deadline) {
			t.Fatalf("the tabs made fewer than 3 status polls in %s", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, tab := range []context.Context{tab1, tab2} {
		st := browsertest.Eval[map[string]any](t, tab, `({visible: `+toastVisible+`, state: sessionExpiry.state.state})`)
		if st["visible"] != false || st["state"] != "soon" {
			t.Errorf("tab %d after dismissal: %v, want state soon with the toast hidden", i+1, st)
		}
	}
}

func TestBrowserAbsoluteToastOffersOnlySignIn(t *testing.T) {
	b := startBrowserDemo(t, browsertest.Options{})
	ctx := b.ctx
	b.signIn(t, ctx, b.GatewayURL, "alice", "member")
	// Stay active for 12 minutes: activity never extends the absolute limit.
	for range 3 {
		b.clock.Advance(4 * time.Minute)
		browsertest.Eval[int](t, ctx, `sessionExpiry.keepalive().then(r => r.status)`)
	}
	// 13m30s after sign-in: 90s to the absolute limit, 3m30s of idle.
	b.clock.Advance(90 * time.Second)
	browsertest.WaitJS(t, ctx, wait, toastVisible+` && sessionExpiry.state.reason === "absolute"`, `sessionExpiry.state`)
	got := browsertest.Eval[map[string]any](t, ctx, `({
		cls: document.getElementById("toast").className,
		stay: !document.getElementById("toast-stay").hidden,
		signin: !document.getElementById("toast-signin").hidden,
		href: document.getElementById("toast-signin").getAttribute("href"),
	})`)
	if got["cls"] != "toast toast-absolute" || got["stay"] != false || got["signin"] != true || got["href"] != "/login?return_to=%2F" {
		t.Fatalf("absolute toast = %v, want the info toast with only Sign in now", got)
	}
	if n := statusHeader(t, ctx, "Session-Absolute-Expires-In"); n > 91 || n < 80 {
		t.Errorf("Session-Absolute-Expires-In = %d, want about 90", n)
	}
	browsertest.Screenshot(t, ctx, "toast-absolute")
}

func TestBrowserPollingIsPassiveAndExpiryRedirects(t *testing.T) {
	b := startBrowserDemo(t, browsertest.Options{})
	ctx := b.ctx
	b.signIn(t, ctx, b.GatewayURL, "alice", "member")
	browsertest.Do(t, ctx, "open a page with a query", chromedp.Navigate(b.GatewayURL+"/?tab=2"))
	browsertest.WaitJS(t, ctx, wait, `window.sessionExpiry && sessionExpiry.state.idleExpiresIn > 0`, `sessionExpiry.state`)

	b.clock.Advance(2 * time.Minute)
	polls := browsertest.Eval[int](t, ctx, `sessionExpiry.state.polls`)
	browsertest.WaitJS(t, ctx, wait, `sessionExpiry.state.polls >= `+strconv.Itoa(polls+4), `sessionExpiry.state`)
	// four status polls did not move the idle deadline
	if n := statusHeader(t, ctx, "Session-Idle-Expires-In"); n > 181 {
		t.Fatalf("after polling, Session-Idle-Expires-In = %d, want <= 180: polling extended the session", n)
	}

	// The idle limit passes; the next poll gets 401 and the page goes to
	// the login page with the banner.
	b.clock.Advance(3*time.Minute + time.Second)
	browsertest.WaitJS(t, ctx, wait,
		`location.pathname === "/login" && location.search === "?reason=session_expired&return_to=%2F%3Ftab%3D2" && (document.querySelector(".banner-expired") || {}).textContent === "Your session expired — please sign in again."`,
		`[location.href, document.body && document.body.innerText]`)
	// signing in again returns to the page the session ended on
	browsertest.Do(t, ctx, "sign in again", chromedp.Click(chromedp.CSS(`button[type=submit]`)))
	browsertest.WaitJS(t, ctx, wait, `location.pathname + location.search === "/?tab=2"`, `location.href`)
}

// TestSecurityPageOwnersOnly needs no browser: the page refuses other
// roles (the gateway's owner endpoints refuse them too).
func TestSecurityPageOwnersOnly(t *testing.T) {
	d := startDemo(t, options{})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.PostForm(d.GatewayURL+"/login", url.Values{"user": {"bob"}, "account": {"acme"}, "role": {"member"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, body := get(t, c, d.GatewayURL+"/security", map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Only the account's owners") {
		t.Errorf("member GET /security: %d, want 403 with an explanation:\n%s", resp.StatusCode, body)
	}
	resp, body = get(t, c, d.GatewayURL+"/.session/account", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("member GET /.session/account: %d, want 403: %s", resp.StatusCode, body)
	}
	// the kit is public: the login page may load it before any session
	resp, body = get(t, noRedirect(nil), d.GatewayURL+"/assets/session-expiry.js", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "export function createSessionExpiry") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("GET /assets/session-expiry.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestBrowserSecurityPage(t *testing.T) {
	b := startBrowserDemo(t, browsertest.Options{Width: 1000, Height: 1000})
	ctx := b.ctx
	b.signIn(t, ctx, b.GatewayURL, "alice", "owner")

	openSecurity := func() {
		browsertest.Do(t, ctx, "open /security", chromedp.Navigate(b.GatewayURL+"/security"))
		browsertest.WaitJS(t, ctx, wait, `document.querySelectorAll("#users tbody tr").length > 0`, `document.body.innerText`)
	}
	openSecurity()
	// a new account is on the default, and says so in hours and minutes
	if got := browsertest.Eval[string](t, ctx, `document.getElementById("policy").preset.value + " | " + document.getElementById("policy-now").textContent`); got !=
		"default | Now: people are signed out after 5 minutes without activity, and 15 minutes after signing in at most (the default). Changes apply from each person's next sign-in." {
		t.Errorf("policy on the default: %q", got)
	}
	if !browsertest.Eval[bool](t, ctx, `document.getElementById("revoke-others").hidden`) {
		t.Error(`"Sign out all other sessions" shown with only one session`)
	}

	// A second user of the account signs in elsewhere.
	jar, _ := cookiejar.New(nil)
	other := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	bobSignIn := func() {
		resp, err := other.PostForm(b.GatewayURL+"/login", url.Values{"user": {"bob"}, "account": {"acme"}, "role": {"member"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("bob's sign-in: %d", resp.StatusCode)
		}
	}
	bobStatus := func() int {
		resp, err := other.Get(b.GatewayURL + "/api/data")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bobSignIn()

	// "Sign out all other sessions" ends bob's session, not alice's.
	openSecurity()
	browsertest.Do(t, ctx, "revoke others", chromedp.Click(chromedp.ID("revoke-others")))
	browsertest.WaitJS(t, ctx, wait, `document.getElementById("confirm").open && document.getElementById("confirm-title").textContent === "Sign out all other sessions?"`, `document.body.innerText`)
	browsertest.Do(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	browsertest.WaitJS(t, ctx, wait,
		`document.getElementById("revoke-msg").textContent === "Signed out 1 other session." && document.getElementById("revoke-others").hidden && document.querySelectorAll("#users tbody tr").length === 1`,
		`document.body.innerText`)
	if code := bobStatus(); code != http.StatusUnauthorized {
		t.Fatalf("bob after revoke others: %d, want 401", code)
	}
	bobSignIn()

	openSecurity()
	rows := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll("#users tbody tr")].map(r => r.cells[0].textContent)`)
	if len(rows) != 2 || strings.HasSuffix(rows[0], "(you)") == strings.HasSuffix(rows[1], "(you)") {
		t.Errorf("active users = %q, want bob and alice with alice marked (you)", rows)
	}
	var you string
	for _, r := range rows {
		if strings.HasSuffix(r, "(you)") {
			you = r
		}
	}
	if !strings.HasPrefix(you, "alice") {
		t.Errorf("(you) is on %q, want alice", you)
	}
	if browsertest.Eval[bool](t, ctx, `document.getElementById("revoke-others").hidden`) {
		t.Error(`"Sign out all other sessions" hidden with two sessions`)
	}

	// Custom policy with idle above absolute: the gateway's 422 fields
	// show next to the inputs.
	browsertest.Do(t, ctx, "custom policy",
		chromedp.Click(chromedp.CSS(`input[name=preset][value=custom]`)),
		chromedp.SetValue(chromedp.ID("idle"), "600"),
		chromedp.SetValue(chromedp.ID("idle-unit"), "1"),
		chromedp.SetValue(chromedp.ID("absolute"), "60"),
		chromedp.SetValue(chromedp.ID("absolute-unit"), "1"),
		chromedp.Click(chromedp.ID("save")),
	)
	browsertest.WaitJS(t, ctx, wait, `document.getElementById("err-idle_minutes").textContent !== "" || document.getElementById("err-absolute_minutes").textContent !== ""`, `document.getElementById("policy").innerText`)
	browsertest.Screenshot(t, ctx, "security")

	// Strict is accepted.
	browsertest.Do(t, ctx, "strict policy",
		chromedp.Click(chromedp.CSS(`input[name=preset][value=strict]`)),
		chromedp.Click(chromedp.ID("save")),
	)
	browsertest.WaitJS(t, ctx, wait, `document.getElementById("saved").textContent === "Saved." && document.getElementById("policy-now").textContent.includes("after 15 minutes without activity, and 12 hours after signing in")`, `document.getElementById("policy").innerText`)

	// One user: a modal naming bob, then bob alone is signed out.
	browsertest.Do(t, ctx, "sign bob out", chromedp.Click(chromedp.CSS(`#users tbody tr:not(.you) button.revoke-user`)))
	browsertest.WaitJS(t, ctx, wait, `document.getElementById("confirm").open && document.getElementById("confirm-title").textContent === "Sign out bob?"`, `document.body.innerText`)
	browsertest.Do(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	browsertest.WaitJS(t, ctx, wait,
		`document.getElementById("revoke-msg").textContent === "Signed out bob (1 session)." && document.querySelectorAll("#users tbody tr").length === 1`,
		`document.body.innerText`)
	if code := bobStatus(); code != http.StatusUnauthorized {
		t.Fatalf("bob after his sign-out by the owner: %d, want 401", code)
	}

	// Sign everyone out, the owner included: a modal of its own, then
	// the signed-out banner, not the one of a revocation by the owner.
	browsertest.Do(t, ctx, "revoke all", chromedp.Click(chromedp.ID("revoke-all")))
	browsertest.WaitJS(t, ctx, wait, `document.getElementById("confirm").open && document.getElementById("confirm-ok").textContent === "Sign out everyone"`, `document.body.innerText`)
	browsertest.Screenshot(t, ctx, "security-confirm")
	browsertest.Do(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	browsertest.WaitJS(t, ctx, wait,
		`location.pathname === "/login" && (document.querySelector(".banner-signed-out") || {}).textContent === "You signed out everyone on the account, including yourself."`,
		`[location.href, document.body && document.body.innerText]`)
	// the owner's cookie is gone or dead: the app is out of reach
	browsertest.Do(t, ctx, "open / again", chromedp.Navigate(b.GatewayURL+"/"))
	if loc := browsertest.Eval[string](t, ctx, `location.pathname`); loc != "/login" {
		t.Errorf("after revoke all, / shows %s, want the login page", loc)
	}
	// and bob is out too
	if code := bobStatus(); code != http.StatusUnauthorized {
		t.Errorf("bob after revoke all: %d, want 401", code)
	}
}
