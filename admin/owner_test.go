package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestOwnerForbidden(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)
		cases := map[string]string{
			"member":  e.login(t, tok{sid: "m1", user: "mallory", acct: "acme", role: "member"}),
			"no role": e.login(t, tok{sid: "m2", user: "mallory", acct: "acme"}),
			"Owner":   e.login(t, tok{sid: "m3", user: "mallory", acct: "acme", role: "Owner"}),
		}
		if !e.mode.opaque {
			// Claim shapes only a token has: the bind headers carry one
			// string, trimmed. An array makes an owner only when one of
			// its strings is an owner role exactly.
			cases["roles array without owner"] = e.login(t, tok{sid: "m4", user: "mallory", acct: "acme", extra: map[string]any{"role": []string{"member", "Owner"}}})
			cases["owner in an array with a non-string"] = e.login(t, tok{sid: "m6", user: "mallory", acct: "acme", extra: map[string]any{"role": []any{"owner", 1}}})
			cases["owner suffix"] = e.login(t, tok{sid: "m5", user: "mallory", acct: "acme", role: "owner "})
		}
		for name, tk := range cases {
			for _, req := range []struct{ method, ep, body string }{
				{http.MethodGet, "account", ""},
				{http.MethodPatch, "account/policy", `{"idle_minutes":30}`},
				{http.MethodPost, "account/revoke", `{"scope":"all"}`},
			} {
				r := e.ownerDo(t, req.method, req.ep, tk, req.body)
				var body map[string]string
				_ = json.Unmarshal(r.Body, &body)
				if r.StatusCode != 403 || body["error"] != "forbidden" {
					t.Errorf("%s: %s %s: %d %s, want 403 forbidden", name, req.method, req.ep, r.StatusCode, r.Body)
				}
			}
			// the session itself is fine
			e.wantGet(t, tk, 200, "")
		}
		if v := e.policy(t, "acme"); v.Override.Idle != nil {
			t.Fatal("a forbidden PATCH changed the policy")
		}
		if sv := e.sessions(t, "acme"); len(sv.Sessions) != len(cases) {
			t.Fatalf("a forbidden revoke ended sessions: %d left", len(sv.Sessions))
		}
		if evs := e.audit(t, "acme"); len(evs) != 0 {
			t.Fatalf("forbidden requests were audited: %+v", evs)
		}
		// no token, bad method, cross-site
		if r := e.ownerDo(t, http.MethodGet, "account", "", ""); r.StatusCode != 401 {
			t.Fatalf("no token: %d", r.StatusCode)
		}
		owner := e.login(t, tok{sid: "o1", user: "olivia", acct: "acme", role: "owner"})
		if !e.mode.opaque {
			// owner among the roles of an array (Keycloak, Entra ID style)
			multi := e.login(t, tok{sid: "o2", user: "olga", acct: "acme", extra: map[string]any{"role": []string{"member", "owner"}}})
			if r := e.ownerDo(t, http.MethodGet, "account", multi, ""); r.StatusCode != 200 {
				t.Fatalf("owner in a role array: %d %s", r.StatusCode, r.Body)
			}
		}
		if r := e.ownerDo(t, http.MethodPost, "account", owner, `{}`); r.StatusCode != 405 || r.Header.Get("Allow") != "GET" {
			t.Fatalf("POST account: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
		}
		// Cross-site requests with a bearer token are allowed (a browser
		// never attaches one by itself); with a cookie, as in opaque
		// mode, they are refused.
		r := e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"idle_minutes":30}`, "Origin", "https://evil.example")
		if want := map[bool]int{false: 200, true: 403}[e.mode.opaque]; r.StatusCode != want {
			t.Fatalf("cross-site PATCH: %d, want %d: %s", r.StatusCode, want, r.Body)
		}
		if e.mode.opaque {
			if v := e.policy(t, "acme"); v.Override.Idle != nil {
				t.Fatal("a cross-site PATCH changed the policy")
			}
		}
	})
}

func TestOwnerSelfService(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)
		owner := e.login(t, tok{sid: "own", user: "olivia", acct: "acme", role: "owner"})
		e.Clock.Advance(1e9)
		m1 := e.login(t, tok{sid: "m1", user: "max", acct: "acme", role: "member"})
		m2 := e.login(t, tok{sid: "m2", user: "max", acct: "acme", role: "member"})
		// another account with an owner of its own
		other := e.login(t, tok{sid: "g1", user: "gus", acct: "globex", role: "owner"})

		// GET account: policy view, sessions and active users, me tagged
		r := e.ownerDo(t, http.MethodGet, "account", owner, "")
		if r.StatusCode != 200 {
			t.Fatalf("GET account: %d %s", r.StatusCode, r.Body)
		}
		var acct struct {
			policyView
			sessionsView
		}
		r.JSON(t, &acct)
		if acct.Account != "acme" || acct.Preset != "strict" || acct.Effective.Idle != 15 || acct.Override.Idle != nil {
			t.Fatalf("account view %s", r.Body)
		}
		if len(acct.ActiveUsers) != 2 || acct.ActiveUsers[0].UserID != "max" || acct.ActiveUsers[0].You || acct.ActiveUsers[0].Sessions != 2 ||
			acct.ActiveUsers[1].UserID != "olivia" || !acct.ActiveUsers[1].You {
			t.Fatalf("active users %s", r.Body)
		}
		current := 0
		for _, s := range acct.Sessions {
			if s.Current {
				current++
				if s.Hash != e.hash("own") {
					t.Fatalf("wrong current session %s", s.Hash)
				}
			}
		}
		if len(acct.Sessions) != 3 || current != 1 {
			t.Fatalf("sessions %s", r.Body)
		}
		if strings.Contains(string(r.Body), "globex") || strings.Contains(string(r.Body), `"gus"`) {
			t.Fatalf("another account leaked: %s", r.Body)
		}
		// one session a page: olivia's first (oldest login), then max's,
		// whose count covers the account, not the page
		r = e.ownerDo(t, http.MethodGet, "account?limit=1", owner, "")
		var p1, p2 sessionsView
		r.JSON(t, &p1)
		if r.StatusCode != 200 || len(p1.Sessions) != 1 || p1.Sessions[0].Hash != e.hash("own") || p1.NextCursor == "" {
			t.Fatalf("first page: %d %s", r.StatusCode, r.Body)
		}
		r = e.ownerDo(t, http.MethodGet, "account?limit=1&cursor="+p1.NextCursor, owner, "")
		r.JSON(t, &p2)
		if r.StatusCode != 200 || len(p2.Sessions) != 1 || p2.Sessions[0].User != "max" || len(p2.ActiveUsers) != 1 || p2.ActiveUsers[0].Sessions != 2 {
			t.Fatalf("second page: %d %s", r.StatusCode, r.Body)
		}
		for _, q := range []string{"?limit=0", "?limit=101", "?cursor=bm9wZQ", "?limit=1&limit=2"} {
			if r := e.ownerDo(t, http.MethodGet, "account"+q, owner, ""); r.StatusCode != 400 {
				t.Fatalf("GET account%s: %d %s", q, r.StatusCode, r.Body)
			}
		}

		// PATCH: the caller's own account only; actor is the caller
		r = e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"idle_minutes":30}`)
		if r.StatusCode != 200 {
			t.Fatalf("PATCH: %d %s", r.StatusCode, r.Body)
		}
		if v := e.policy(t, "acme"); !eqp(v.Override.Idle, ptr(30)) {
			t.Fatalf("acme %+v", v)
		}
		// an account named in the body or the query is never taken
		if r := e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"account":"globex","idle_minutes":45}`); r.StatusCode != 400 {
			t.Fatalf("PATCH with account field: %d", r.StatusCode)
		}
		if r := e.ownerDo(t, http.MethodPatch, "account/policy?account=globex", owner, `{"idle_minutes":40}`); r.StatusCode != 200 {
			t.Fatalf("PATCH with query: %d", r.StatusCode)
		}
		if v := e.policy(t, "globex"); v.Override.Idle != nil || v.Override.Absolute != nil {
			t.Fatalf("owner of acme changed globex: %+v", v)
		}
		if evs := e.audit(t, "globex"); len(evs) != 0 {
			t.Fatalf("globex audit %+v", evs)
		}
		evs := e.audit(t, "acme")
		if len(evs) != 2 || evs[0].Actor != "olivia" || evs[0].Type != "policy.update" {
			t.Fatalf("acme audit %+v", evs)
		}
		// validation as in the admin API
		r = e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"idle_minutes":1.5,"absolute_minutes":"x"}`)
		var verr struct {
			Error  string            `json:"error"`
			Fields map[string]string `json:"fields"`
		}
		r.JSON(t, &verr)
		if r.StatusCode != 422 || verr.Error != "validation_failed" || verr.Fields["idle_minutes"] == "" || verr.Fields["absolute_minutes"] == "" {
			t.Fatalf("422: %d %s", r.StatusCode, r.Body)
		}
		if r := e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"absolute_minutes":20}`); r.StatusCode != 422 {
			t.Fatalf("invariant: %d %s", r.StatusCode, r.Body)
		}
		if r := e.do(t, http.MethodPatch, "/.session/account/policy", owner, strings.NewReader(`{"idle_minutes":30}`), "Content-Type", "text/plain"); r.StatusCode != 415 {
			t.Fatalf("content type: %d", r.StatusCode)
		}

		// revoke: others, all, or one user of the account
		for _, body := range []string{`{"scope":"user"}`, `{"scope":"user","user_id":""}`, `{"scope":"session","session":"` + e.id("m1") + `"}`, `{"scope":"others","keep_session":"` + e.id("m1") + `"}`, `{}`, `{"scope":"all","x":1}`} {
			if r := e.ownerDo(t, http.MethodPost, "account/revoke", owner, body); r.StatusCode != 400 {
				t.Fatalf("revoke %s: %d %s", body, r.StatusCode, r.Body)
			}
		}
		var out struct {
			Revoked int `json:"revoked"`
		}
		r = e.ownerDo(t, http.MethodPost, "account/revoke", owner, `{"scope":"others"}`)
		r.JSON(t, &out)
		if r.StatusCode != 200 || out.Revoked != 2 {
			t.Fatalf("others: %d %s", r.StatusCode, r.Body)
		}
		e.wantGet(t, m1, 401, "session_revoked")
		e.wantGet(t, m2, 401, "session_revoked")
		e.wantGet(t, owner, 200, "")
		e.wantGet(t, other, 200, "")
		evs = e.audit(t, "acme")
		var d map[string]any
		_ = json.Unmarshal(evs[0].Data, &d)
		if evs[0].Type != "sessions.revoke" || evs[0].Actor != "olivia" || d["scope"] != "others" || d["count"] != 2.0 {
			t.Fatalf("revoke event %+v %s", evs[0], evs[0].Data)
		}

		// one user: every session of that user in the caller's account only
		m3 := e.login(t, tok{sid: "m3", user: "max", acct: "acme", role: "member"})
		r = e.ownerDo(t, http.MethodPost, "account/revoke", owner, `{"scope":"user","user_id":"max"}`)
		r.JSON(t, &out)
		if r.StatusCode != 200 || out.Revoked != 1 {
			t.Fatalf("user: %d %s", r.StatusCode, r.Body)
		}
		e.wantGet(t, m3, 401, "session_revoked")
		e.wantGet(t, owner, 200, "")
		r = e.ownerDo(t, http.MethodPost, "account/revoke", owner, `{"scope":"user","user_id":"gus"}`)
		r.JSON(t, &out)
		if r.StatusCode != 200 || out.Revoked != 0 {
			t.Fatalf("user of another account: %d %s", r.StatusCode, r.Body)
		}
		e.wantGet(t, other, 200, "")

		m3 = e.login(t, tok{sid: "m4", user: "max", acct: "acme", role: "member"})
		r = e.ownerDo(t, http.MethodPost, "account/revoke", owner, `{"scope":"all"}`)
		r.JSON(t, &out)
		if r.StatusCode != 200 || out.Revoked != 2 {
			t.Fatalf("all: %d %s", r.StatusCode, r.Body)
		}
		e.wantGet(t, owner, 401, "session_revoked")
		e.wantGet(t, m3, 401, "session_revoked")
		e.wantGet(t, other, 200, "")
	})
}

func TestOwnerRolesExactMatch(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			b := backend{name: "memory", mode: m}
			e := start(t, b)
			e.Load(t, b.globals(), b.site("owner_roles admin billing-owner"))
			for role, want := range map[string]int{"admin": 200, "billing-owner": 200, "owner": 403, "Admin": 403} {
				c := e.login(t, tok{sid: "s-" + role, user: "u", acct: "acme", role: role})
				if r := e.ownerDo(t, http.MethodGet, "account", c, ""); r.StatusCode != want {
					t.Errorf("role %q: %d, want %d", role, r.StatusCode, want)
				}
			}
		})
	}
}

// TestOwnerSessionLimit: an owner sets the account's session limit; the
// active-users list shows each user's count against it; bad values are
// 422 per field as in the admin API.
func TestOwnerSessionLimit(t *testing.T) {
	eachMode(t, func(t *testing.T, b backend) {
		e := start(t, b)
		owner := e.login(t, tok{sid: "own", user: "olivia", acct: "acme", role: "owner"})
		e.login(t, tok{sid: "m1", user: "max", acct: "acme", role: "member"})
		e.login(t, tok{sid: "m2", user: "max", acct: "acme", role: "member"})
		r := e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"max_sessions_per_user":0,"on_limit":"kick"}`)
		if r.StatusCode != 422 || !strings.Contains(string(r.Body), `"max_sessions_per_user"`) || !strings.Contains(string(r.Body), `"on_limit"`) {
			t.Fatalf("422: %d %s", r.StatusCode, r.Body)
		}
		r = e.ownerDo(t, http.MethodPatch, "account/policy", owner, `{"max_sessions_per_user":3,"on_limit":"deny"}`)
		if r.StatusCode != 200 {
			t.Fatalf("PATCH: %d %s", r.StatusCode, r.Body)
		}
		r = e.ownerDo(t, http.MethodGet, "account", owner, "")
		var acct struct {
			ActiveUsers []struct {
				UserID      string `json:"user_id"`
				Sessions    int    `json:"sessions"`
				MaxSessions *int   `json:"max_sessions_per_user"`
			} `json:"active_users"`
		}
		r.JSON(t, &acct)
		if len(acct.ActiveUsers) != 2 || acct.ActiveUsers[0].UserID != "max" || acct.ActiveUsers[0].Sessions != 2 ||
			acct.ActiveUsers[0].MaxSessions == nil || *acct.ActiveUsers[0].MaxSessions != 3 {
			t.Fatalf("active users %s", r.Body)
		}
		if evs := e.audit(t, "acme"); len(evs) != 1 || evs[0].Actor != "olivia" {
			t.Fatalf("audit %+v", evs)
		}
	})
}
