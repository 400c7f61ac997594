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
<label><input type="radio" name="preset" value="default"> <span id="default-label">Use the default</span></label>
<label><input type="radio" name="preset" value="strict"> Strict — after 15 minutes idle, 12 hours at most</label>
<label><input type="radio" name="preset" value="standard"> Standard — after 1 hour idle, 24 hours at most</label>
<label><input type="radio" name="preset" value="custom"> Custom</label>
<div id="custom" class="custom">
<div class="duration"><label for="idle">After inactivity of</label> <input id="idle" name="idle_minutes" inputmode="numeric" size="5" aria-describedby="err-idle_minutes hint-idle">
<select id="idle-unit" aria-label="Unit of the inactivity limit"><option value="1">minutes</option><option value="60">hours</option><option value="1440">days</option></select></div>
<span id="hint-idle" class="hint"></span>
<span id="err-idle_minutes" class="field-error"></span>
<div class="duration"><label for="absolute">At most, after signing in</label> <input id="absolute" name="absolute_minutes" inputmode="numeric" size="5" aria-describedby="err-absolute_minutes hint-absolute">
<select id="absolute-unit" aria-label="Unit of the time limit"><option value="1">minutes</option><option value="60">hours</option><option value="1440">days</option></select></div>
<span id="hint-absolute" class="hint"></span>
<span id="err-absolute_minutes" class="field-error"></span>
</div>
<span id="err-preset" class="field-error"></span>
</fieldset>
<button type="submit" id="save">Save policy</button> <span id="saved" role="status"></span>
</form>
</section>

