package main

import (
	"encoding/json"
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/web"
)

// cookieName is the cookie the app sets at login and the gateway reads
// (token cookie sg_token).
const cookieName = "sg_token"

// app is the small upstream application behind the gateway. It trusts
// the identity headers because only the gateway can reach it: it listens
// on a random loopback port, and the gateway removes client-sent copies.
// A real app must not be reachable around the gateway either.
type app struct {
	secret []byte
	ttl    time.Duration
	client clientConfig
	mux    *http.ServeMux
}

// clientConfig steers session-expiry.js on the demo's pages; zero
// values keep the module's defaults (re-evaluate every 30 s, poll the
// status after 60 s without a response).
type clientConfig struct {
	// Tick is how often the pages re-evaluate the deadlines.
	Tick time.Duration
	// Poll is how long a page stays quiet before it polls the status.
	Poll time.Duration
}

// pageData is what every signed-in page gets.
type pageData struct {
	identity
	// TickMS and PollMS are clientConfig in milliseconds; 0 is the
	// module's default.
	TickMS, PollMS int64
	// CookieApp marks the pages of the cookie app (cookieapp.go): they
	// sign out with the app alone, which clears its cookie.
	CookieApp bool
	// AppUser is who the cookie app's own session says the user is.
	AppUser string
}

// page is the pageData of a signed-in page with the gateway's identity.
func (c clientConfig) page(id identity) pageData {
	return pageData{identity: id, TickMS: c.Tick.Milliseconds(), PollMS: c.Poll.Milliseconds()}
}

// newApp returns the upstream app's handler. It mints tokens with secret
// that live for ttl.
func newApp(secret []byte, ttl time.Duration, client clientConfig) http.Handler {
	a := &app{secret: secret, ttl: ttl, client: client, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /security", a.security)
	a.mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { loginForm(w, r, false) })
	a.mux.HandleFunc("POST /login", a.login)
	a.mux.HandleFunc("POST /signout", a.signout)
	handleShared(a.mux)
	return a.mux
}

// handleShared adds what both demo apps serve alike: the browser kit,
// the demo's script and style sheet, and the API.
func handleShared(mux *http.ServeMux) {
	mux.HandleFunc("GET /assets/session-expiry.js", asset("session-expiry.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /assets/session-expiry.d.ts", asset("session-expiry.d.ts", "text/plain; charset=utf-8"))
	mux.HandleFunc("GET /assets/demo.js", serveDemoJS)
	mux.HandleFunc("GET /assets/style.css", serveStyle)
	mux.HandleFunc("GET /api/data", serveData)
	mux.HandleFunc("GET /api/poll", servePoll)
}

// identity is who the gateway says the caller is.
type identity struct {
	User, Account, Role, SessionIDHash string
}

func identityOf(r *http.Request) identity {
	return identity{
		User:          r.Header.Get("Session-User"),
		Account:       r.Header.Get("Session-Account"),
		Role:          r.Header.Get("Session-Role"),
		SessionIDHash: r.Header.Get("Session-Id-Hash"),
	}
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	if id.User == "" {
		// Not through the gateway (or no session): nothing to show.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	renderPage(w, homeTmpl, a.client.page(id))
}

// security is the account security page for owners. The gateway checks
// the role again on every /.session/account call the page makes.
func (a *app) security(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	if id.User == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if id.Role != "owner" {
		w.WriteHeader(http.StatusForbidden)
	}
	renderPage(w, securityTmpl, a.client.page(id))
}

// asset serves a file of the browser kit (package web).
func asset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := web.FS.ReadFile(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}

func serveDemoJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write([]byte(demoJS))
}

// banner is a message on the login page; Kind tells them apart (and
// styles them).
type banner struct{ Kind, Text string }

// loginBanners are the messages for /login?reason=... (set by the
// gateway's redirect and the pages' tracker) and ?signed_out=... (set by
// /signout and by "Sign out everyone, including me"): each case its own.
var loginBanners = map[string]banner{
	"session_expired": {"expired", "Your session expired — please sign in again."},
	"session_revoked": {"revoked", "Your account owner signed you out."},
	"1":               {"signed-out", "You have signed out."},
	"all":             {"signed-out", "You signed out everyone on the account, including yourself."},
}

// loginData fills loginTmpl.
type loginData struct {
	Banner   banner
	Error    string
	ReturnTo string
	// CookieApp explains the cookie app's sign-in instead of the JWT's.
	CookieApp bool
}

// returnTo is where a sign-in goes afterwards: a path on this site,
// else "/".
func returnTo(v string) string {
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") || strings.ContainsAny(v, "\r\n") {
		return "/"
	}
	return v
}

// loginForm serves the login page of either app.
func loginForm(w http.ResponseWriter, r *http.Request, cookieApp bool) {
	q := r.URL.Query()
	data := loginData{Banner: loginBanners[q.Get("reason")], CookieApp: cookieApp, ReturnTo: returnTo(q.Get("return_to"))}
	if b, ok := loginBanners[q.Get("signed_out")]; ok {
		data.Banner = b
	}
	w.Header().Set("Cache-Control", "no-store")
	renderPage(w, loginTmpl, data)
}

// validName limits user and account names to something that reads well
// in a URL of the admin API.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// signInForm is a posted login form.
type signInForm struct{ User, Account, Role string }

