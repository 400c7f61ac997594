package main

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// appCookieName is the cookie app's session cookie, the one the
// gateway's second site reads (token cookie demo_sid, opaque mode).
const appCookieName = "demo_sid"

// maxAppSessions bounds the cookie app's session map; the oldest
// sessions are dropped beyond it.
const maxAppSessions = 10000

// cookieApp is the second demo upstream: a classic web app that knows
// nothing about JWTs, like a small Express or Rails app. It keeps its
// sessions in a map keyed by a random cookie value. At sign-in it tells
// the gateway whose session the new cookie is with the
// Session-Guard-Bind-* response headers; at sign-out it clears the
// cookie, which ends the session on the gateway too. The gateway
// enforces the idle and absolute limits on top of the app's own
// sessions and expires the cookie when they are reached.
type cookieApp struct {
	ttl    time.Duration
	client clientConfig
	mux    *http.ServeMux

	mu       sync.Mutex
	sessions map[string]appSession
}

// appSession is one of the cookie app's own sessions.
type appSession struct {
	User, Account, Role string
	Created, Expires    time.Time
}

// newCookieApp returns the cookie app's handler. Its own sessions live
// for ttl; the gateway usually ends them much earlier.
func newCookieApp(ttl time.Duration, client clientConfig) *cookieApp {
	a := &cookieApp{ttl: ttl, client: client, mux: http.NewServeMux(), sessions: map[string]appSession{}}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /security", a.security)
	a.mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { loginForm(w, r, true) })
	a.mux.HandleFunc("POST /login", a.login)
	a.mux.HandleFunc("POST /signout", a.signout)
	handleShared(a.mux)
	return a
}

func (a *cookieApp) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// session returns the app's own session of the request's cookie.
func (a *cookieApp) session(r *http.Request) (appSession, string, bool) {
	c, err := r.Cookie(appCookieName)
	if err != nil || c.Value == "" {
		return appSession{}, "", false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	if !ok || !time.Now().Before(s.Expires) {
		return appSession{}, "", false
	}
	return s, c.Value, true
}

// count returns the number of sessions the app holds.
func (a *cookieApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sessions)
}

// page renders a signed-in page: the app's own session is required, the
// gateway's identity headers are shown next to it.
func (a *cookieApp) page(w http.ResponseWriter, r *http.Request, render func(pageData)) {
	s, _, ok := a.session(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	data := a.client.page(identityOf(r))
	data.CookieApp, data.AppUser = true, s.User
	w.Header().Set("Cache-Control", "no-store")
	render(data)
}

func (a *cookieApp) home(w http.ResponseWriter, r *http.Request) {
	a.page(w, r, func(p pageData) { renderPage(w, homeTmpl, p) })
}

// security is the owners' account security page, as in the JWT app; the
// role is the one the app bound the session with.
func (a *cookieApp) security(w http.ResponseWriter, r *http.Request) {
	a.page(w, r, func(p pageData) {
		if p.Role != "owner" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
		}
		renderPage(w, securityTmpl, p)
	})
}

// login starts a session: a random id in the map and in the cookie, and
// the bind headers that tell the gateway whose session it is.
func (a *cookieApp) login(w http.ResponseWriter, r *http.Request) {
	f, ok := parseSignIn(w, r, true)
	if !ok {
		return
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		http.Error(w, "cannot sign in", http.StatusInternalServerError)
		return
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	a.mu.Lock()
	a.prune(now)
	a.sessions[id] = appSession{User: f.User, Account: f.Account, Role: f.Role, Created: now, Expires: now.Add(a.ttl)}
	a.mu.Unlock()

	// A session cookie (no Expires), as Express and Rails set by
	// default. Plain HTTP on loopback, so not Secure; behind TLS it must
	// be.
	http.SetCookie(w, &http.Cookie{
		Name: appCookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	// The gateway binds its session to this cookie and removes these
	// headers before the response leaves it.
	h := w.Header()
	h.Set("Session-Guard-Bind-User", f.User)
	h.Set("Session-Guard-Bind-Account", f.Account)
	h.Set("Session-Guard-Bind-Role", f.Role)
	h.Set("Session-Guard-Bind-Name", f.User)
	h.Set("Session-Guard-Bind-Email", f.User+"@"+f.Account+".example")
	http.Redirect(w, r, returnTo(r.PostForm.Get("return_to")), http.StatusSeeOther)
}

// signout ends the app's session and clears its cookie; the gateway sees
// the cleared cookie in the response and ends its session too.
func (a *cookieApp) signout(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "cross-site sign-out refused", http.StatusForbidden)
		return
	}
	if _, id, ok := a.session(r); ok {
		a.mu.Lock()
		delete(a.sessions, id)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: appCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// prune drops expired sessions and, beyond maxAppSessions, the oldest
// ones. Sessions the gateway ended stay until then: the browser no
// longer has their cookie. The caller holds a.mu.
func (a *cookieApp) prune(now time.Time) {
	for id, s := range a.sessions {
		if !now.Before(s.Expires) {
			delete(a.sessions, id)
		}
	}
	for len(a.sessions) >= maxAppSessions {
		var oldest string
		var at time.Time
		for id, s := range a.sessions {
			if oldest == "" || s.Created.Before(at) {
				oldest, at = id, s.Created
			}
		}
		delete(a.sessions, oldest)
	}
}
