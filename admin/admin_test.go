package admin_test

import (
	"context"
	"encoding/json"
	"github.com/sessionguard/sessionguard/admin"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/testredis"
)

func TestRoutes(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)

		var health map[string]string
		e.admin(t, http.MethodGet, "/session_guard/health", "", 200).JSON(t, &health)
		if health["store"] != "ok" {
			t.Fatalf("health %v", health)
		}

		var defaults struct {
			DefaultPreset string `json:"default_preset"`
			Presets       map[string]struct {
				Idle     int64 `json:"idle_minutes"`
				Absolute int64 `json:"absolute_minutes"`
			} `json:"presets"`
			Bounds struct {
				Idle struct {
					Min int64 `json:"min_minutes"`
					Max int64 `json:"max_minutes"`
				} `json:"idle"`
			} `json:"bounds"`
			Apply      string `json:"apply"`
			WarnBefore int64  `json:"warn_before_seconds"`
		}
		e.admin(t, http.MethodGet, "/session_guard/policy", "", 200).JSON(t, &defaults)
		if defaults.DefaultPreset != "strict" || defaults.Presets["strict"].Idle != 15 || defaults.Presets["standard"].Absolute != 1440 ||
			defaults.Bounds.Idle.Min != 5 || defaults.Bounds.Idle.Max != 43200 || defaults.Apply != "next_login" || defaults.WarnBefore != 300 {
			t.Fatalf("defaults %+v", defaults)
		}

		raw := e.admin(t, http.MethodGet, acctPath("acme", "policy"), "", 200).Body
		want := `{"account":"acme","override":{"idle_minutes":null,"absolute_minutes":null,"max_sessions_per_user":null,"on_limit":null},` +
			`"effective":{"idle_minutes":15,"absolute_minutes":720,"max_sessions_per_user":null,"on_limit":"evict_oldest"},"preset":"strict",` +
			`"bounds":{"idle":{"min_minutes":5,"max_minutes":43200},"absolute":{"min_minutes":15,"max_minutes":129600},"sessions":{"min":1,"max":null}},"apply":"next_login"}`
		if strings.TrimSpace(string(raw)) != want {
			t.Fatalf("policy view\n got %s\nwant %s", raw, want)
		}

		// a session, listed with name and email from the claims
		e.login(t, tok{sid: "a1", user: "alice", acct: "acme"})
		sv := e.sessions(t, "acme")
		if len(sv.Sessions) != 1 || sv.Sessions[0].Hash != e.hash("a1") || len(sv.ActiveUsers) != 1 ||
			sv.ActiveUsers[0].Name != "Name alice" || sv.ActiveUsers[0].Email != "alice@example.com" || sv.ActiveUsers[0].Sessions != 1 {
			t.Fatalf("sessions %+v", sv)
		}
		e.login(t, tok{sid: "a2", user: "alice", acct: "acme"})
		var p1, p2 sessionsView
		e.admin(t, http.MethodGet, acctPath("acme", "sessions")+"?limit=1", "", 200).JSON(t, &p1)
		e.admin(t, http.MethodGet, acctPath("acme", "sessions")+"?limit=1&cursor="+p1.NextCursor, "", 200).JSON(t, &p2)
		if len(p1.Sessions) != 1 || len(p2.Sessions) != 1 || p1.Sessions[0].Hash == p2.Sessions[0].Hash || p2.ActiveUsers[0].Sessions != 2 {
			t.Fatalf("pages %+v %+v", p1, p2)
		}
		e.admin(t, http.MethodGet, acctPath("acme", "sessions")+"?cursor=x", "", 400)
		if n := e.revoke(t, "acme", `{"scope":"all"}`); n != 2 {
			t.Fatalf("revoked %d", n)
		}
		if evs := e.audit(t, "acme"); len(evs) != 1 || evs[0].Type != "sessions.revoke" || evs[0].Actor != "admin" {
			t.Fatalf("audit %+v", evs)
		}

		// routing errors
		for _, tc := range []struct {
			method, path string
			status       int
			allow        string
		}{
			{http.MethodGet, "/session_guard/nope", 404, ""},
			{http.MethodGet, "/session_guard/accounts/acme/nope", 404, ""},
			{http.MethodGet, "/session_guard/accounts/acme/policy/extra", 404, ""},
			{http.MethodGet, "/session_guard/accounts/acme", 404, ""},
			{http.MethodGet, "/session_guard/accounts/a%7Fb/policy", 400, ""},
			{http.MethodGet, "/session_guard/accounts/a%0Ab/policy", 400, ""},
			{http.MethodGet, "/session_guard/accounts/a%00b/policy", 400, ""},
			{http.MethodGet, "/session_guard/accounts/" + strings.Repeat("x", 257) + "/policy", 400, ""},
			{http.MethodPost, "/session_guard/policy", 405, "GET"},
			{http.MethodDelete, "/session_guard/health", 405, "GET"},
			{http.MethodPut, acctPath("acme", "policy"), 405, "GET, PATCH"},
			{http.MethodGet, acctPath("acme", "revoke"), 405, "POST"},
			{http.MethodPost, acctPath("acme", "sessions"), 405, "GET"},
			{http.MethodDelete, acctPath("acme", "audit"), 405, "GET"},
			{http.MethodGet, acctPath("acme", "audit") + "?limit=0", 400, ""},
			{http.MethodGet, acctPath("acme", "audit") + "?limit=1001", 400, ""},
			{http.MethodGet, acctPath("acme", "audit") + "?limit=abc", 400, ""},
			{http.MethodGet, acctPath("acme", "audit") + "?limit=1&limit=2", 400, ""},
		} {
			r := e.AdminDo(t, tc.method, tc.path, nil)
			if r.StatusCode != tc.status {
				t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, r.StatusCode, tc.status, r.Body)
				continue
			}
			if got := r.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			}
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil || body["error"] == nil {
				t.Errorf("%s %s: body %s is not a JSON error", tc.method, tc.path, r.Body)
			}
		}

		// path-escaped account ids are opaque and distinct
		odd := "a/b {c}:*"
		e.patch(t, odd, `{"idle_minutes":30}`, 200)
		if v := e.policy(t, odd); v.Account != odd || !eqp(v.Override.Idle, ptr(30)) {
			t.Fatalf("odd account %+v", v)
		}
		if v := e.policy(t, "a"); v.Override.Idle != nil {
			t.Fatal("a/b leaked into a")
		}
		long := strings.Repeat("y", 256)
		e.patch(t, long, `{"idle_minutes":30}`, 200)
	})
}

