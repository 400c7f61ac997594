package browsertest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sessionguard/sessionguard/browsertest"
)

// toastPage is a page with the toast above its content, driven by a fake
// tracker whose state the test sets.
const toastPage = `<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orders</title><link rel="icon" href="data:,">
<body style="margin:0;font-family:sans-serif">
<session-expiry-toast></session-expiry-toast>
<main style="padding:1rem"><h1>Orders</h1><p>Three open orders.</p>
<button id="save" style="position:relative">Save order</button>
<div style="position:fixed;left:0;right:0;bottom:0;padding:.5rem;background:#eee"><button id="checkout">Check out</button></div>
</main>
<script type="module">
import { defineSessionExpiryToast } from "/toast.js";
defineSessionExpiryToast();
window.fake = {
  s: {state: "none", reason: null, expiresIn: null, dismissed: false},
  subs: new Set(), kept: 0, signIn: 0,
  subscribe(fn) { this.subs.add(fn); fn(this.s); return () => this.subs.delete(fn); },
  get state() { return this.s; },
  set(p) { this.s = {...this.s, ...p}; for (const f of this.subs) f(this.s); },
  dismiss() { this.set({dismissed: true}); },
  async keepalive() { this.kept++; this.set({state: "none", expiresIn: 900}); },
  signInNow() { this.signIn++; },
};
window.toast = document.querySelector("session-expiry-toast");
toast.tracker = fake;
window.announced = [];
new MutationObserver(() => announced.push(toast.shadowRoot.querySelector("[role=status]").textContent))
  .observe(toast.shadowRoot.querySelector("[role=status]"), {childList: true, characterData: true, subtree: true});
window.ready = true;
</script>`

const shadowPrimary = `document.querySelector("session-expiry-toast").shadowRoot.querySelector(".pri")`

