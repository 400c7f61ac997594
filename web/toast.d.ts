// Type declarations for toast.js.
import type { SessionExpiry } from "./session-expiry.js";

/**
 * <session-expiry-toast>: warns before the session ends. Idle: "Stay
 * signed in"; absolute: "Sign in now". Announces when it appears and once
 * a minute, takes focus in the last minute, Escape dismisses, focus goes
 * back where it was; in the page's flow on narrow screens.
 */
export declare class SessionExpiryToast extends HTMLElement {
	/** The tracker whose state the toast shows. */
	tracker: SessionExpiry | null;
}

/** Registers the element (default name "session-expiry-toast"); a no-op outside a browser. */
export declare function defineSessionExpiryToast(name?: string): void;

declare global {
	interface HTMLElementTagNameMap {
		"session-expiry-toast": SessionExpiryToast;
	}
}
