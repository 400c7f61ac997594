// useSessionExpiry in a DOM (happy-dom) with React and Testing Library.
import { GlobalRegistrator } from "@happy-dom/global-registrator";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";

before(() => GlobalRegistrator.register({ url: "https://app.example/orders?page=2" }));
after(() => GlobalRegistrator.unregister());

function scripted() {
	const h = { t: 0, calls: [] };
	h.fetch = async (url, init = {}) => {
		h.calls.push(init.method + " " + url);
		return h.reply(url, init);
	};
	h.reply = () =>
		new Response("{}", { status: 200, headers: { "Session-Idle-Expires-In": "100", "Session-Absolute-Expires-In": "3600" } });
	return h;
}

test("useSessionExpiry: warning, reason, staySignedIn and cleanup", async () => {
	const React = await import("react");
	const { render, screen, act, cleanup } = await import("@testing-library/react");
	const { createSessionExpiry } = await import("../session-expiry.js");
	const { useSessionExpiry } = await import("../react.js");
	const h = scripted();
	const opts = { baseURL: "https://api.example", fetch: h.fetch, now: () => h.t, channel: "", tickInterval: 1e9 };
	let last;
	function Banner() {
		last = useSessionExpiry(opts);
		return React.createElement("p", { "data-testid": "w" }, `${last.warning}/${last.reason}/${last.expiresIn}`);
	}
	render(React.createElement(Banner));
	// started in the effect: one status poll
	await act(async () => {
		await new Promise((r) => setTimeout(r, 10));
	});
	assert.deepEqual(h.calls, ["GET https://api.example/.session/status"]);
	assert.equal(screen.getByTestId("w").textContent, "soon/idle/100");
	assert.equal(last.idleExpiresIn, 100);
	assert.equal(last.absoluteExpiresIn, 3600);
	assert.equal(last.error, null);

	h.reply = () => new Response("{}", { status: 200, headers: { "Session-Idle-Expires-In": "900", "Session-Absolute-Expires-In": "3500" } });
	await act(() => last.staySignedIn());
	assert.equal(h.calls[1], "POST https://api.example/.session/keepalive");
	assert.equal(screen.getByTestId("w").textContent, "none/idle/900");

	h.reply = () => new Response("{}", { status: 503 });
	await act(() => last.tracker.poll());
	assert.equal(last.error.status, 503);

	h.reply = () => new Response("{}", { status: 401, headers: { "Session-Expiry-Reason": "revoked", "Session-Expiry-Warning": "now" } });
	await act(() => last.tracker.poll());
	assert.equal(screen.getByTestId("w").textContent, "now/revoked/0");
	cleanup();
	assert.ok(createSessionExpiry);
});

// mountHook renders a component using the hook on h's fetch and returns
// a getter of the hook's latest value.
async function mountHook(h) {
	const React = await import("react");
	const { render, act } = await import("@testing-library/react");
	const { useSessionExpiry } = await import("../react.js");
	let last;
	function C() {
		last = useSessionExpiry({ fetch: h.fetch, channel: "", loginURL: "/login" });
		return null;
	}
	render(React.createElement(C));
	await act(async () => {
		await new Promise((r) => setTimeout(r, 10));
	});
	return () => last;
}

// signInTarget calls signInNow and returns where it sent the browser.
function signInTarget(hook) {
	const assigned = [];
	const orig = window.location.assign;
	window.location.assign = (u) => assigned.push(u);
	try {
		hook.signInNow();
	} finally {
		window.location.assign = orig;
	}
	return assigned;
}

test("signInNow goes to the login page with return_to", async () => {
	const { cleanup } = await import("@testing-library/react");
	const hook = await mountHook(scripted());
	const assigned = signInTarget(hook());
	cleanup();
	assert.deepEqual(assigned, ["https://app.example/login?return_to=%2Forders%3Fpage%3D2"]);
});

test("a step-up answer: reason reauth with maxAge, and signInNow asks for a fresh login", async () => {
	const { act, cleanup } = await import("@testing-library/react");
	const h = scripted();
	const hook = await mountHook(h);
	h.reply = () =>
		new Response(JSON.stringify({ error: "insufficient_user_authentication", max_age: 300 }), {
			status: 401,
			headers: { "Content-Type": "application/json" },
		});
	await act(() => hook().tracker.fetch("/billing/cards"));
	assert.equal(hook().warning, "now");
	assert.equal(hook().reason, "reauth");
	assert.equal(hook().maxAge, 300);
	const assigned = signInTarget(hook());
	cleanup();
	assert.deepEqual(assigned, ["https://app.example/login?return_to=%2Forders%3Fpage%3D2&reason=reauth_required&max_age=300"]);
});