func TestPatchValidation(t *testing.T) {
	nested := `{"idle_minutes":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`
	big := `{"preset":"` + strings.Repeat("a", 65<<10) + `"}`
	tests := []struct {
		name   string
		pre    string
		body   string
		ctype  string
		status int
		field  string // must carry a message (422)
		idle   *int64 // override after a success
		abs    *int64
	}{
		{name: "idle", body: `{"idle_minutes":30}`, status: 200, idle: ptr(30)},
		{name: "absolute", body: `{"absolute_minutes":600}`, status: 200, abs: ptr(600)},
		{name: "both", body: `{"idle_minutes":30,"absolute_minutes":600}`, status: 200, idle: ptr(30), abs: ptr(600)},
		{name: "null clears", pre: `{"idle_minutes":30,"absolute_minutes":600}`, body: `{"idle_minutes":null}`, status: 200, abs: ptr(600)},
		{name: "null clears both", pre: `{"idle_minutes":30,"absolute_minutes":600}`, body: `{"idle_minutes":null,"absolute_minutes":null}`, status: 200},
		{name: "absent leaves alone", pre: `{"idle_minutes":30}`, body: `{"absolute_minutes":600}`, status: 200, idle: ptr(30), abs: ptr(600)},
		{name: "no-op", pre: `{"idle_minutes":30}`, body: `{}`, status: 200, idle: ptr(30)},
		{name: "preset", body: `{"preset":"standard"}`, status: 200, idle: ptr(60), abs: ptr(1440)},
		{name: "charset param", body: `{"idle_minutes":30}`, ctype: "application/json; charset=utf-8", status: 200, idle: ptr(30)},
		{name: "negative", body: `{"idle_minutes":-5}`, status: 422, field: "idle_minutes"},
		{name: "zero", body: `{"idle_minutes":0}`, status: 422, field: "idle_minutes"},
		{name: "fraction", body: `{"idle_minutes":1.5}`, status: 422, field: "idle_minutes"},
		{name: "string", body: `{"idle_minutes":"30"}`, status: 422, field: "idle_minutes"},
		{name: "exponent", body: `{"absolute_minutes":1e18}`, status: 422, field: "absolute_minutes"},
		{name: "bool", body: `{"absolute_minutes":true}`, status: 422, field: "absolute_minutes"},
		{name: "below bounds", body: `{"idle_minutes":4}`, status: 422, field: "idle_minutes"},
		{name: "above bounds", body: `{"absolute_minutes":129601}`, status: 422, field: "absolute_minutes"},
		// partial-override invariant, both directions
		{name: "idle above inherited absolute", body: `{"idle_minutes":721}`, status: 422, field: "idle_minutes"},
		{name: "absolute below inherited idle", body: `{"absolute_minutes":14}`, status: 422, field: "absolute_minutes"},
		{name: "absolute below overridden idle", pre: `{"idle_minutes":120}`, body: `{"absolute_minutes":60}`, status: 422, field: "absolute_minutes", idle: ptr(120)},
		{name: "idle above overridden absolute", pre: `{"absolute_minutes":60}`, body: `{"idle_minutes":90}`, status: 422, field: "idle_minutes", abs: ptr(60)},
		{name: "unknown preset", body: `{"preset":"lax"}`, status: 422, field: "preset"},
		{name: "preset and minutes", body: `{"preset":"strict","absolute_minutes":600}`, status: 422, field: "preset"},
		{name: "session limit", body: `{"max_sessions_per_user":3,"on_limit":"deny"}`, status: 200},
		{name: "session limit cleared", pre: `{"max_sessions_per_user":3}`, body: `{"max_sessions_per_user":null,"on_limit":null}`, status: 200},
		{name: "session limit zero", body: `{"max_sessions_per_user":0}`, status: 422, field: "max_sessions_per_user"},
		{name: "session limit string", body: `{"max_sessions_per_user":"3"}`, status: 422, field: "max_sessions_per_user"},
		{name: "on_limit unknown", body: `{"on_limit":"kick"}`, status: 422, field: "on_limit"},
		{name: "preset and limit", body: `{"preset":"strict","on_limit":"deny"}`, status: 422, field: "preset"},
		{name: "unknown field", body: `{"idle":30}`, status: 400},
		{name: "nested", body: nested, status: 400},
		{name: "not json", body: `idle=30`, status: 400},
		{name: "wrong content type", body: `{"idle_minutes":30}`, ctype: "text/plain", status: 415},
		{name: "form content type", body: `{"idle_minutes":30}`, ctype: "application/x-www-form-urlencoded", status: 415},
		{name: "65 KiB body", body: big, status: 413},
	}
	eachStore(t, func(t *testing.T, b backend) {
		e := start(t, b)
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				account := "acct-" + string(rune('a'+i%26)) + tc.name
				if tc.pre != "" {
					e.patch(t, account, tc.pre, 200)
				}
				before := len(e.audit(t, account))
				var hdr []string
				if tc.ctype != "" {
					hdr = []string{"Content-Type", tc.ctype}
				}
				r := e.admin(t, http.MethodPatch, acctPath(account, "policy"), tc.body, tc.status, hdr...)
				after := len(e.audit(t, account))
				var body map[string]any
				r.JSON(t, &body)
				switch tc.status {
				case 200:
					if after != before+1 {
						t.Fatalf("%d audit events for one PATCH, want exactly 1", after-before)
					}
				case 422:
					fields, _ := body["fields"].(map[string]any)
					if body["error"] != "validation_failed" || fields[tc.field] == nil || fields[tc.field] == "" {
						t.Fatalf("422 body %s lacks a message for %s", r.Body, tc.field)
					}
					if after != before {
						t.Fatal("a rejected PATCH wrote an audit event")
					}
				default:
					if s, _ := body["error"].(string); s == "" {
						t.Fatalf("error body %s", r.Body)
					}
					if after != before {
						t.Fatal("a rejected PATCH wrote an audit event")
					}
				}
				v := e.policy(t, account)
				if !eqp(v.Override.Idle, tc.idle) || !eqp(v.Override.Absolute, tc.abs) {
					t.Fatalf("override idle=%s absolute=%s, want %s %s", show(v.Override.Idle), show(v.Override.Absolute), show(tc.idle), show(tc.abs))
				}
			})
		}
	})
}

