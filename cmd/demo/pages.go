package main

import "html/template"

// The signed-in pages use session-expiry.js (package web, served at
// /assets/session-expiry.js) and nothing but the gateway's contract: the
// expiry headers, /.session/status, keepalive, logout and the owner
// endpoints. /assets/demo.js is the shared toast.
//
// Every page declares an empty icon (rel="icon" href="data:,"): the
// browser's own /favicon.ico request would otherwise pass the gateway as
// activity and quietly extend the idle window.

// toastHTML is the expiry toast both signed-in pages show.
const toastHTML = `<div id="toast" class="toast" role="status" aria-live="polite" hidden>
<p id="toast-text"></p>
<div class="toast-actions">
<button id="toast-stay" type="button" hidden>Stay signed in</button>
<a id="toast-signin" href="/login" hidden>Sign in now</a>
<button id="toast-dismiss" type="button" class="link" aria-label="Dismiss this warning">Dismiss</button>
</div>
</div>`

var homeTmpl = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionguard demo</title>
<link rel="stylesheet" href="/assets/style.css">
<link rel="icon" href="data:,"></head>
<body data-tick="{{.TickMS}}" data-poll="{{.PollMS}}"{{if .CookieApp}} data-app="cookie"{{end}}>
<nav><a href="/">Home</a>{{if eq .Role "owner"}} · <a href="/security">Account security</a>{{end}}</nav>
<h1>Hello, {{or .AppUser .User}}</h1>
{{if .CookieApp}}<p>This app knows nothing about JWTs: it keeps its own server-side session,
whose id is the <code>demo_sid</code> cookie. The gateway bound that cookie to you at
sign-in, checks its idle and absolute limits on every request, and tells the app:</p>
{{- else}}<p>The gateway checked your session and told the app who you are:</p>{{end}}
<table>
<tr><th>Session-User</th><td>{{.User}}</td></tr>
<tr><th>Session-Account</th><td>{{.Account}}</td></tr>
<tr><th>Session-Role</th><td>{{.Role}}</td></tr>
<tr><th>Session-Id-Hash</th><td><code>{{.SessionIDHash}}</code></td></tr>
</table>
<h2>Your session</h2>
<p>What <code>session-expiry.js</code> knows from the gateway's headers. Checking the
status (<code>GET /.session/status</code>) does not extend the session; calling the API does.</p>
<table>
<tr><th>State</th><td id="st-state">–</td></tr>
<tr><th>Reason</th><td id="st-reason">–</td></tr>
<tr><th>Idle expiry in</th><td id="st-idle">–</td></tr>
<tr><th>Absolute expiry in</th><td id="st-abs">–</td></tr>
<tr><th>Status polls</th><td id="st-polls">0</td></tr>
</table>
<button id="api" type="button">Call /api/data</button>
<button id="logout" type="button">Sign out</button>
<pre id="out" hidden></pre>
<form id="signout" method="post" action="/signout" hidden></form>
` + toastHTML + `
<script type="module">
import { se, markLeaving } from "/assets/demo.js";
const $ = (id) => document.getElementById(id);
$("api").onclick = async () => {
  const res = await se.fetch("/api/data", {headers: {Accept: "application/json"}});
  $("out").hidden = false;
  $("out").textContent = res.status + "\n" + await res.text();
};
$("logout").onclick = async () => {
  markLeaving();
  // The JWT app's sign-out only clears its cookie, so the page ends the
  // session on the gateway first. The cookie app ends its own session;
  // the gateway sees the cookie cleared and ends its session too.
  if (document.body.dataset.app !== "cookie") await se.fetch("/.session/logout", {method: "POST"});
  $("signout").submit();
};
</script>
</body></html>
`))

var securityTmpl = template.Must(template.New("security").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Account security — sessionguard demo</title>
<link rel="stylesheet" href="/assets/style.css">
<link rel="icon" href="data:,"></head>
<body data-tick="{{.TickMS}}" data-poll="{{.PollMS}}"{{if .CookieApp}} data-app="cookie"{{end}}>
<nav><a href="/">Home</a> · <a href="/security">Account security</a></nav>
<h1>Account security</h1>
{{if ne .Role "owner"}}<p class="banner error">Only the account's owners can manage its sessions.</p>{{else}}
<p>Account <strong>{{.Account}}</strong>. This page uses the gateway's owner endpoints
(<code>/.session/account</code>) and nothing else.</p>

<section>
<h2>Session policy</h2>
<p id="policy-now">Loading…</p>
<form id="policy" novalidate>
<fieldset>
<legend>Sign people out</legend>
<label><input type="radio" name="preset" value="strict"> Strict — after 15 minutes idle, 12 hours at most</label>
<label><input type="radio" name="preset" value="standard"> Standard — after 1 hour idle, 24 hours at most</label>
<label><input type="radio" name="preset" value="custom"> Custom</label>
<div id="custom" class="custom">
<label>Idle limit (minutes) <input id="idle" name="idle_minutes" inputmode="numeric" size="6" aria-describedby="err-idle_minutes hint-idle"></label>
<span id="hint-idle" class="hint"></span>
<span id="err-idle_minutes" class="field-error" role="alert"></span>
<label>Absolute limit (minutes) <input id="absolute" name="absolute_minutes" inputmode="numeric" size="6" aria-describedby="err-absolute_minutes hint-absolute"></label>
<span id="hint-absolute" class="hint"></span>
<span id="err-absolute_minutes" class="field-error" role="alert"></span>
</div>
<span id="err-preset" class="field-error" role="alert"></span>
</fieldset>
<button type="submit" id="save">Save policy</button> <span id="saved" role="status"></span>
</form>
</section>

<section>
<h2>Active users</h2>
<table id="users"><thead><tr><th>User</th><th>Sessions</th><th>Last sign-in</th></tr></thead><tbody></tbody></table>
<p id="revoke-msg" role="status"></p>
<button id="revoke-others" type="button" hidden>Sign out all other sessions</button>
<button id="revoke-all" type="button" class="danger">Sign out everyone, including me</button>
</section>
{{end}}
` + toastHTML + `
<script type="module">
import { se, markLeaving } from "/assets/demo.js";
const $ = (id) => document.getElementById(id);
const json = {"Content-Type": "application/json", Accept: "application/json"};
const form = $("policy");
if (form) {
  let account = null;
  const showCustom = () => { $("custom").hidden = form.preset.value !== "custom"; };
  form.addEventListener("change", showCustom);
  function renderPolicy(p) {
    const eff = p.effective, b = p.bounds;
    const preset = p.preset === "strict" || p.preset === "standard" ? p.preset : "custom";
    form.preset.value = preset;
    $("idle").value = eff.idle_minutes;
    $("absolute").value = eff.absolute_minutes;
    $("hint-idle").textContent = "between " + b.idle.min_minutes + " and " + b.idle.max_minutes;
    $("hint-absolute").textContent = "between " + b.absolute.min_minutes + " and " + b.absolute.max_minutes;
    $("policy-now").textContent = "Now: signed out after " + eff.idle_minutes + " min idle, " +
      eff.absolute_minutes + " min after sign-in at most (" + p.preset + "). Changes apply " +
      (p.apply === "immediately" ? "to every session right away." : "from each user's next sign-in.");
    showCustom();
  }
  function renderUsers(a) {
    const tbody = $("users").tBodies[0];
    tbody.replaceChildren();
    for (const u of a.active_users || []) {
      const tr = tbody.insertRow();
      tr.insertCell().textContent = (u.name || u.user_id) + (u.email ? " <" + u.email + ">" : "") + (u.you ? " (you)" : "");
      tr.insertCell().textContent = u.sessions;
      tr.insertCell().textContent = new Date(u.last_login_at).toLocaleString();
      if (u.you) tr.className = "you";
    }
    $("revoke-others").hidden = (a.sessions || []).length <= 1;
  }
  async function load() {
    const res = await se.fetch("/.session/account", {headers: {Accept: "application/json"}});
    if (!res.ok) { $("policy-now").textContent = "Cannot load the account (" + res.status + ")."; return; }
    account = await res.json();
    renderPolicy(account);
    renderUsers(account);
  }
  const minutes = (v) => /^\s*\d+\s*$/.test(v) ? Number(v) : (v.trim() === "" ? null : v);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    $("saved").textContent = "";
    const preset = form.preset.value;
    const body = preset === "custom"
      ? {idle_minutes: minutes($("idle").value), absolute_minutes: minutes($("absolute").value)}
      : {preset};
    const res = await se.fetch("/.session/account/policy", {method: "PATCH", headers: json, body: JSON.stringify(body)});
    const out = await res.json().catch(() => ({}));
    if (res.status === 422 && out.fields) {
      for (const [field, msg] of Object.entries(out.fields)) {
        const el = $("err-" + field);
        if (el) el.textContent = msg; else $("err-preset").textContent = field + ": " + msg;
        const input = form.elements[field];
        if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      }
      return;
    }
    if (!res.ok) { $("saved").textContent = "Not saved: " + (out.error_description || out.error || res.status); return; }
    renderPolicy(out);
    $("saved").textContent = "Saved.";
  });
  $("revoke-others").onclick = async () => {
    const res = await se.fetch("/.session/account/revoke", {method: "POST", headers: json, body: '{"scope":"others"}'});
    const out = await res.json().catch(() => ({}));
    $("revoke-msg").textContent = res.ok ? "Signed out " + out.revoked + " other session(s)." : "Failed: " + (out.error || res.status);
    await load();
  };
  $("revoke-all").onclick = async () => {
    markLeaving();
    const res = await se.fetch("/.session/account/revoke", {method: "POST", headers: json, body: '{"scope":"all"}'});
    if (res.ok) { location.assign("/login?reason=session_revoked"); return; }
    $("revoke-msg").textContent = "Failed: " + res.status;
  };
  load();
}
</script>
</body></html>
`))