func TestToastAccessibility(t *testing.T) {
	srv := servePage(t, page(toastPage), nil)
	ctx := browsertest.Start(t, browsertest.Options{})
	browsertest.Do(t, ctx, "load", chromedp.Navigate(srv.URL+"/"))
	browsertest.WaitJS(t, ctx, 5*time.Second, `window.ready`, `document.readyState`)
	browsertest.Do(t, ctx, "focus the page's button", chromedp.Focus(chromedp.ID("save")))

	// Appears with a role and a name; the countdown runs every second
	// but is spoken once on appearing and once a minute.
	got := browsertest.Eval[map[string]any](t, ctx, `(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  fake.set({state: "soon", reason: "idle", expiresIn: 299});
  const box = toast.shadowRoot.querySelector("[role=dialog]");
  const out = {hidden: toast.hidden, role: box && box.getAttribute("role"),
    name: box && toast.shadowRoot.getElementById(box.getAttribute("aria-labelledby")).textContent,
    primary: toast.shadowRoot.querySelector(".pri").textContent};
  for (let s = 298; s > 120; s--) { fake.set({expiresIn: s}); await sleep(2); }
  await sleep(300);
  out.visible = toast.shadowRoot.getElementById("msg").textContent;
  out.announced = announced.filter((a) => a !== "");
  out.focus = document.activeElement.id;
  return out;
})()`)
	if got["hidden"] != false || got["role"] != "dialog" || !strings.Contains(got["name"].(string), "signed out") || got["primary"] != "Stay signed in" {
		t.Fatalf("toast on appearing: %v", got)
	}
	if !strings.Contains(got["visible"].(string), "2:01") {
		t.Errorf("visible countdown %q, want 2:01", got["visible"])
	}
	ann, _ := got["announced"].([]any)
	if len(ann) != 3 || !strings.Contains(ann[0].(string), "5 minutes") || !strings.Contains(ann[2].(string), "3 minutes") {
		t.Errorf("announcements over 178 s = %v, want 3 (5, 4, 3 minutes)", ann)
	}
	if got["focus"] != "save" {
		t.Errorf("focus moved before the last minute, to %v", got["focus"])
	}

	// In the last minute focus moves to the toast; Escape dismisses it
	// and focus goes back to the button.
	browsertest.Eval[bool](t, ctx, `(fake.set({expiresIn: 59}), true)`)
	browsertest.WaitJS(t, ctx, 2*time.Second, `document.activeElement === toast && toast.shadowRoot.activeElement.getAttribute("role") === "dialog"`, `document.activeElement.outerHTML`)
	browsertest.Do(t, ctx, "press Escape", chromedp.KeyEvent(kb.Escape))
	browsertest.WaitJS(t, ctx, 2*time.Second, `fake.s.dismissed && toast.hidden && document.activeElement.id === "save"`,
		`[fake.s.dismissed, toast.hidden, document.activeElement.outerHTML]`)

	// A new warning: "Stay signed in" by a real click keeps the session
	// and returns focus.
	browsertest.Eval[bool](t, ctx, `(fake.set({state: "none", dismissed: false}), fake.set({state: "soon", reason: "idle", expiresIn: 30}), true)`)
	browsertest.WaitJS(t, ctx, 2*time.Second, `document.activeElement === toast`, `document.activeElement.outerHTML`)
	browsertest.Do(t, ctx, "stay signed in", chromedp.Click(chromedp.JSPath(shadowPrimary)))
	browsertest.WaitJS(t, ctx, 2*time.Second, `fake.kept === 1 && toast.hidden && document.activeElement.id === "save"`,
		`[fake.kept, toast.hidden, document.activeElement.outerHTML]`)

	// The absolute limit offers only signing in again.
	got = browsertest.Eval[map[string]any](t, ctx, `(() => {
  fake.set({state: "soon", reason: "absolute", expiresIn: 200});
  return {primary: toast.shadowRoot.querySelector(".pri").textContent, msg: toast.shadowRoot.getElementById("msg").textContent};
})()`)
	if got["primary"] != "Sign in now" || strings.Contains(got["msg"].(string), "inactivity") {
		t.Fatalf("absolute toast: %v", got)
	}
	browsertest.Do(t, ctx, "sign in now", chromedp.Click(chromedp.JSPath(shadowPrimary)))
	browsertest.WaitJS(t, ctx, 2*time.Second, `fake.signIn === 1`, `fake.signIn`)
	browsertest.Axe(t, ctx, "the toast page")
}

// TestToastNeverCoversContentOnAPhone: at 390 px the toast takes its
// place in the flow, above the page, covering none of its controls.
func TestToastNeverCoversContentOnAPhone(t *testing.T) {
	srv := servePage(t, page(toastPage), nil)
	ctx := browsertest.Start(t, browsertest.Options{})
	// a window cannot be narrower than about 500 px: emulate the phone
	browsertest.Do(t, ctx, "load", chromedp.EmulateViewport(390, 844), chromedp.Navigate(srv.URL+"/"))
	browsertest.WaitJS(t, ctx, 5*time.Second, `window.ready`, `document.readyState`)
	browsertest.Eval[bool](t, ctx, `(fake.set({state: "soon", reason: "idle", expiresIn: 200}), true)`)
	covered := browsertest.Eval[[]string](t, ctx, `(() => {
  const r = toast.getBoundingClientRect();
  if (r.height === 0) return ["toast not shown"];
  if (innerWidth !== 390) return ["viewport " + innerWidth];
  return [...document.querySelectorAll("main button, main a, main h1, main p")].filter((el) => {
    const b = el.getBoundingClientRect();
    return b.left < r.right && r.left < b.right && b.top < r.bottom && r.top < b.bottom;
  }).map((el) => el.id || el.tagName);
})()`)
	if len(covered) != 0 {
		browsertest.Screenshot(t, ctx, "toast-390-covering")
		t.Fatalf("at 390 px the toast covers %v", covered)
	}
	browsertest.Screenshot(t, ctx, "toast-390")
}
