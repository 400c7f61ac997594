package main

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sessionguard/sessionguard/browsertest"
)

// TestBrowserAccessibility runs axe-core over the demo's pages (signed
// out, signed in, the owner's security page, the expiry banner, the
// toast): no serious or critical violation.
func TestBrowserAccessibility(t *testing.T) {
	b := startBrowserDemo(t, browsertest.Options{Width: 1000, Height: 900})
	ctx := b.ctx
	for _, p := range []string{"/login", "/login?reason=session_expired", "/login?reason=session_revoked"} {
		browsertest.Do(t, ctx, "open "+p, chromedp.Navigate(b.GatewayURL+p))
		browsertest.Axe(t, ctx, p)
	}
	b.signIn(t, ctx, b.GatewayURL, "alice", "owner")
	browsertest.Axe(t, ctx, "/")
	browsertest.Do(t, ctx, "open /security", chromedp.Navigate(b.GatewayURL+"/security"))
	browsertest.WaitJS(t, ctx, wait, `document.querySelectorAll("#users tbody tr").length > 0`, `document.body.innerText`)
	browsertest.Axe(t, ctx, "/security")
	browsertest.Do(t, ctx, "open /", chromedp.Navigate(b.GatewayURL+"/"))
	b.clock.Advance(bIdle - bWarn + 10e9)
	browsertest.WaitJS(t, ctx, wait, toastVisible, `document.body.innerText`)
	browsertest.Axe(t, ctx, "/ with the toast")
}
