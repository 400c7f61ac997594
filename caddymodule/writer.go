package caddymodule

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sessionguard/sessionguard/internal/token"
)

// sessionWriter wraps the response of a request passed upstream and,
// as Caddy's headers handler does, acts just before the header is
// written: it sets a valid session's expiry headers, replacing any the
// upstream sent, and in opaque mode binds or ends the session by what
// the response says (see bindOrEnd).
type sessionWriter struct {
	caddyhttp.ResponseWriterWrapper // by value: one allocation for both
	h                               *Handler
	r                               *http.Request

	expiry     expiry // a valid session's expiry headers, if withExpiry
	withExpiry bool
	cors       bool      // the request has an Origin: expose the expiry headers
	idv        [4]string // the request's identity header values, in one array

	bound   *token.Identity // opaque mode: the request's bound session, if any
	binding bool            // opaque mode: the response is yet to bind or end it

	wroteHeader bool
	drop        bool // the response was replaced; discard the body
}

func (h *Handler) newSessionWriter(w http.ResponseWriter, r *http.Request) *sessionWriter {
	return &sessionWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, h: h, r: r}
}

// setExpiry makes sw set e's headers just before the header is written.
func (sw *sessionWriter) setExpiry(e expiry, cors bool) {
	sw.expiry, sw.withExpiry, sw.cors = e, true, cors
}

// serve passes the request on through sw; in opaque mode it binds or
// ends the session even when the upstream wrote no header.
func (sw *sessionWriter) serve(next caddyhttp.Handler) error {
	sw.binding = sw.h.opaque != nil
	err := next.ServeHTTP(sw, sw.r)
	if sw.binding && err == nil {
		sw.bindOrEnd()
	}
	return err
}

func (sw *sessionWriter) WriteHeader(status int) {
	if sw.wroteHeader {
		return
	}
	// 1xx responses aren't final; just informational
	final := status < 100 || status > 199
	if final {
		sw.wroteHeader = true
	}
	if sw.withExpiry {
		sw.expiry.apply(sw.ResponseWriterWrapper.Header(), sw.cors)
	}
	if final && sw.binding && !sw.bindOrEnd() {
		return // replaced by an error response
	}
	if !final && sw.binding {
		sw.writeInformational(status)
		return
	}
	sw.ResponseWriterWrapper.WriteHeader(status)
}

// writeInformational sends a 1xx response without the bind headers,
// which stay in the header for the final response to bind with.
func (sw *sessionWriter) writeInformational(status int) {
	hdr := sw.ResponseWriterWrapper.Header()
	held := http.Header{}
	for name, vals := range hdr {
		if isBindHeader(name) {
			held[name] = vals
			delete(hdr, name)
		}
	}
	sw.ResponseWriterWrapper.WriteHeader(status)
	for name, vals := range held {
		hdr[name] = vals
	}
}

func (sw *sessionWriter) Write(b []byte) (int, error) {
	if !sw.wroteHeader {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.drop {
		return len(b), nil
	}
	return sw.ResponseWriterWrapper.Write(b)
}

// ReadFrom makes sure the header is handled before a body copied with
// io.Copy.
func (sw *sessionWriter) ReadFrom(src io.Reader) (int64, error) {
	if !sw.wroteHeader {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.drop {
		return io.Copy(io.Discard, src)
	}
	return sw.ResponseWriterWrapper.ReadFrom(src)
}

// FlushError makes sure the header is handled before a flush.
func (sw *sessionWriter) FlushError() error {
	if !sw.wroteHeader {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.drop {
		return nil
	}
	return http.NewResponseController(&sw.ResponseWriterWrapper).Flush()
}

// Flush implements http.Flusher.
func (sw *sessionWriter) Flush() { _ = sw.FlushError() }
