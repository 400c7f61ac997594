// Type declarations for react.js.
import type { SessionExpiry, SessionExpiryOptions, SessionExpiryError } from "./session-expiry.js";

export interface UseSessionExpiry {
	/** none, soon (within warnBefore) or now (the session is over, or reauth). */
	warning: "none" | "soon" | "now";
	/**
	 * The closer limit (idle, absolute), why the session ended (revoked,
	 * signed_out), or reauth: a step-up answer (RFC 9470) asks for a more
	 * recent login; the session goes on.
	 */
	reason: "idle" | "absolute" | "revoked" | "signed_out" | "reauth" | null;
	/** With reason reauth: the most seconds since login the route accepts, or null. */
	maxAge: number | null;
	expiresIn: number | null;
	idleExpiresIn: number | null;
	absoluteExpiresIn: number | null;
	/** The last failed call to the gateway, until one succeeds. */
	error: SessionExpiryError | null;
	/** The current warning was dismissed (in this or another tab). */
	dismissed: boolean;
	/** POST keepalive: extends the idle limit. */
	staySignedIn(): Promise<Response | null>;
	/** Goes to the login page with ?return_to= this page. */
	signInNow(): void;
	/** Hides the current warning until the state changes. */
	dismiss(): void;
	/** The tracker, once the component has mounted (null while rendering on a server). */
	tracker: SessionExpiry | null;
}

/**
 * The session's expiry state. The tracker is created and started in an
 * effect, so server rendering starts nothing. Pass {tracker} to share one.
 */
export function useSessionExpiry(options?: SessionExpiryOptions & { tracker?: SessionExpiry }): UseSessionExpiry;
export default useSessionExpiry;