func TestAuditEvents(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)
		e.patch(t, "acme", `{"idle_minutes":30}`, 200)
		e.Clock.Advance(time.Minute)
		e.admin(t, http.MethodPatch, acctPath("acme", "policy"), `{"absolute_minutes":60}`, 200, admin.ActorHeader, "ops-bob")
		evs := e.audit(t, "acme")
		if len(evs) != 2 {
			t.Fatalf("%d events, want 2", len(evs))
		}
		ev := evs[0]
		if ev.Type != "policy.update" || ev.Actor != "ops-bob" || ev.Account != "acme" || ev.Time.Sub(e.Clock.Now()).Abs() > time.Second {
			t.Fatalf("event %+v", ev)
		}
		none := `"max_sessions_per_user":null,"on_limit":null`
		unlimited := `"max_sessions_per_user":null,"on_limit":"evict_oldest"`
		want := `{"old":{"idle_minutes":30,"absolute_minutes":null,` + none + `},"new":{"idle_minutes":30,"absolute_minutes":60,` + none + `},` +
			`"effective_old":{"idle_minutes":30,"absolute_minutes":720,` + unlimited + `},"effective_new":{"idle_minutes":30,"absolute_minutes":60,` + unlimited + `}}`
		if string(ev.Data) != want {
			t.Fatalf("data\n got %s\nwant %s", ev.Data, want)
		}
		if evs[1].Actor != "admin" {
			t.Fatalf("default actor %q", evs[1].Actor)
		}
		// limit and order
		var out struct {
			Events []store.Event `json:"events"`
		}
		e.admin(t, http.MethodGet, acctPath("acme", "audit")+"?limit=1", "", 200).JSON(t, &out)
		if len(out.Events) != 1 || out.Events[0].ID != ev.ID {
			t.Fatalf("limit=1: %+v", out.Events)
		}
		// a long actor is cut to 128 bytes
		e.admin(t, http.MethodPatch, acctPath("acme", "policy"), `{}`, 200, admin.ActorHeader, strings.Repeat("z", 300))
		if got := e.audit(t, "acme")[0].Actor; got != strings.Repeat("z", 128) {
			t.Fatalf("actor %d bytes", len(got))
		}
		// a revocation names the session by its hash, whatever the
		// credential was
		e.login(t, tok{sid: "s1", user: "alice", acct: "acme"})
		e.admin(t, http.MethodPost, acctPath("acme", "revoke"), `{"scope":"session","session":"`+e.id("s1")+`"}`, 200, admin.ActorHeader, "ops-carol")
		ev = e.audit(t, "acme")[0]
		if ev.Type != "sessions.revoke" || ev.Actor != "ops-carol" || !strings.Contains(string(ev.Data), e.hash("s1")) ||
			strings.Contains(string(ev.Data), e.id("s1")) {
			t.Fatalf("revoke event %+v %s", ev, ev.Data)
		}
	})
}

