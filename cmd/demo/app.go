package main

import (
	"encoding/json"
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
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
	mux    *http.ServeMux
}

// newApp returns the upstream app's handler. It mints tokens with secret
// that live for ttl.
func newApp(secret []byte, ttl time.Duration) http.Handler {
	a := &app{secret: secret, ttl: ttl, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /login", a.loginForm)
	a.mux.HandleFunc("POST /login", a.login)
	a.mux.HandleFunc("POST /signout", a.signout)
	a.mux.HandleFunc("GET /assets/style.css", a.style)
	a.mux.HandleFunc("GET /api/data", a.data)
	a.mux.HandleFunc("GET /api/poll", a.poll)
	return a.mux
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
	renderPage(w, homeTmpl, id)
}

// loginBanners are the messages for /login?reason=... (set by the
// gateway's redirect) and ?signed_out=1 (set by /signout).
var loginBanners = map[string]string{
	"session_expired": "Your session expired — please sign in again.",
	"session_revoked": "Your session was ended.",
}

func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := struct{ Banner, Error string }{Banner: loginBanners[q.Get("reason")]}
	if q.Get("signed_out") == "1" {
		data.Banner = "You have signed out."
	}
	w.Header().Set("Cache-Control", "no-store")
	renderPage(w, loginTmpl, data)
}

// validName limits user and account names to something that reads well
// in a URL of the admin API.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		http.Error(w, "cross-site login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	user := strings.TrimSpace(r.PostForm.Get("user"))
	account := strings.TrimSpace(r.PostForm.Get("account"))
	role := r.PostForm.Get("role")
	if !validName.MatchString(user) || !validName.MatchString(account) || (role != "member" && role != "owner") {
		w.WriteHeader(http.StatusUnprocessableEntity)
		renderPage(w, loginTmpl, struct{ Banner, Error string }{
			Error: "Enter a user and an account (letters, digits, . _ @ -) and pick a role.",
		})
		return
	}
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
	http.Redirect(w, r, "/", http.StatusSeeOther)
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

func (a *app) data(w http.ResponseWriter, r *http.Request) {
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
func (a *app) poll(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"notifications": 0})
}

func (a *app) style(w http.ResponseWriter, r *http.Request) {
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
`

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in — sessionguard demo</title>
<link rel="stylesheet" href="/assets/style.css"></head>
<body>
<h1>Sign in</h1>
{{with .Banner}}<p class="banner">{{.}}</p>{{end}}
{{with .Error}}<p class="banner error">{{.}}</p>{{end}}
<p>This demo trusts whoever you say you are: the app mints a JWT
(<code>sid</code>, <code>sub</code>, <code>acct</code>, <code>role</code>, <code>auth_time</code>)
and sets it as the <code>sg_token</code> cookie the gateway checks.</p>
<form method="post" action="/login">
<label>User <input name="user" value="alice" required maxlength="64"></label>
<label>Account <input name="account" value="acme" required maxlength="64"></label>
<label>Role <select name="role"><option>member</option><option>owner</option></select></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

var homeTmpl = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionguard demo</title>
<link rel="stylesheet" href="/assets/style.css"></head>
<body>
<h1>Hello, {{.User}}</h1>
<p>The gateway checked your session and told the app who you are:</p>
<table>
<tr><th>Session-User</th><td>{{.User}}</td></tr>
<tr><th>Session-Account</th><td>{{.Account}}</td></tr>
<tr><th>Session-Role</th><td>{{.Role}}</td></tr>
<tr><th>Session-Id-Hash</th><td><code>{{.SessionIDHash}}</code></td></tr>
</table>
<h2>Your session</h2>
<p id="state">Checking…</p>
<table>
<tr><th>Session-Expires-In</th><td id="expires">–</td></tr>
<tr><th>Session-Expiry-Reason</th><td id="reason">–</td></tr>
<tr><th>Session-Expiry-Warning</th><td id="warning">–</td></tr>
</table>
<button id="keepalive">Stay signed in</button>
<button id="api">Call /api/data</button>
<button id="logout">Sign out</button>
{{if eq .Role "owner"}}<p>As an owner you can see your account: <a href="/.session/account">/.session/account</a></p>{{end}}
<pre id="out" hidden></pre>
<form id="signout" method="post" action="/signout" hidden></form>
<script>
// GET /.session/status is passive: checking does not extend the session.
// Its response carries the same headers as every proxied response.
let left = null;
const $ = (id) => document.getElementById(id);
function show(res) {
  left = parseInt(res.headers.get("Session-Expires-In"), 10);
  $("reason").textContent = res.headers.get("Session-Expiry-Reason") || "–";
  const warning = res.headers.get("Session-Expiry-Warning") || "–";
  $("warning").textContent = warning;
  $("warning").className = warning;
  $("state").textContent = warning === "soon" ? "Your session ends soon." : "Your session is active.";
  tick();
}
function tick() {
  if (left === null) return;
  $("expires").textContent = left + " s";
}
async function ended(res) {
  left = null;
  let body = {};
  try { body = await res.json(); } catch (e) {}
  $("state").innerHTML = "";
  $("state").className = "now";
  $("state").append("Your session has ended (" + (body.reason || body.error || res.status) + "). ");
  const a = document.createElement("a");
  a.href = "/login?reason=" + encodeURIComponent(body.error === "session_revoked" ? "session_revoked" : "session_expired");
  a.textContent = "Sign in again";
  $("state").append(a);
}
async function status() {
  const res = await fetch("/.session/status", {cache: "no-store"});
  if (res.ok) show(res); else ended(res);
}
$("keepalive").onclick = async () => {
  const res = await fetch("/.session/keepalive", {method: "POST"});
  if (res.ok) show(res); else ended(res);
};
$("api").onclick = async () => {
  const res = await fetch("/api/data", {headers: {Accept: "application/json"}});
  $("out").hidden = false;
  $("out").textContent = res.status + "\n" + await res.text();
  if (res.ok) show(res); else ended(res);
};
$("logout").onclick = async () => {
  await fetch("/.session/logout", {method: "POST"});
  $("signout").submit();
};
setInterval(() => {
  if (left === null) return;
  if (left > 0) { left--; tick(); } else { status(); }
}, 1000);
setInterval(status, 15000);
status();
</script>
</body></html>
`))
