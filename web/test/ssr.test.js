// Importing the package and rendering on a server start nothing: no
// timer, no channel, no request.
import { test } from "node:test";
import assert from "node:assert/strict";

// what a tracker could leave running: timers and message ports
const handles = () => process.getActiveResourcesInfo().filter((r) => /Timeout|Immediate|Message|Broadcast/.test(r));

test("import, create and render to string start no timer", async () => {
	assert.deepEqual(handles(), []);
	let fetched = 0;
	const core = await import("../session-expiry.js");
	const toast = await import("../toast.js");
	toast.defineSessionExpiryToast(); // no customElements here: a no-op
	const se = core.createSessionExpiry({ fetch: async () => (fetched++, new Response("{}")) });
	se.start();
	const React = await import("react");
	const { renderToString } = await import("react-dom/server");
	const { useSessionExpiry } = await import("../react.js");
	function App() {
		const s = useSessionExpiry({ baseURL: "https://api.example" });
		return React.createElement("p", null, s.warning);
	}
	assert.equal(renderToString(React.createElement(App)), "<p>none</p>");
	await new Promise((r) => setImmediate(r));
	assert.deepEqual(handles(), []);
	assert.equal(fetched, 0);
	assert.equal(se.state.state, "none");
});
