// The tracker with a fake clock and a scripted fetch: no browser, no
// timers (tick() is what the timer would call).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSessionExpiry } from "../session-expiry.js";

function harness(o = {}) {
	const h = { t: 0, calls: [], reply: () => new Response("{}", { status: 200 }) };
	h.fetch = async (url, init = {}) => {
		h.calls.push({ url: String(url), method: init.method || "GET", headers: new Headers(init.headers), credentials: init.credentials });
		return h.reply(url, init);
	};
	h.se = createSessionExpiry({ now: () => h.t, fetch: h.fetch, autoStart: false, channel: "", ...o });
	return h;
}

const live = (idle, abs, extra = {}) => () =>
	new Response(JSON.stringify({ warn_before: 300 }), {
		status: 200,
		headers: { "Session-Idle-Expires-In": String(idle), "Session-Absolute-Expires-In": String(abs), "Content-Type": "application/json", ...extra },
	});

test("deadlines from headers, on the injected clock", () => {
	const { se, ...h } = harness();
	se.observe(new Headers({ "Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600" }));
	assert.equal(se.state.state, "none");
	h.t = 0;
	const s = se.state;
	assert.equal(s.idleExpiresIn, 600);
	assert.equal(s.absoluteExpiresIn, 3600);
});

test("soon within the window, now after it", () => {
	const h = harness();
	h.se.observe({ "Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600" });
	h.t = 301000;
	assert.equal(h.se.state.state, "soon");
	assert.equal(h.se.state.reason, "idle");
	assert.equal(h.se.state.expiresIn, 299);
	h.t = 601000;
	assert.equal(h.se.state.state, "now");
});

test("baseURL, credentials and getToken reach every endpoint call", async () => {
	const h = harness({ baseURL: "https://api.example/", credentials: "include", getToken: async () => "tok-1" });
	h.reply = live(600, 3600);
	await h.se.poll();
	await h.se.keepalive();
	assert.deepEqual(h.calls.map((c) => c.method + " " + c.url), ["GET https://api.example/.session/status", "POST https://api.example/.session/keepalive"]);
	for (const c of h.calls) {
		assert.equal(c.credentials, "include");
		assert.equal(c.headers.get("Authorization"), "Bearer tok-1");
	}
	assert.equal(h.calls[0].headers.get("Session-Passive"), "1");
	assert.equal(h.calls[1].headers.get("Session-Passive"), null, "keepalive must count as activity");
});

test("a failed status check is an error state and an event, cleared by the next success", async () => {
	const h = harness();
	const errors = [];
	h.se.on("error", (e) => errors.push(e));
	h.reply = () => new Response("{}", { status: 503, headers: { "Retry-After": "1" } });
	await h.se.poll();
	assert.deepEqual(h.se.state.error, { status: 503, message: "HTTP 503" });
	h.reply = () => Promise.reject(new TypeError("Failed to fetch"));
	await h.se.poll();
	assert.equal(h.se.state.error.status, 0);
	assert.equal(errors.length, 2);
	h.reply = live(600, 3600);
	await h.se.poll();
	assert.equal(h.se.state.error, null);
	assert.equal(h.se.state.state, "none");
});

test("a 401 from the status endpoint ends the session, also without readable headers", async () => {
	const h = harness();
	const ended = [];
	h.se.on("ended", (s) => ended.push(s.reason));
	h.se.observe({ "Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600" });
	h.reply = () => new Response("{}", { status: 401 });
	await h.se.poll();
	assert.equal(h.se.state.state, "now");
	assert.equal(h.se.state.reason, "signed_out");
	assert.deepEqual(ended, ["signed_out"]);
});