// demoJS is /assets/demo.js: the tracker and the expiry toast of the
// signed-in pages.
const demoJS = `import { createSessionExpiry } from "/assets/session-expiry.js";

const $ = (id) => document.getElementById(id);
const cfg = document.body.dataset;
const opts = {};
if (Number(cfg.tick) > 0) opts.tickInterval = Number(cfg.tick);
if (Number(cfg.poll) > 0) opts.pollInterval = Number(cfg.poll);

export const se = createSessionExpiry(opts);
window.sessionExpiry = se; // for the console and the browser tests

let leaving = false;
// markLeaving stops the toast from navigating away on its own, for
// actions (sign out, sign everyone out) that navigate themselves.
export function markLeaving() { leaving = true; }

// loginURL is where a page goes when its session is over, with the
// banner of /login?reason=... (the one the gateway's redirect shows).
function loginURL(reason) {
  if (reason === "revoked") return "/login?reason=session_revoked";
  if (reason === "idle" || reason === "absolute") return "/login?reason=session_expired";
  return "/login";
}

const mmss = (s) => Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
const set = (id, v) => { const el = $(id); if (el) el.textContent = v; };

function render(s) {
  set("st-state", s.state);
  set("st-reason", s.reason ?? "–");
  set("st-idle", s.idleExpiresIn == null ? "–" : s.idleExpiresIn + " s");
  set("st-abs", s.absoluteExpiresIn == null ? "–" : s.absoluteExpiresIn + " s");
  set("st-polls", s.polls);
  const t = $("toast");
  if (s.state === "now") {
    t.hidden = true;
    // Straight to the login page with the reason. Not via "/" and the
    // gateway's redirect: with an opaque session cookie, the 401 that
    // told the tracker has already expired the cookie, so "/" would
    // reach the app as a stranger and lose the reason.
    if (!leaving) { leaving = true; location.assign(loginURL(s.reason)); }
    return;
  }
  const show = s.state === "soon" && !s.dismissed;
  t.hidden = !show;
  if (!show) return;
  const idle = s.reason === "idle";
  t.dataset.reason = s.reason;
  t.className = "toast " + (idle ? "toast-idle" : "toast-absolute");
  $("toast-text").textContent = idle
    ? "You will be signed out in " + mmss(s.expiresIn) + " because you have been inactive."
    : "Your session reaches its time limit in " + mmss(s.expiresIn) + ". Sign in again to keep working.";
  $("toast-stay").hidden = !idle;
  $("toast-signin").hidden = idle;
}

$("toast-stay").onclick = () => se.keepalive();
$("toast-dismiss").onclick = () => se.dismiss();
se.subscribe(render);
// the countdown in the toast, between the tracker's re-evaluations
setInterval(() => render(se.state), 1000);
`