func TestRevokeScopes(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)
		login := func(sid, user string) string {
			return e.login(t, tok{sid: sid, user: user, acct: "acme"})
		}
		a1, a2 := login("a1", "alice"), login("a2", "alice")
		b1, b2 := login("b1", "bob"), login("b2", "bob")
		c1, c2, c3 := login("c1", "carol"), login("c2", "carol"), login("c3", "carol")
		other := e.login(t, tok{sid: "x1", user: "alice", acct: "globex"})
		if sv := e.sessions(t, "acme"); len(sv.Sessions) != 7 || len(sv.ActiveUsers) != 3 {
			t.Fatalf("sessions %+v", sv)
		}

		// session by raw id, then by hash; a second revocation counts 0
		if n := e.revoke(t, "acme", `{"scope":"session","session":"`+e.id("a1")+`"}`); n != 1 {
			t.Fatalf("session raw: %d", n)
		}
		e.wantGet(t, a1, 401, "session_revoked")
		e.wantGet(t, a2, 200, "")
		if n := e.revoke(t, "acme", `{"scope":"session","session":"`+e.hash("a2")+`"}`); n != 1 {
			t.Fatalf("session hash: %d", n)
		}
		e.wantGet(t, a2, 401, "session_revoked")
		if n := e.revoke(t, "acme", `{"scope":"session","session":"`+e.id("a2")+`"}`); n != 0 {
			t.Fatalf("revoked session again: %d, want 0", n)
		}
		if n := e.revoke(t, "acme", `{"scope":"session","session":"nosuch"}`); n != 0 {
			t.Fatalf("unknown session: %d", n)
		}

		// user
		if n := e.revoke(t, "acme", `{"scope":"user","user_id":"bob"}`); n != 2 {
			t.Fatalf("user: %d, want 2", n)
		}
		e.wantGet(t, b1, 401, "session_revoked")
		e.wantGet(t, b2, 401, "session_revoked")
		e.wantGet(t, c1, 200, "")

		// others, keeping c2 given as a raw id
		if n := e.revoke(t, "acme", `{"scope":"others","keep_session":"`+e.id("c2")+`"}`); n != 2 {
			t.Fatalf("others: %d, want 2", n)
		}
		e.wantGet(t, c1, 401, "session_revoked")
		e.wantGet(t, c3, 401, "session_revoked")
		e.wantGet(t, c2, 200, "")

		// all
		if n := e.revoke(t, "acme", `{"scope":"all"}`); n != 1 {
			t.Fatalf("all: %d, want 1", n)
		}
		e.wantGet(t, c2, 401, "session_revoked")
		if n := e.revoke(t, "acme", `{"scope":"all"}`); n != 0 {
			t.Fatalf("all again: %d, want 0", n)
		}
		if sv := e.sessions(t, "acme"); len(sv.Sessions) != 0 || len(sv.ActiveUsers) != 0 {
			t.Fatalf("revoked sessions listed: %+v", sv)
		}
		e.wantGet(t, other, 200, "")

		// audit: one event per revocation with scope, actor and count,
		// hashes and never the raw id
		evs := e.audit(t, "acme")
		if len(evs) != 8 {
			t.Fatalf("%d revoke events, want 8", len(evs))
		}
		for _, ev := range evs {
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			if ev.Type != "sessions.revoke" || ev.Actor != "admin" || d["scope"] == nil || d["count"] == nil {
				t.Fatalf("event %+v %s", ev, ev.Data)
			}
		}
		first := string(evs[len(evs)-1].Data)
		if strings.Contains(first, `"`+e.id("a1")+`"`) || !strings.Contains(first, e.hash("a1")) {
			t.Fatalf("first event %s must name the hash, not the raw id", first)
		}

		// bad bodies
		for _, body := range []string{`{}`, `{"scope":"user"}`, `{"scope":"others"}`, `{"scope":"session"}`, `{"scope":"nope"}`, `{"scope":"all","user_id":"x"}`, `{"scope":"all","x":1}`, `[]`} {
			e.admin(t, http.MethodPost, acctPath("acme", "revoke"), body, 400)
		}
		e.admin(t, http.MethodPost, acctPath("acme", "revoke"), `{"scope":"all"}`, 415, "Content-Type", "text/plain")
		if got := len(e.audit(t, "acme")); got != 8 {
			t.Fatalf("rejected revocations wrote audit events: %d", got)
		}
	})
}

