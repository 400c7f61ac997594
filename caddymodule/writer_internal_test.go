package caddymodule

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

// writeBody are the ways an upstream sends its body: each must let the
// writer act on the header before it goes out.
var writeBody = map[string]func(w http.ResponseWriter, body string){
	"write": func(w http.ResponseWriter, body string) { _, _ = w.Write([]byte(body)) },
	"readfrom": func(w http.ResponseWriter, body string) {
		// a reader without WriteTo, so that io.Copy calls w.ReadFrom
		_, _ = io.Copy(w, struct{ io.Reader }{strings.NewReader(body)})
	},
	"flush": func(w http.ResponseWriter, body string) {
		_ = http.NewResponseController(w).Flush()
		_, _ = w.Write([]byte(body))
	},
}

// TestSessionWriterExpiryHeaders: the expiry headers replace the
// upstream's however the body is sent.
func TestSessionWriterExpiryHeaders(t *testing.T) {
	for name, send := range writeBody {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			sw := (&Handler{}).newSessionWriter(rec, httptest.NewRequest("GET", "/", nil))
			sw.setExpiry(expiry{values: [5]string{"60", "60", "120", "none", "idle"}}, false)
			err := sw.serve(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Session-Expires-In", "999")
				send(w, "upstream body")
				return nil
			}))
			res := rec.Result()
			if err != nil || res.StatusCode != 200 || rec.Body.String() != "upstream body" {
				t.Fatalf("err %v, status %d, body %q", err, res.StatusCode, rec.Body)
			}
			if got := res.Header.Get("Session-Expires-In"); got != "60" {
				t.Fatalf("Session-Expires-In %q, want the gateway's 60", got)
			}
		})
	}
}

// TestSessionWriterExpiryEditedInPlace: an upstream that edits the
// expiry values set before it ran, in place or by appending, gets the
// gateway's values back; one that leaves them alone keeps them as they are.
func TestSessionWriterExpiryEditedInPlace(t *testing.T) {
	e := expiry{values: [5]string{"60", "60", "120", "none", "idle"}}
	edits := map[string]func(http.Header){
		"none":     func(http.Header) {},
		"in place": func(h http.Header) { h["Session-Expiry-Reason"][0] = "absolute" },
		"append":   func(h http.Header) { h.Add("Session-Idle-Expires-In", "999") },
		"deleted":  func(h http.Header) { h.Del("Session-Absolute-Expires-In") },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			sw := (&Handler{}).newSessionWriter(rec, httptest.NewRequest("GET", "/", nil))
			e.apply(rec.Header(), false)
			sw.setExpiry(e, false)
			err := sw.serve(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				edit(w.Header())
				w.WriteHeader(http.StatusOK)
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			got := rec.Result().Header
			for i, n := range exposedHeaders {
				if v := got[n]; len(v) != 1 || v[0] != e.values[i] {
					t.Errorf("%s: %q, want [%s]", n, v, e.values[i])
				}
			}
		})
	}
}

// failingOpaque is an opaque store that is down.
type failingOpaque struct{}

func (failingOpaque) Lookup(context.Context, *store.TouchRequest) (store.OpaqueResult, error) {
	return store.OpaqueResult{}, store.ErrUnavailable
}

func (failingOpaque) Bind(context.Context, *store.TouchRequest) (store.OpaqueResult, error) {
	return store.OpaqueResult{}, store.ErrUnavailable
}

// TestSessionWriterFailedBind: a bind the store cannot record replaces
// the upstream's response with a 503 and discards its body, however the
// body is sent, and also when the upstream sends none.
func TestSessionWriterFailedBind(t *testing.T) {
	h := &Handler{
		app:     &App{opaqueStore: failingOpaque{}, now: func() time.Time { return time.Unix(1e9, 0) }},
		sources: []token.Source{{Kind: token.SourceCookie, Name: "sid"}},
		logger:  zap.NewNop(),
		opaque:  &opaqueState{cookie: "sid", path: "/", key: []byte(strings.Repeat("k", 32))},
	}
	cases := map[string]func(w http.ResponseWriter, body string){"no body": nil}
	for name, send := range writeBody {
		cases[name] = send
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := h.newSessionWriter(rec, httptest.NewRequest("GET", "/login", nil)).serve(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Set-Cookie", "sid=fresh; Path=/")
				w.Header().Set("Session-Guard-Bind-User", "alice")
				w.Header().Set("Session-Guard-Bind-Account", "acme")
				if send != nil {
					send(w, "welcome alice")
				}
				return nil
			}))
			res := rec.Result()
			if err != nil || res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Fatalf("err %v, status %d, header %v; want a 503 with Retry-After", err, res.StatusCode, res.Header)
			}
			if strings.Contains(rec.Body.String(), "alice") || res.Header.Get("Set-Cookie") != "" || res.Header.Get("Session-Guard-Bind-User") != "" {
				t.Fatalf("upstream response leaked: header %v, body %q", res.Header, rec.Body)
			}
		})
	}
}

// infoRecorder keeps a copy of the header sent with each 1xx response.
type infoRecorder struct {
	*httptest.ResponseRecorder
	informational []http.Header
}

func (r *infoRecorder) WriteHeader(status int) {
	if status >= 100 && status < 200 {
		r.informational = append(r.informational, r.Header().Clone())
		return
	}
	r.ResponseRecorder.WriteHeader(status)
}

// TestSessionWriterInformational: in opaque mode, bind headers set before
// a 103 Early Hints never go out with it, and still bind (here: fail to,
// the store being down) with the final response.
func TestSessionWriterInformational(t *testing.T) {
	h := &Handler{
		app:     &App{opaqueStore: failingOpaque{}, now: func() time.Time { return time.Unix(1e9, 0) }},
		sources: []token.Source{{Kind: token.SourceCookie, Name: "sid"}},
		logger:  zap.NewNop(),
		opaque:  &opaqueState{cookie: "sid", path: "/", key: []byte(strings.Repeat("k", 32))},
	}
	rec := &infoRecorder{ResponseRecorder: httptest.NewRecorder()}
	err := h.newSessionWriter(rec, httptest.NewRequest("GET", "/login", nil)).serve(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Session-Guard-Bind-User", "alice")
		w.Header().Set("session_guard_bind_account", "acme")
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Set-Cookie", "sid=fresh; Path=/")
		_, _ = w.Write([]byte("welcome alice"))
		return nil
	}))
	if err != nil || len(rec.informational) != 1 {
		t.Fatalf("err %v, %d informational responses, want 1", err, len(rec.informational))
	}
	early := rec.informational[0]
	if early.Get("Link") == "" {
		t.Fatalf("103 lost the upstream's Link header: %v", early)
	}
	for name := range early {
		if isBindHeader(name) {
			t.Fatalf("103 carried bind header %s: %v", name, early)
		}
	}
	if res := rec.Result(); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("final status %d, want 503: the bind headers must still reach the final response", res.StatusCode)
	}
}
