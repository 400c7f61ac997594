// session-expiry.js — warn a person before their sessionguard session ends.
//
// A dependency-free ES module. It reads the gateway's response headers
// (Session-Idle-Expires-In, Session-Absolute-Expires-In,
// Session-Expiry-Warning, Session-Expiry-Reason), keeps both deadlines on
// the browser's monotonic clock (so a wrong wall clock does not matter),
// re-evaluates them on a timer and tells subscribers the state:
//
//   { state: "none" | "soon" | "now", reason: "idle" | "absolute" | "revoked" | "reauth" | null, ... }
//
// reason "reauth" (state "now", with maxAge) reports a step-up answer
// (RFC 9470: 401 insufficient_user_authentication from a route with
// max_auth_age): the session goes on, but that request needs a more
// recent login; signInNow() then asks for one.
//
// While the page makes no requests of its own it polls
// GET {endpoint}/status, which is passive: it never extends the session.
// keepalive() is the "Stay signed in" action (POST {endpoint}/keepalive).
// Requests made while the page is hidden are passive too, so a
// background tab does not keep a session alive. Tabs of the same origin
// share deadlines, activity and dismissals over a BroadcastChannel.
//
// Nothing runs until start() in a browser (autoStart does that when there
// is a document): importing it on a server starts no timer.
//
//   import { createSessionExpiry } from "@sessionguard/session-expiry";
//   const se = createSessionExpiry();
//   se.subscribe((s) => render(s));   // your toast
//   const res = await se.fetch("/api/data");  // or se.observe(anyResponse)

const H_IDLE = "Session-Idle-Expires-In";
const H_ABS = "Session-Absolute-Expires-In";
const H_WARNING = "Session-Expiry-Warning";
const H_REASON = "Session-Expiry-Reason";

/**
 * Milliseconds on the browser's monotonic clock: it does not follow
 * changes of the wall clock, and the module only ever subtracts its
 * readings.
 */
function monotonic() {
	if (typeof performance !== "undefined" && performance.now) {
		return (performance.timeOrigin || 0) + performance.now();
	}
	return Date.now();
}

function headersOf(x) {
	if (!x) return null;
	if (typeof Headers !== "undefined" && x instanceof Headers) return x;
	if (x.headers && typeof x.headers.get === "function") return x.headers;
	if (typeof x.get === "function") return x;
	if (typeof Headers !== "undefined" && typeof x === "object") return new Headers(x);
	return null;
}

// stepUpOf reads an RFC 9470 challenge (error="insufficient_user_authentication")
// from a WWW-Authenticate value: {maxAge} (null when it names none), or null.
function stepUpOf(challenge) {
	if (!challenge || !/error="?insufficient_user_authentication"?/.test(challenge)) return null;
	const m = /max_age="?(\d+)"?/.exec(challenge);
	return { maxAge: m ? Number(m[1]) : null };
}

// stepUpBody reads the step-up answer's JSON body
// {"error":"insufficient_user_authentication","max_age":N}, or null.
async function stepUpBody(res) {
	try {
		const body = await res.clone().json();
		if (body && body.error === "insufficient_user_authentication") {
			return { maxAge: Number.isFinite(body.max_age) ? body.max_age : null };
		}
	} catch (e) {
		// not JSON: not a step-up answer
	}
	return null;
}

const hidden = () => typeof document !== "undefined" && document.hidden === true;

function seconds(v) {
	if (v == null || v === "") return null;
	const n = Number(v);
	return Number.isFinite(n) ? n : null;
}

/**
 * Creates a tracker. See session-expiry.d.ts for the options and the API.
 */
