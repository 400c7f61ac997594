// toast.js — <session-expiry-toast>, an accessible warning before a
// sessionguard session ends. It imports nothing: the gateway's kit.js is
// session-expiry.js and this file in one module.
//
//   import { defineSessionExpiryToast } from "@sessionguard/session-expiry/toast";
//   defineSessionExpiryToast();
//   document.querySelector("session-expiry-toast").tracker = se;
//
// Idle: "Stay signed in" (keepalive) and "Dismiss"; absolute: "Sign in now"
// only. The visible countdown is not a live region: screen readers hear
// the warning when it appears and once a minute. In the last minute
// focus moves to the toast; Escape dismisses; focus goes back to where it
// was. On narrow screens it takes its place in the page's flow instead
// of floating over it, so it never covers content.

const toastCSS = `
:host{display:block;position:fixed;right:1rem;bottom:1rem;z-index:1000;max-width:24rem;font:inherit}
:host([hidden]){display:none}
@media (max-width:640px){:host{position:static;max-width:none;margin:0 0 1rem}}
.box{background:#1f2937;color:#fff;border-radius:.5rem;padding:1rem;box-shadow:0 4px 16px #0004}
.box:focus{outline:3px solid #fbbf24;outline-offset:2px}
p{margin:0 0 .75rem}
.row{display:flex;gap:.5rem;flex-wrap:wrap}
button{font:inherit;padding:.5rem .9rem;border-radius:.375rem;border:1px solid #fff;background:#fff;color:#111827;cursor:pointer;min-height:44px}
button.sec{background:transparent;color:#fff}
button:focus-visible{outline:3px solid #fbbf24;outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}`;

/** Whole minutes and seconds, for the visible countdown. */
function toastClock(s) {
	const m = Math.floor(s / 60);
	return m + ":" + String(s % 60).padStart(2, "0");
}

/** The spoken form: "4 minutes", or "less than a minute". */
function toastSpoken(s) {
	const m = Math.ceil(s / 60);
	return s < 60 ? "less than a minute" : m + (m === 1 ? " minute" : " minutes");
}

const ToastBase = typeof HTMLElement === "undefined" ? class {} : HTMLElement;

export class SessionExpiryToast extends ToastBase {
	constructor() {
		super();
		this._tracker = null;
		this._off = null;
		this._shown = false;
		this._spokenMinute = null;
		this._returnTo = null;
		this._focused = false;
		this._timer = null;
		const root = this.attachShadow({ mode: "open" });
		root.innerHTML = `<style>${toastCSS}</style>
<div class="box" role="dialog" aria-labelledby="msg" tabindex="-1" part="box">
<p id="msg" part="message"></p>
<div class="sr" role="status" aria-live="polite" aria-atomic="true"></div>
<div class="row"><button part="primary" class="pri"></button><button part="dismiss" class="sec">Dismiss</button></div>
</div>`;
		this._box = root.querySelector(".box");
		this._msg = root.querySelector("#msg");
		this._live = root.querySelector(".sr");
		this._primary = root.querySelector(".pri");
		this._dismiss = root.querySelector(".sec");
		this._primary.addEventListener("click", () => this._act());
		this._dismiss.addEventListener("click", () => this._close(true));
		this._box.addEventListener("keydown", (e) => {
			if (e.key === "Escape") {
				e.stopPropagation();
				this._close(true);
			}
		});
	}

	/** The tracker (createSessionExpiry) whose state the toast shows. */
	get tracker() {
		return this._tracker;
	}

	set tracker(t) {
		if (this._off) this._off();
		this._tracker = t;
		this._off = t ? t.subscribe((s) => this._render(s)) : null;
	}

	connectedCallback() {
		if (!this._shown) this.hidden = true;
		// a second-by-second countdown between the tracker's ticks
		if (this._timer == null) this._timer = setInterval(() => this._tracker && this._render(this._tracker.state), 1000);
	}

	disconnectedCallback() {
		clearInterval(this._timer);
		this._timer = null;
	}

	_render(s) {
		const show = s.state === "soon" && !s.dismissed;
		if (!show) {
			if (this._shown) this._hide();
			return;
		}
		const idle = s.reason === "idle";
		const left = s.expiresIn ?? 0;
		const msg = idle
			? "You will be signed out for inactivity in "
			: "Your session reaches its time limit in ";
		this._msg.textContent = msg + toastClock(left) + (idle ? "." : ". Sign in again to continue.");
		this._primary.textContent = idle ? "Stay signed in" : "Sign in now";
		this._dismiss.hidden = false;
		const minute = Math.ceil(left / 60);
		if (!this._shown) {
			this._shown = true;
			this.hidden = false;
			const active = document.activeElement;
			this._returnTo = active && active !== document.body && active !== this ? active : null;
			this._spokenMinute = null;
		}
		if (minute !== this._spokenMinute) {
			// once when it appears and once a minute, not every second; a
			// moment after showing, so that the region is rendered first
			this._spokenMinute = minute;
			const text = msg + toastSpoken(left) + ".";
			setTimeout(() => {
				if (this._shown) this._live.textContent = text;
			}, 100);
		}
		if (left <= 60 && !this._focused) {
			this._focused = true;
			this._box.focus();
		}
	}

	async _act() {
		const t = this._tracker;
		if (!t) return;
		if (t.state.reason === "absolute") {
			t.signInNow();
			return;
		}
		try {
			await t.keepalive();
		} catch (e) {
			// the tracker reports the error in its state
		}
		this._restoreFocus();
	}

	_close(dismiss) {
		if (dismiss && this._tracker) this._tracker.dismiss();
		this._hide();
	}

	_hide() {
		const inside = this.shadowRoot.activeElement != null;
		this._shown = false;
		this._focused = false;
		this.hidden = true;
		this._live.textContent = "";
		if (inside) this._restoreFocus();
	}

	_restoreFocus() {
		const el = this._returnTo;
		this._returnTo = null;
		if (el && el.isConnected && typeof el.focus === "function") el.focus();
	}
}

/** Registers <session-expiry-toast> once; does nothing outside a browser. */
export function defineSessionExpiryToast(name = "session-expiry-toast") {
	if (typeof customElements === "undefined" || customElements.get(name)) return;
	customElements.define(name, SessionExpiryToast);
}
