// Prints the size of each entry minified (terser) and gzipped.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { minify } from "terser";

for (const f of ["session-expiry.js", "react.js", "toast.js"]) {
	const src = readFileSync(new URL("../" + f, import.meta.url), "utf8");
	const { code } = await minify(src, { module: true, compress: true, mangle: true });
	console.log(`${f}: ${src.length} B source, ${code.length} B minified, ${gzipSync(code, { level: 9 }).length} B min+gz`);
}