// TestCutoffForUnseenTokens runs in JWT mode only: it is about tokens
// issued before a revocation that the gateway has not seen yet. An
// opaque cookie has no such state: it has no session until the app's
// login response binds it, and binding records the session in the store
// at once, so every opaque session a revocation should end is one it
// finds (TestRevokeScopes covers those in both modes).
func TestCutoffForUnseenTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, b backend) {
		e := start(t, b)
		before := e.Clock.Now()
		// minted (logged in) before the revocations, never seen by the gateway
		unseenA := e.mint(t, tok{sid: "ua", user: "alice", acct: "acme", login: before})
		unseenB := e.mint(t, tok{sid: "ub", user: "bob", acct: "acme", login: before})
		unseenB2 := e.mint(t, tok{sid: "ub2", user: "bob", acct: "acme", login: before})
		unseenOther := e.mint(t, tok{sid: "uo", user: "alice", acct: "globex", login: before})
		e.Clock.Advance(2 * time.Second)

		if n := e.revoke(t, "acme", `{"scope":"user","user_id":"alice"}`); n != 0 {
			t.Fatalf("user: %d", n)
		}
		e.wantGet(t, unseenA, 401, "session_revoked")
		e.wantGet(t, unseenB, 200, "") // other user: not cut off

		e.Clock.Advance(2 * time.Second)
		if n := e.revoke(t, "acme", `{"scope":"all"}`); n != 1 {
			t.Fatalf("all: %d, want 1 (bob's session seen above)", n)
		}
		e.wantGet(t, unseenB2, 401, "session_revoked")
		e.wantGet(t, unseenOther, 200, "") // other account: not cut off

		// a login after the revocation passes
		e.Clock.Advance(2 * time.Second)
		fresh := e.mint(t, tok{sid: "f1", user: "alice", acct: "acme"})
		e.wantGet(t, fresh, 200, "")

		// others keeps the named session, cuts off the unseen rest
		unseenC := e.mint(t, tok{sid: "uc", user: "carol", acct: "acme"})
		e.Clock.Advance(2 * time.Second)
		if n := e.revoke(t, "acme", `{"scope":"others","keep_session":"f1"}`); n != 0 {
			t.Fatalf("others: %d", n)
		}
		e.wantGet(t, fresh, 200, "")
		e.wantGet(t, unseenC, 401, "session_revoked")
	})
}

