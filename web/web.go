// Package web holds sessionguard's browser kit: session-expiry.js, a
// dependency-free ES module that reads the gateway's expiry headers and
// warns before a session ends, and its TypeScript declarations. Go
// programs (such as the demo) can serve the files from FS.
package web

import "embed"

// FS holds session-expiry.js and session-expiry.d.ts.
//
//go:embed session-expiry.js session-expiry.d.ts
var FS embed.FS
