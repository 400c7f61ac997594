// The package as npm publishes it: its entries resolve through
// "exports", and npm pack works offline and ships exactly the modules
// and their declarations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

test("exports resolve by the package's name", async () => {
	const core = await import("@sessionguard/session-expiry");
	const react = await import("@sessionguard/session-expiry/react");
	const toast = await import("@sessionguard/session-expiry/toast");
	assert.equal(typeof core.createSessionExpiry, "function");
	assert.equal(typeof react.useSessionExpiry, "function");
	assert.equal(typeof toast.defineSessionExpiryToast, "function");
});

test("npm pack works offline", () => {
	const dir = mkdtempSync(join(tmpdir(), "sg-pack-"));
	try {
		const r = spawnSync("npm", ["pack", "--json", "--offline", "--pack-destination", dir], {
			cwd: new URL("..", import.meta.url),
			encoding: "utf8",
		});
		assert.equal(r.status, 0, r.stderr);
		const [info] = JSON.parse(r.stdout);
		assert.equal(info.name, "@sessionguard/session-expiry");
		const files = info.files.map((f) => f.path).sort();
		assert.deepEqual(files, [
			"README.md",
			"package.json",
			"react.d.ts",
			"react.js",
			"session-expiry.d.ts",
			"session-expiry.js",
			"toast.d.ts",
			"toast.js",
		]);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
});