<section>
<h2>Active users</h2>
<table id="users"><thead><tr><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Sessions</th><th scope="col">Last sign-in</th><th scope="col">Sign out</th></tr></thead><tbody></tbody></table>
<p id="revoke-msg" role="status"></p>
<button id="revoke-others" type="button" hidden>Sign out all other sessions</button>
<button id="revoke-all" type="button" class="danger">Sign out everyone, including me</button>
</section>
<dialog id="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-body">
<h2 id="confirm-title"></h2>
<p id="confirm-body"></p>
<div class="dialog-actions"><button id="confirm-cancel" type="button">Cancel</button> <button id="confirm-ok" type="button" class="danger"></button></div>
</dialog>
{{end}}
` + toastHTML + `
<script type="module">
import { se, markLeaving } from "/assets/demo.js";
const $ = (id) => document.getElementById(id);
const json = {"Content-Type": "application/json", Accept: "application/json"};
const form = $("policy");
if (form) {
  let account = null;
  // durations in the units people use: "12 hours", "3 days", "1 hour 30 minutes"
  const unitOf = (m) => m % 1440 === 0 ? 1440 : m % 60 === 0 ? 60 : 1;
  const plural = (n, w) => n + " " + w + (n === 1 ? "" : "s");
  const human = (m) => {
    const d = Math.floor(m / 1440), h = Math.floor(m % 1440 / 60), min = m % 60;
    return [d && plural(d, "day"), h && plural(h, "hour"), min && plural(min, "minute")].filter(Boolean).join(" ") || "0 minutes";
  };
  const ago = (t) => {
    const s = Math.max(0, Math.round((Date.now() - new Date(t)) / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return plural(Math.floor(s / 60), "minute") + " ago";
    if (s < 86400) return plural(Math.floor(s / 3600), "hour") + " ago";
    return plural(Math.floor(s / 86400), "day") + " ago";
  };
  const showCustom = () => { $("custom").hidden = form.preset.value !== "custom"; };
  form.addEventListener("change", showCustom);
  function setDuration(id, m) {
    const u = unitOf(m);
    $(id + "-unit").value = String(u);
    $(id).value = m / u;
  }
  function renderPolicy(p) {
    const eff = p.effective, b = p.bounds, o = p.override || {};
    const onDefault = o.idle_minutes == null && o.absolute_minutes == null;
    form.preset.value = onDefault ? "default" : (p.preset === "strict" || p.preset === "standard" ? p.preset : "custom");
    if (onDefault) $("default-label").textContent = "Use the default — after " + human(eff.idle_minutes) + " idle, " + human(eff.absolute_minutes) + " at most";
    setDuration("idle", eff.idle_minutes);
    setDuration("absolute", eff.absolute_minutes);
    $("hint-idle").textContent = "Between " + human(b.idle.min_minutes) + " and " + human(b.idle.max_minutes) + ".";
    $("hint-absolute").textContent = "Between " + human(b.absolute.min_minutes) + " and " + human(b.absolute.max_minutes) + ".";
    $("policy-now").textContent = "Now: people are signed out after " + human(eff.idle_minutes) + " without activity, and " +
      human(eff.absolute_minutes) + " after signing in at most" + (onDefault ? " (the default)" : "") + ". Changes apply " +
      (p.apply === "immediately" ? "to everyone right away." : "from each person's next sign-in.");
    showCustom();
  }
  function renderUsers(a) {
    const tbody = $("users").tBodies[0];
    tbody.replaceChildren();
    for (const u of a.active_users || []) {
      const tr = tbody.insertRow();
      tr.insertCell().textContent = (u.name || u.user_id) + (u.you ? " (you)" : "");
      tr.insertCell().textContent = u.email || "—";
      tr.insertCell().textContent = u.sessions;
      const when = tr.insertCell();
      when.textContent = ago(u.last_login_at);
      when.title = new Date(u.last_login_at).toLocaleString();
      const act = tr.insertCell();
      if (u.you) { tr.className = "you"; act.textContent = "—"; continue; }
      const who = u.name || u.user_id;
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "revoke-user";
      btn.textContent = "Sign out";
      btn.setAttribute("aria-label", "Sign out " + who);
      btn.onclick = async () => {
        if (!await confirmScope("Sign out " + who + "?", who + " will have to sign in again on every device (" + plural(u.sessions, "session") + ").", "Sign out " + who)) return;
        const res = await se.fetch("/.session/account/revoke", {method: "POST", headers: json, body: JSON.stringify({scope: "user", user_id: u.user_id})});
        const out = await res.json().catch(() => ({}));
        $("revoke-msg").textContent = res.ok ? "Signed out " + who + " (" + plural(out.revoked, "session") + ")." : "Could not sign " + who + " out; please try again.";
        await load();
      };
      act.append(btn);
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
  // readDuration returns minutes, or an error in the owner's words.
  function readDuration(id, what, range) {
    const v = $(id).value.trim(), unit = Number($(id + "-unit").value);
    if (v === "") return {error: "Enter how long, for " + what + "."};
    if (!/^\d+$/.test(v) || Number(v) === 0) return {error: "Enter a whole number greater than zero."};
    const m = Number(v) * unit;
    if (m < range.min_minutes || m > range.max_minutes) return {error: "Choose between " + human(range.min_minutes) + " and " + human(range.max_minutes) + "."};
    return {minutes: m};
  }
  function showErrors(errs) {
    for (const [field, msg] of Object.entries(errs)) {
      const el = $("err-" + field) || $("err-preset");
      el.textContent = msg;
      const input = form.elements[field];
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
    }
    const first = form.querySelector("[aria-invalid]");
    if (first) first.focus();
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    $("saved").textContent = "";
    const preset = form.preset.value;
    let body = {preset};
    if (preset === "default") body = {idle_minutes: null, absolute_minutes: null};
    if (preset === "custom") {
      const idle = readDuration("idle", "the inactivity limit", account.bounds.idle);
      const abs = readDuration("absolute", "the time limit", account.bounds.absolute);
      const errs = {};
      if (idle.error) errs.idle_minutes = idle.error;
      if (abs.error) errs.absolute_minutes = abs.error;
      if (!idle.error && !abs.error && idle.minutes > abs.minutes) errs.idle_minutes = "The inactivity limit cannot be longer than the time limit (" + human(abs.minutes) + ").";
      if (Object.keys(errs).length) { showErrors(errs); return; }
      body = {idle_minutes: idle.minutes, absolute_minutes: abs.minutes};
    }
    const res = await se.fetch("/.session/account/policy", {method: "PATCH", headers: json, body: JSON.stringify(body)});
    const out = await res.json().catch(() => ({}));
    if (res.status === 422 && out.fields) {
      // the gateway's bounds may be stricter than this page knew
      const errs = {};
      for (const f of Object.keys(out.fields)) errs[f] = "This value is not allowed for your account. Choose another.";
      showErrors(errs);
      return;
    }
    if (!res.ok) { $("saved").textContent = "Not saved: please try again in a moment."; return; }
    renderPolicy(out);
    $("saved").textContent = "Saved.";
  });
  // confirm asks in a modal whose title, text and button name the scope.
  function confirmScope(title, body, ok) {
    const d = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-body").textContent = body;
    $("confirm-ok").textContent = ok;
    const opener = document.activeElement;
    d.showModal();
    $("confirm-cancel").focus();
    return new Promise((resolve) => {
      const done = (v) => () => { d.close(); resolve(v); };
      $("confirm-ok").onclick = done(true);
      $("confirm-cancel").onclick = done(false);
      d.onclose = () => { resolve(false); if (opener && opener.isConnected) opener.focus(); };
    });
  }
  $("revoke-others").onclick = async () => {
    const n = (account.sessions || []).length - 1;
    if (!await confirmScope("Sign out all other sessions?", "Everyone on the account, and you on your other devices, will have to sign in again (" + plural(n, "session") + "). This browser stays signed in.", "Sign out " + plural(n, "session"))) return;
    const res = await se.fetch("/.session/account/revoke", {method: "POST", headers: json, body: '{"scope":"others"}'});
    const out = await res.json().catch(() => ({}));
    $("revoke-msg").textContent = res.ok ? "Signed out " + plural(out.revoked, "other session") + "." : "Could not sign them out; please try again.";
    await load();
  };
  $("revoke-all").onclick = async () => {
    if (!await confirmScope("Sign out everyone, including you?", "Every session of the account ends now, this one too. Everyone, you included, will have to sign in again.", "Sign out everyone")) return;
    markLeaving();
    const res = await se.fetch("/.session/account/revoke", {method: "POST", headers: json, body: '{"scope":"all"}'});
    if (res.ok) { location.assign("/login?signed_out=all"); return; }
    $("revoke-msg").textContent = "Could not sign everyone out; please try again.";
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
// It asks the login to return here afterwards.
function loginURL(reason) {
  const back = "return_to=" + encodeURIComponent(location.pathname + location.search);
  if (reason === "revoked") return "/login?reason=session_revoked&" + back;
  if (reason === "idle" || reason === "absolute") return "/login?reason=session_expired&" + back;
  return "/login?" + back;
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
  $("toast-signin").href = loginURL(null);
}

$("toast-stay").onclick = () => se.keepalive();
$("toast-dismiss").onclick = () => se.dismiss();
se.subscribe(render);
// the countdown in the toast, between the tracker's re-evaluations
setInterval(() => render(se.state), 1000);
`