test("requests of a hidden page are passive", async (t) => {
	globalThis.document = { hidden: true, visibilityState: "hidden", addEventListener() {}, removeEventListener() {} };
	t.after(() => delete globalThis.document);
	const h = harness();
	h.reply = live(600, 3600);
	await h.se.fetch("/api/data", { method: "POST", headers: { "X-App": "1" } });
	await h.se.keepalive();
	assert.equal(h.calls[0].headers.get("Session-Passive"), "1");
	assert.equal(h.calls[0].headers.get("X-App"), "1");
	assert.equal(h.calls[1].headers.get("Session-Passive"), "1");
	globalThis.document.hidden = false;
	await h.se.fetch("/api/data");
	assert.equal(h.calls[2].headers.get("Session-Passive"), null);
});

// requestsPerHour runs the timer's ticks for an hour of an idle page.
async function requestsPerHour(hidden) {
	globalThis.document = { hidden, visibilityState: hidden ? "hidden" : "visible", addEventListener() {}, removeEventListener() {} };
	try {
		const h = harness();
		h.reply = live(3600 * 12, 3600 * 24);
		await h.se.poll();
		const start = h.calls.length;
		for (h.t = 0; h.t < 3600000; ) {
			h.t += 30000; // the default tickInterval
			h.se.tick();
			await new Promise((r) => setImmediate(r));
		}
		return h.calls.length - start;
	} finally {
		delete globalThis.document;
	}
}

test("an idle page polls about once a minute, a hidden one every five", async () => {
	const visible = await requestsPerHour(false);
	const hidden = await requestsPerHour(true);
	console.log(`requests per hour of an idle page: visible ${visible}, hidden ${hidden}`);
	assert.ok(visible >= 55 && visible <= 61, `visible: ${visible}`);
	assert.ok(hidden >= 11 && hidden <= 13, `hidden: ${hidden}`);
});

test("dismiss holds until the state changes", () => {
	const h = harness({ warnBefore: 120 });
	h.se.observe({ "Session-Idle-Expires-In": "100", "Session-Absolute-Expires-In": "3600" });
	h.se.dismiss();
	assert.equal(h.se.state.dismissed, true);
	h.se.observe({ "Session-Idle-Expires-In": "90", "Session-Absolute-Expires-In": "3590" });
	assert.equal(h.se.state.dismissed, true);
});

// The gateway's step-up answer (RFC 9470), as caddymodule's stepUp
// writes it for a route with max_auth_age.
const stepUp = (withHeader) => () =>
	new Response(JSON.stringify({ error: "insufficient_user_authentication", max_age: 300 }), {
		status: 401,
		headers: {
			"Content-Type": "application/json",
			...(withHeader
				? { "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", error_description="a more recent authentication is required", max_age="300"' }
				: {}),
		},
	});

for (const [name, withHeader] of [["WWW-Authenticate", true], ["JSON body alone (header not exposed cross-origin)", false]]) {
	test(`a step-up answer is reason reauth, not the end of the session: ${name}`, async () => {
		const h = harness();
		const ended = [];
		h.se.on("ended", (s) => ended.push(s.reason));
		h.se.observe({ "Session-Idle-Expires-In": "600", "Session-Absolute-Expires-In": "3600" });
		h.reply = stepUp(withHeader);
		await h.se.fetch("/billing/cards");
		assert.equal(h.se.state.state, "now");
		assert.equal(h.se.state.reason, "reauth");
		assert.equal(h.se.state.maxAge, 300);
		assert.equal(h.se.state.idleExpiresIn, 600, "the session's deadlines are kept");
		assert.deepEqual(ended, [], "no ended event: the session goes on");
		// the next ordinary response clears it
		h.reply = live(600, 3600);
		await h.se.fetch("/orders");
		assert.equal(h.se.state.state, "none");
		assert.equal(h.se.state.reason, "idle");
	});
}

test("observe alone reads a step-up challenge from the header", () => {
	const h = harness();
	const s = h.se.observe(stepUp(true)());
	assert.equal(s.reason, "reauth");
	assert.equal(s.maxAge, 300);
});

test("an ordinary 401 with a challenge is still the end of the session", () => {
	const h = harness();
	const s = h.se.observe(new Response("{}", { status: 401, headers: { "WWW-Authenticate": 'Bearer error="invalid_token"' } }));
	assert.equal(s.reason, "signed_out");
});
