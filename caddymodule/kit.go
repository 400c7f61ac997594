package caddymodule

import (
	"bytes"
	"net/http"
	"time"

	"github.com/sessionguard/sessionguard/web"
)

// serveKit serves the frontend kit, an ES module, at <endpoints>/kit.js:
// no session needed, cacheable, revalidated by its ETag.
func (h *Handler) serveKit(w http.ResponseWriter, r *http.Request) error {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return nil
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/javascript; charset=utf-8")
	hdr.Set("Cache-Control", "public, max-age=3600")
	hdr.Set("ETag", web.KitETag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "kit.js", time.Time{}, bytes.NewReader(web.Kit))
	return nil
}