func TestApplyModes(t *testing.T) {
	for _, mode := range []string{"next_login", "immediately"} {
		t.Run(mode, func(t *testing.T) {
			eachMode(t, func(t *testing.T, b backend) {
				e := start(t, b, "apply "+mode)
				if v := e.policy(t, "acme"); v.Apply != mode {
					t.Fatalf("apply %q", v.Apply)
				}
				live := e.login(t, tok{sid: "live", user: "alice", acct: "acme"})
				// lower idle from 15 to 5 minutes
				e.patch(t, "acme", `{"idle_minutes":5}`, 200)
				fresh := e.login(t, tok{sid: "fresh", user: "bob", acct: "acme"})
				e.Clock.Advance(6 * time.Minute)
				// a new session always gets the new policy
				st, code := e.get(t, fresh)
				if st != 401 || code != "session_expired" {
					t.Fatalf("fresh session after 6m idle: %d %s", st, code)
				}
				st, _ = e.get(t, live)
				switch mode {
				case "immediately":
					if st != 401 {
						t.Fatalf("live session kept its snapshot under apply immediately: %d", st)
					}
				case "next_login":
					if st != 200 {
						t.Fatalf("live session lost its snapshot under next_login: %d", st)
					}
				}
			})
		})
	}
}

func TestReload(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)
		tk := e.login(t, tok{sid: "s1", user: "alice", acct: "acme"})
		e.patch(t, "acme", `{"idle_minutes":30}`, 200)

		e.Load(t, b.globals("default_preset standard", "warn_before 2m"), b.site())
		var d struct {
			DefaultPreset string `json:"default_preset"`
			WarnBefore    int64  `json:"warn_before_seconds"`
		}
		e.admin(t, http.MethodGet, "/session_guard/policy", "", 200).JSON(t, &d)
		if d.DefaultPreset != "standard" || d.WarnBefore != 120 {
			t.Fatalf("after reload: %+v", d)
		}
		// the store outlives the reload: override, session and audit survive
		v := e.policy(t, "acme")
		if !eqp(v.Override.Idle, ptr(30)) || v.Effective.Absolute != 1440 {
			t.Fatalf("after reload: %+v", v)
		}
		if sv := e.sessions(t, "acme"); len(sv.Sessions) != 1 {
			t.Fatalf("after reload: %+v", sv)
		}
		if n := e.revoke(t, "acme", `{"scope":"all"}`); n != 1 {
			t.Fatalf("revoke after reload: %d", n)
		}
		e.wantGet(t, tk, 401, "session_revoked")
		if got := len(e.audit(t, "acme")); got != 2 {
			t.Fatalf("audit after reload: %d", got)
		}
	})
}

func TestFailedReload(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b, "default_preset standard")
		tk := e.login(t, tok{sid: "s1", user: "alice", acct: "acme"})

		for _, bad := range []string{
			b.globals("default_preset nosuch"),
			b.globals("preset weird 2h 1h"), // idle above absolute
		} {
			if err := e.TryLoad(t, bad, b.site()); err == nil {
				t.Fatal("an invalid config loaded")
			}
		}
		// the still-running config answers, with its store
		var d struct {
			DefaultPreset string `json:"default_preset"`
		}
		e.admin(t, http.MethodGet, "/session_guard/policy", "", 200).JSON(t, &d)
		if d.DefaultPreset != "standard" {
			t.Fatalf("after failed reload: %+v", d)
		}
		e.admin(t, http.MethodGet, "/session_guard/health", "", 200)
		e.patch(t, "acme", `{"idle_minutes":30}`, 200)
		if v := e.policy(t, "acme"); !eqp(v.Override.Idle, ptr(30)) || v.Effective.Absolute != 1440 {
			t.Fatalf("after failed reload: %+v", v)
		}
		if sv := e.sessions(t, "acme"); len(sv.Sessions) != 1 {
			t.Fatalf("after failed reload: %+v", sv)
		}
		if n := e.revoke(t, "acme", `{"scope":"user","user_id":"alice"}`); n != 1 {
			t.Fatalf("revoke after failed reload: %d", n)
		}
		e.wantGet(t, tk, 401, "session_revoked")
	})
}