export function createSessionExpiry(options = {}) {
	const opt = {
		baseURL: "",
		endpoint: "/.session",
		credentials: "same-origin",
		getToken: null,
		loginURL: "/login",
		warnBefore: null, // seconds; null: the status endpoint's warn_before, else 300
		tickInterval: 30000,
		pollInterval: 60000,
		hiddenPollInterval: 300000,
		channel: "session-expiry",
		fetch: null,
		now: monotonic,
		autoStart: true,
		...options,
	};
	const doFetch = opt.fetch || ((...a) => globalThis.fetch(...a));
	const endpoint = opt.baseURL.replace(/\/+$/, "") + opt.endpoint.replace(/\/+$/, "");

	let idleAt = null; // deadlines in opt.now() milliseconds
	let absAt = null;
	let serverWarnBefore = null;
	let ended = null; // reason once the session is over
	let reauth = null; // {maxAge} after a step-up answer, until an ordinary one
	let dismissed = null; // reason of the dismissed warning
	let lastActivity = opt.now(); // newest request or observed response
	let polls = 0;
	let timer = null;
	let polling = null;
	let last = null;
	let error = null; // the last failed gateway call, until one succeeds
	const subs = new Set();
	const listeners = { change: new Set(), error: new Set(), ended: new Set() };
	let bc = null;
	if (typeof document !== "undefined" && opt.channel && typeof BroadcastChannel !== "undefined") {
		// only in a browser: on a server a channel would keep the process alive
		bc = new BroadcastChannel(opt.channel);
		bc.onmessage = (ev) => receive(ev.data);
	}

	function warnMs() {
		const s = opt.warnBefore ?? serverWarnBefore ?? 300;
		return s * 1000;
	}

	function compute() {
		const now = opt.now();
		const base = {
			idleExpiresIn: idleAt == null ? null : Math.max(0, Math.round((idleAt - now) / 1000)),
			absoluteExpiresIn: absAt == null ? null : Math.max(0, Math.round((absAt - now) / 1000)),
			warnBefore: Math.round(warnMs() / 1000),
			polls,
			error,
		};
		if (ended) {
			return { ...base, state: "now", reason: ended, expiresIn: 0, dismissed: false };
		}
		if (reauth) {
			return { ...base, state: "now", reason: "reauth", maxAge: reauth.maxAge, expiresIn: null, dismissed: false };
		}
		if (idleAt == null && absAt == null) {
			return { ...base, state: "none", reason: null, expiresIn: null, dismissed: false };
		}
		let reason = "idle";
		let at = idleAt;
		if (at == null || (absAt != null && absAt <= at)) {
			reason = "absolute";
			at = absAt;
		}
		const left = at - now;
		let state = "none";
		if (left <= 0) state = "now";
		else if (left <= warnMs()) state = "soon";
		if (state === "none") dismissed = null;
		return {
			...base,
			state,
			reason,
			expiresIn: Math.max(0, Math.round(left / 1000)),
			dismissed: state === "soon" && dismissed === reason,
		};
	}

	function emit() {
		const s = compute();
		const changed =
			!last ||
			last.state !== s.state ||
			last.reason !== s.reason ||
			last.dismissed !== s.dismissed ||
			last.expiresIn !== s.expiresIn ||
			last.idleExpiresIn !== s.idleExpiresIn ||
			last.absoluteExpiresIn !== s.absoluteExpiresIn ||
			last.polls !== s.polls ||
			last.error !== s.error;
		const endedNow = s.state === "now" && ended && (!last || last.state !== "now");
		last = s;
		if (changed) {
			call(subs, s);
			call(listeners.change, s);
		}
		if (endedNow) call(listeners.ended, s);
		return s;
	}

	// call runs every listener; one that throws does not stop the others.
	function call(set, v) {
		for (const fn of set) {
			try {
				fn(v);
			} catch (e) {
				setTimeout(() => {
					throw e;
				});
			}
		}
	}

	// failed records a failed gateway call (network, 5xx, unexpected status).
	function failed(status, message) {
		error = { status, message };
		call(listeners.error, error);
		emit();
	}

	// request sends a call to the gateway's endpoints with the configured
	// credentials and token; passive unless told otherwise.
	async function request(path, method, passive) {
		const headers = { Accept: "application/json" };
		if (passive || hidden()) headers["Session-Passive"] = "1";
		if (opt.getToken) {
			const tok = await opt.getToken();
			if (tok) headers.Authorization = "Bearer " + tok;
		}
		return doFetch(endpoint + path, { method, credentials: opt.credentials, cache: "no-store", headers });
	}

	// settle reads an endpoint's answer: a 2xx or a 401 is an answer about
	// the session; anything else is an error.
	async function settle(res) {
		if (res.status === 401) {
			error = null;
			ended = res.headers.get(H_REASON) || "signed_out";
			idleAt = absAt = null;
			post({ type: "ended", reason: ended });
			emit();
			return;
		}
		if (!res.ok) {
			failed(res.status, "HTTP " + res.status);
			return;
		}
		error = null;
		await readStatusBody(res);
		observe(res);
	}

	function post(msg) {
		if (bc) bc.postMessage(msg);
	}

	function receive(msg) {
		if (!msg || typeof msg !== "object") return;
		switch (msg.type) {
			case "deadlines": {
				// remaining milliseconds, not timestamps: each tab adds them
				// to its own clock
				const now = opt.now();
				idleAt = msg.idleIn == null ? null : now + msg.idleIn;
				absAt = msg.absIn == null ? null : now + msg.absIn;
				if (msg.warnBefore != null) serverWarnBefore = msg.warnBefore;
				ended = null;
				lastActivity = now;
				break;
			}
			case "activity":
				lastActivity = opt.now();
				break;
			case "dismiss":
				dismissed = msg.reason;
				break;
			case "ended":
				ended = msg.reason || "signed_out";
				idleAt = absAt = null;
				break;
			default:
				return;
		}
		emit();
	}

	/**
	 * Reads the expiry headers of a Response (or Headers, or a plain
	 * object of headers) and updates the state. Returns the new state.
	 */
	function observe(res, { broadcast = true } = {}) {
		const h = headersOf(res);
		const status = res && typeof res.status === "number" ? res.status : 0;
		if (!h) return emit();
		const warning = h.get(H_WARNING);
		const reason = h.get(H_REASON);
		const idle = seconds(h.get(H_IDLE));
		const abs = seconds(h.get(H_ABS));
		const stepUp = status === 401 ? stepUpOf(h.get("WWW-Authenticate")) : null;
		if (stepUp) return stepUpAnswer(stepUp);
		reauth = null;
		if (warning === "now" || (status === 401 && idle == null && abs == null && h.get("WWW-Authenticate"))) {
			// the session is over (expired or revoked), or there is none
			ended = reason || "signed_out";
			idleAt = absAt = null;
			if (broadcast) post({ type: "ended", reason: ended });
			return emit();
		}
		if (idle == null && abs == null) return emit();
		const now = opt.now();
		idleAt = idle == null ? null : now + idle * 1000;
		absAt = abs == null ? null : now + abs * 1000;
		lastActivity = now;
		ended = null;
		if (broadcast) {
			post({ type: "deadlines", idleIn: idle == null ? null : idle * 1000, absIn: abs == null ? null : abs * 1000, warnBefore: serverWarnBefore });
		}
		return emit();
	}

	/**
	 * fetch() that observes every response it gets. It adds the token
	 * (getToken) unless the request has an Authorization header, and marks
	 * requests of a hidden page passive.
	 */
	async function trackedFetch(input, init = {}) {
		const headers = new Headers(init.headers);
		if (hidden()) headers.set("Session-Passive", "1");
		if (opt.getToken && !headers.has("Authorization")) {
			const tok = await opt.getToken();
			if (tok) headers.set("Authorization", "Bearer " + tok);
		}
		const res = await doFetch(input, { ...init, headers });
		observe(res);
		if (res.status === 401 && !reauth && !ended) {
			// a cross-origin response may hide WWW-Authenticate: the body says it too
			const stepUp = await stepUpBody(res);
			if (stepUp) stepUpAnswer(stepUp);
		}
		return res;
	}

	// stepUpAnswer records a step-up answer: the session goes on (its
	// deadlines are kept, nothing is told to the other tabs).
	function stepUpAnswer(stepUp) {
		reauth = stepUp;
		return emit();
	}

	async function readStatusBody(res) {
		if (!res.ok) return;
		try {
			const body = await res.clone().json();
			if (body && typeof body.warn_before === "number" && body.warn_before > 0) {
				serverWarnBefore = body.warn_before;
			}
		} catch (e) {
			// not JSON: the headers are enough
		}
	}

	/**
	 * GET {endpoint}/status: refreshes the deadlines without extending the
	 * session. Concurrent calls share one request.
	 */
	function poll() {
		if (polling) return polling;
		polling = (async () => {
			try {
				const res = await request("/status", "GET", true);
				polls++;
				await settle(res);
				return res;
			} catch (e) {
				// offline or the gateway is unreachable: keep the local view
				failed(0, String((e && e.message) || e));
				return null;
			} finally {
				polling = null;
			}
		})();
		return polling;
	}

	/** POST {endpoint}/keepalive: the "Stay signed in" action. */
	async function keepalive() {
		let res;
		try {
			res = await request("/keepalive", "POST", false);
		} catch (e) {
			failed(0, String((e && e.message) || e));
			throw e;
		}
		dismissed = null;
		await settle(res);
		return res;
	}

	/**
	 * Goes to the login page, asking it to return here afterwards
	 * (?return_to=, a path on this origin, else the full address).
	 */
	function signInNow() {
		if (typeof location === "undefined") return;
		const url = new URL(opt.loginURL, location.href);
		const here = url.origin === location.origin ? location.pathname + location.search + location.hash : location.href;
		url.searchParams.set("return_to", here);
		if (reauth) {
			// as the gateway's own redirect for a navigation says it
			url.searchParams.set("reason", "reauth_required");
			if (reauth.maxAge != null) url.searchParams.set("max_age", String(reauth.maxAge));
		}
		location.assign(url.href);
	}

	/** Hides the current warning here and in the other tabs until the state changes. */
	function dismiss() {
		const s = compute();
		if (s.state !== "soon") return s;
		dismissed = s.reason;
		post({ type: "dismiss", reason: dismissed });
		return emit();
	}

	/**
	 * Records user activity that made a request outside the tracker, so the
	 * tracker does not poll while the page is busy anyway.
	 */
	function activity() {
		lastActivity = opt.now();
		post({ type: "activity", at: lastActivity });
	}

	function tick() {
		const s = emit();
		if (s.state === "now" && ended) return s; // nothing left to refresh
		const quiet = opt.now() - lastActivity >= (hidden() ? opt.hiddenPollInterval : opt.pollInterval);
		// poll when the page is idle, and before saying "now" on our own:
		// another tab may have extended the session
		if (quiet || s.state === "now" || idleAt == null) {
			poll();
		}
		return s;
	}

	// A tab coming back (after sleep, or from the background, where
	// timers are throttled and a monotonic clock may have paused) asks the
	// gateway instead of trusting its own arithmetic.
	function onVisible() {
		if (typeof document === "undefined" || document.visibilityState === "visible") {
			if (!ended) poll();
		}
	}

	function start() {
		if (timer != null || typeof document === "undefined") return;
		timer = setInterval(tick, opt.tickInterval);
		if (typeof document !== "undefined") document.addEventListener("visibilitychange", onVisible);
		if (typeof window !== "undefined") window.addEventListener("online", onVisible);
		if (idleAt == null && absAt == null && !ended) poll();
	}

	function stop() {
		if (timer != null) clearInterval(timer);
		timer = null;
		if (typeof document !== "undefined") document.removeEventListener("visibilitychange", onVisible);
		if (typeof window !== "undefined") window.removeEventListener("online", onVisible);
	}

	function close() {
		stop();
		subs.clear();
		for (const k in listeners) listeners[k].clear();
		if (bc) bc.close();
		bc = null;
	}

	/** Calls fn on "change", "error" or "ended"; returns an unsubscribe function. */
	function on(type, fn) {
		listeners[type].add(fn);
		return () => listeners[type].delete(fn);
	}

	/** Calls fn with the state now and on every change; returns an unsubscribe function. */
	function subscribe(fn) {
		subs.add(fn);
		fn(last || compute());
		return () => subs.delete(fn);
	}

	const tracker = {
		observe,
		fetch: trackedFetch,
		poll,
		keepalive,
		dismiss,
		activity,
		subscribe,
		on,
		signInNow,
		tick,
		start,
		stop,
		close,
		get state() {
			return compute();
		},
	};
	if (opt.autoStart) start();
	return tracker;
}

export default createSessionExpiry;
