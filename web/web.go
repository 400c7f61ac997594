// Package web holds sessionguard's browser kit, the npm package
// @sessionguard/session-expiry: session-expiry.js, a dependency-free ES
// module that reads the gateway's expiry headers and warns before a
// session ends, toast.js, the <session-expiry-toast> element, react.js,
// the useSessionExpiry hook, and their TypeScript declarations. Go
// programs (the gateway, the demo) serve the files from FS and Kit.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
)

// FS holds the package's modules and declarations.
//
//go:embed session-expiry.js session-expiry.d.ts toast.js toast.d.ts react.js react.d.ts
var FS embed.FS

// Kit is the module the gateway serves at <endpoints>/kit.js: the
// tracker and the toast element in one file, so that a page can import
// both without a build step. Neither file imports anything.
var Kit = func() []byte {
	core, _ := FS.ReadFile("session-expiry.js")
	toast, _ := FS.ReadFile("toast.js")
	return append(append(core, '\n'), toast...)
}()

// KitETag is Kit's entity tag: a hash of its content.
var KitETag = func() string {
	sum := sha256.Sum256(Kit)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}()