func TestStoreDown(t *testing.T) {
	b := backend{name: "redis", redis: testredis.Start(t)}
	e := start(t, b)
	e.patch(t, "acme", `{"idle_minutes":30}`, 200)
	b.redis.Stop(t)
	r := e.admin(t, http.MethodGet, "/session_guard/health", "", 503)
	if !strings.Contains(string(r.Body), `"store":"unavailable"`) {
		t.Fatalf("health body %s", r.Body)
	}
	e.admin(t, http.MethodGet, acctPath("acme", "policy"), "", 503)
	e.admin(t, http.MethodPatch, acctPath("acme", "policy"), `{"idle_minutes":40}`, 503)
	e.admin(t, http.MethodGet, acctPath("acme", "sessions"), "", 503)
	e.admin(t, http.MethodPost, acctPath("acme", "revoke"), `{"scope":"all"}`, 503)
	e.admin(t, http.MethodGet, acctPath("acme", "audit"), "", 503)
	b.redis.Restart(t)
	e.admin(t, http.MethodGet, "/session_guard/health", "", 200)
}

// TestTwoInstances checks that a revocation through one store client is
// enforced by another sharing the same Redis: first two store instances
// directly, then the gateway and an outside instance in both directions.
func TestTwoInstances(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	cfg := policy.NewConfig()
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	newStore := func() *store.Redis {
		c := srv.Client(t)
		return store.NewRedis(c, store.RedisOptions{Timeout: 2 * time.Second, Now: clock})
	}
	s1, s2 := newStore(), newStore()
	touch := func(s store.Store, sid, user string) session.Status {
		t.Helper()
		res, err := s.Touch(ctx, &store.TouchRequest{
			Account: "acme", SessionHash: session.HashID(sid), User: user,
			LoginAt: now, NotAfter: now.Add(time.Hour), Policy: &cfg,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Status
	}
	if st := touch(s1, "k1", "alice"); st != session.Active {
		t.Fatalf("create: %v", st)
	}
	if st := touch(s2, "k1", "alice"); st != session.Active {
		t.Fatalf("seen by the second instance: %v", st)
	}
	n, err := s2.Revoke(ctx, store.RevokeRequest{Account: "acme", Scope: store.ScopeSession, Sessions: []string{session.HashID("k1")}, Policy: &cfg})
	if err != nil || n != 1 {
		t.Fatalf("revoke via 2: %d %v", n, err)
	}
	if st := touch(s1, "k1", "alice"); st != session.Revoked {
		t.Fatalf("instance 1 after revoke via 2: %v", st)
	}

	// the gateway is one instance, an outside store client the other
	b := backend{name: "redis", redis: srv}
	e := start(t, b)
	outside := store.NewRedis(srv.Client(t), store.RedisOptions{Timeout: 2 * time.Second, Now: e.Clock.Now})
	g1 := e.mint(t, tok{sid: "g1", user: "bob", acct: "globex"})
	g2 := e.mint(t, tok{sid: "g2", user: "bob", acct: "globex"})
	e.wantGet(t, g1, 200, "")
	e.wantGet(t, g2, 200, "")
	// revoked through the admin API: the outside instance sees it
	if n := e.revoke(t, "globex", `{"scope":"session","session":"g1"}`); n != 1 {
		t.Fatalf("admin revoke: %d", n)
	}
	res, err := outside.Touch(ctx, &store.TouchRequest{Account: "globex", SessionHash: session.HashID("g1"), User: "bob", LoginAt: e.Clock.Now(), NotAfter: e.Clock.Now().Add(time.Hour), Policy: &cfg})
	if err != nil || res.Status != session.Revoked {
		t.Fatalf("outside instance after admin revoke: %v %v", res.Status, err)
	}
	// revoked through the outside instance: the gateway enforces it
	n, err = outside.Revoke(ctx, store.RevokeRequest{Account: "globex", Scope: store.ScopeUser, User: "bob", Policy: &cfg})
	if err != nil || n != 1 {
		t.Fatalf("outside revoke: %d %v", n, err)
	}
	e.wantGet(t, g2, 401, "session_revoked")
}
