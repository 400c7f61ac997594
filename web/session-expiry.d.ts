// Type declarations for session-expiry.js.

/** What the session looks like from the browser. */
export interface SessionExpiryState {
	/** none: nothing to say; soon: within warnBefore; now: the session is over, or reauth. */
	state: "none" | "soon" | "now";
	/**
	 * Which limit is closer (idle or absolute), or why the session ended
	 * (idle, absolute, revoked, signed_out), or reauth: a request got the
	 * step-up answer (RFC 9470, 401 insufficient_user_authentication) and
	 * needs a more recent login; the session goes on and the next ordinary
	 * response clears it. null before anything is known.
	 */
	reason: "idle" | "absolute" | "revoked" | "signed_out" | "reauth" | null;
	/** With reason reauth: the max_age the route asks for, in seconds (null when none is named). */
	maxAge?: number | null;
	/** Seconds until the closer limit; 0 when over; null when unknown. */
	expiresIn: number | null;
	/** Seconds until idle expiry, or null when unknown. */
	idleExpiresIn: number | null;
	/** Seconds until absolute expiry, or null when unknown. */
	absoluteExpiresIn: number | null;
	/** The warning window in seconds. */
	warnBefore: number;
	/** The current "soon" warning was dismissed (in this or another tab). */
	dismissed: boolean;
	/** How many status polls this tab has made. */
	polls: number;
	/** The last failed call to the gateway (network: status 0), until one succeeds. */
	error: SessionExpiryError | null;
}

export interface SessionExpiryError {
	/** The HTTP status, or 0 when the gateway could not be reached. */
	status: number;
	message: string;
}

export interface SessionExpiryOptions {
	/** The gateway's origin for a frontend on another origin, e.g. "https://api.example.com". Default "" (this origin). */
	baseURL?: string;
	/** The gateway's endpoints prefix. Default "/.session". */
	endpoint?: string;
	/** fetch credentials of the endpoint calls: "include" for cookies on another origin. Default "same-origin". */
	credentials?: RequestCredentials;
	/** Returns the bearer token for the endpoint calls and fetch(); null sends none. */
	getToken?: (() => string | null | undefined | Promise<string | null | undefined>) | null;
	/** Where signInNow() goes (with ?return_to=). Default "/login". */
	loginURL?: string;
	/**
	 * Warning window in seconds. Default: warn_before from the status
	 * endpoint, else 300.
	 */
	warnBefore?: number | null;
	/** How often the deadlines are re-evaluated, in ms. Default 30000. */
	tickInterval?: number;
	/**
	 * After this many ms without an observed response the tracker polls
	 * GET {endpoint}/status (passive). Default 60000.
	 */
	pollInterval?: number;
	/** The same while the page is hidden. Default 300000. */
	hiddenPollInterval?: number;
	/** BroadcastChannel name shared by the tabs; "" turns syncing off. Default "session-expiry". */
	channel?: string;
	/** The fetch to use. Default globalThis.fetch. */
	fetch?: typeof fetch;
	/** Monotonic milliseconds. Default performance.timeOrigin + performance.now(). */
	now?: () => number;
	/** Start the timer and poll once right away (only in a browser). Default true. */
	autoStart?: boolean;
}

export interface SessionExpiry {
	/** Reads the expiry headers of a response (or Headers, or a plain header object). */
	observe(res: Response | Headers | Record<string, string>): SessionExpiryState;
	/** fetch() that observes every response; adds the token, and Session-Passive: 1 while the page is hidden. */
	fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
	/** GET {endpoint}/status; never extends the session. Resolves to null when offline. */
	poll(): Promise<Response | null>;
	/** POST {endpoint}/keepalive: extends the idle limit ("Stay signed in"). */
	keepalive(): Promise<Response>;
	/** Hides the current "soon" warning in every tab until the state changes. */
	dismiss(): SessionExpiryState;
	/** Records activity made outside the tracker (so it does not poll meanwhile). */
	activity(): void;
	/** Calls fn now and on every change; returns an unsubscribe function. */
	subscribe(fn: (s: SessionExpiryState) => void): () => void;
	/** Calls fn on every change, on a failed gateway call, or when the session ends. */
	on(type: "change" | "ended", fn: (s: SessionExpiryState) => void): () => void;
	on(type: "error", fn: (e: SessionExpiryError) => void): () => void;
	/** Goes to loginURL with ?return_to= this page (after a step-up answer also &reason=reauth_required&max_age=N). */
	signInNow(): void;
	/** Re-evaluates now (the timer calls this every tickInterval ms). */
	tick(): SessionExpiryState;
	start(): void;
	stop(): void;
	/** Stops the timer and leaves the tab channel. */
	close(): void;
	/** The state right now. */
	readonly state: SessionExpiryState;
}

export function createSessionExpiry(options?: SessionExpiryOptions): SessionExpiry;
export default createSessionExpiry;