// parseSignIn reads and checks the login form of either app. When it
// returns false it has answered the request.
func parseSignIn(w http.ResponseWriter, r *http.Request, cookieApp bool) (signInForm, bool) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return signInForm{}, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return signInForm{}, false
	}
	f := signInForm{
		User:    strings.TrimSpace(r.PostForm.Get("user")),
		Account: strings.TrimSpace(r.PostForm.Get("account")),
		Role:    r.PostForm.Get("role"),
	}
	if !validName.MatchString(f.User) || !validName.MatchString(f.Account) || (f.Role != "member" && f.Role != "owner") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = loginTmpl.Execute(w, loginData{
			Error:     "Enter a user and an account (letters, digits, . _ @ -) and pick a role.",
			CookieApp: cookieApp,
		})
		return signInForm{}, false
	}
	return f, true
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	f, ok := parseSignIn(w, r, false)
	if !ok {
		return
	}
	user, account, role := f.User, f.Account, f.Role
	now := time.Now()
	tok, err := devtoken.Mint(a.secret, devtoken.Claims{
		Session: devtoken.NewSessionID(),
		User:    user,
		Account: account,
		Role:    role,
		Name:    user,
		Email:   user + "@" + account + ".example",
		LoginAt: now,
		Now:     now,
		TTL:     a.ttl,
	})
	if err != nil {
		http.Error(w, "cannot sign in", http.StatusInternalServerError)
		return
	}
	// Plain HTTP on loopback, so not Secure; behind TLS it must be.
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    tok,
		Path:     "/",
		Expires:  now.Add(a.ttl),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, returnTo(r.PostForm.Get("return_to")), http.StatusSeeOther)
}

// signout clears the token cookie. The page has already ended the
// session on the gateway with POST /.session/logout; the cookie is
// HttpOnly, so only a response can remove it.
func (a *app) signout(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "cross-site sign-out refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// serveData is the demo API: it echoes who the gateway says the caller
// is.
func serveData(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r)
	writeJSON(w, map[string]any{
		"message":         "hello from the upstream app",
		"user":            id.User,
		"account":         id.Account,
		"role":            id.Role,
		"session_id_hash": id.SessionIDHash,
		"time":            time.Now().UTC().Format(time.RFC3339),
	})
}

// poll is a background endpoint; the gateway's `passive /api/poll*`
// makes calls to it not count as activity.
func servePoll(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"notifications": 0})
}

func serveStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte(styleCSS))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func renderPage(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = t.Execute(w, data)
}

const styleCSS = `body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}table{border-collapse:collapse}td,th{text-align:left;padding:.25rem 1rem .25rem 0}
code{background:#f3f3f3;padding:0 .25rem}.banner{padding:.75rem 1rem;border-radius:.25rem;background:#fff4ce;margin:1rem 0}
.error{background:#fde7e9}.soon{color:#b35c00;font-weight:bold}.now{color:#c00;font-weight:bold}
label{display:block;margin:.5rem 0}input,select,button{font:inherit;padding:.25rem .5rem}
button{margin:.5rem .5rem 0 0}pre{background:#f3f3f3;padding:.75rem;overflow:auto}
.toast{position:fixed;right:1.5rem;bottom:1.5rem;max-width:24rem;padding:1rem 1.25rem;border-radius:.5rem;box-shadow:0 .25rem 1rem rgba(0,0,0,.2);border-left:.375rem solid}
.toast p{margin:0 0 .5rem}.toast-actions{display:flex;gap:.75rem;align-items:center}
.toast-idle{background:#fff4ce;border-color:#d97706;color:#5c3a00}
.toast-absolute{background:#e8f1fd;border-color:#2563eb;color:#133a72}
.toast-actions a{font-weight:bold}.toast-actions button{margin:0}
button.link{background:none;border:none;text-decoration:underline;cursor:pointer;color:inherit;padding:0}
button.danger{background:#b42318;color:#fff;border:1px solid #b42318;border-radius:.25rem}
nav{margin-bottom:1rem}fieldset{border:1px solid #ddd;border-radius:.25rem}.custom{margin-left:1.5rem}
.hint{color:#666;font-size:.875rem;display:block}.field-error{color:#b42318;display:block;font-size:.875rem}
tr.you td{font-weight:bold}.banner-expired{background:#fff4ce}.banner-revoked{background:#fde8e8;border-left:4px solid #b42318}
.banner-signed-out{background:#e8f1fd}
dialog{border:1px solid #b42318;border-radius:.5rem;max-width:28rem}dialog::backdrop{background:#0006}
.dialog-actions{display:flex;gap:.5rem;justify-content:flex-end}.duration{display:flex;gap:.5rem;align-items:center;margin-top:.5rem}[hidden]{display:none!important}
`

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in — sessionguard demo</title>
<link rel="stylesheet" href="/assets/style.css">
<link rel="icon" href="data:,"></head>
<body>
<h1>Sign in</h1>
{{with .Banner.Text}}<p class="banner banner-{{$.Banner.Kind}}" role="status">{{.}}</p>{{end}}
{{with .Error}}<p class="banner error">{{.}}</p>{{end}}
{{if .CookieApp}}<p>This demo trusts whoever you say you are. The app knows nothing about JWTs:
it keeps a classic server-side session and sets its random id as the
<code>demo_sid</code> cookie. Its login response tells the gateway whose session
it is with the <code>Session-Guard-Bind-*</code> headers, which the gateway removes.</p>
{{- else}}<p>This demo trusts whoever you say you are: the app mints a JWT
(<code>sid</code>, <code>sub</code>, <code>acct</code>, <code>role</code>, <code>auth_time</code>)
and sets it as the <code>sg_token</code> cookie the gateway checks.</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="return_to" value="{{.ReturnTo}}">
<label>User <input name="user" value="alice" required maxlength="64"></label>
<label>Account <input name="account" value="acme" required maxlength="64"></label>
<label>Role <select name="role"><option>member</option><option>owner</option></select></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))
