package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// CORSConfig lets frontends on other origins use the guarded site: the
// gateway answers their preflights itself and marks every answer to a
// listed origin, its own 401, 302, 403 and 503 included.
//
// Own code rather than a CORS library: the headers must be asserted
// again just before the response goes out, over any the upstream sent.
type CORSConfig struct {
	// Origins are the allowed origins, exactly as browsers send them
	// (scheme://host[:port]). Required.
	Origins []string `json:"origins,omitempty"`
	// Credentials adds Access-Control-Allow-Credentials: true, so that
	// browsers send cookies and read answers to credentialed requests.
	Credentials bool `json:"credentials,omitempty"`
	// MaxAge is how long browsers may cache a preflight's answer.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
}

// corsMethods are the methods a preflight may ask for.
const corsMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"

// validate checks that every origin is a bare scheme://host[:port].
func (c *CORSConfig) validate() error {
	if len(c.Origins) == 0 {
		return fmt.Errorf("cors: origins is required")
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("cors: origin %q: want scheme://host[:port]", o)
		}
	}
	if c.MaxAge < 0 {
		return fmt.Errorf("cors: max_age must not be negative")
	}
	return nil
}

// allowed reports whether origin is listed. Origins compare as browsers
// send them; a trailing slash in the configuration is ignored.
func (c *CORSConfig) allowed(origin string) bool {
	if origin == "" {
		return false
	}
	for _, o := range c.Origins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// handle answers a preflight (done=true), or returns the writer to use
// for the request: for a listed origin one that asserts the CORS
// headers on every response.
func (c *CORSConfig) handle(w http.ResponseWriter, r *http.Request) (_ http.ResponseWriter, done bool) {
	origin := r.Header.Get("Origin")
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if isPreflight(r) {
		hdr.Add("Vary", "Access-Control-Request-Method")
		hdr.Add("Vary", "Access-Control-Request-Headers")
		if c.allowed(origin) {
			c.apply(hdr, origin)
			hdr.Set("Access-Control-Allow-Methods", corsMethods)
			if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
				hdr.Set("Access-Control-Allow-Headers", rh)
			}
			if c.MaxAge > 0 {
				hdr.Set("Access-Control-Max-Age", strconv.FormatInt(int64(time.Duration(c.MaxAge)/time.Second), 10))
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return w, true
	}
	if !c.allowed(origin) {
		return w, false
	}
	c.apply(hdr, origin)
	return &corsWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, cors: c, origin: origin}, false
}

// apply sets the headers of an answer to a listed origin, replacing any
// the upstream sent, and exposes WWW-Authenticate besides the expiry
// headers.
func (c *CORSConfig) apply(hdr http.Header, origin string) {
	hdr.Set("Access-Control-Allow-Origin", origin)
	if c.Credentials {
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	if !headerListHas(hdr.Values("Vary"), "Origin") {
		hdr.Add("Vary", "Origin")
	}
	exposeHeaders(hdr)
	if !headerListHas(hdr.Values("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		hdr.Add("Access-Control-Expose-Headers", "WWW-Authenticate")
	}
}

// headerListHas reports whether a comma-separated header names name.
func headerListHas(values []string, name string) bool {
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// corsWriter asserts the CORS headers just before the response header
// is written.
type corsWriter struct {
	*caddyhttp.ResponseWriterWrapper
	cors        *CORSConfig
	origin      string
	wroteHeader bool
}

func (cw *corsWriter) WriteHeader(status int) {
	if !cw.wroteHeader {
		cw.wroteHeader = status >= 200
		cw.cors.apply(cw.ResponseWriterWrapper.Header(), cw.origin)
	}
	cw.ResponseWriterWrapper.WriteHeader(status)
}

func (cw *corsWriter) Write(b []byte) (int, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriterWrapper.Write(b)
}

// parseCORS reads a cors block:
//
//	cors {
//		origins <origin...>      # repeatable
//		credentials
//		max_age <duration>
//	}
func parseCORS(d *caddyfile.Dispenser) (*CORSConfig, error) {
	c := new(CORSConfig)
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key != "origins" {
			if err := keys.once(d, key); err != nil {
				return nil, err
			}
		}
		switch key {
		case "origins":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			c.Origins = append(c.Origins, args...)
		case "credentials":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.Credentials = true
		case "max_age":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if c.MaxAge, err = parseDur(d, v); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unrecognized cors option %q", key)
		}
	}
	if err := c.validate(); err != nil {
		return nil, d.Err(err.Error())
	}
	return c, nil
}
