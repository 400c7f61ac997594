package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/session"
	"github.com/sessionguard/sessionguard/internal/store"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	m    *Manager
	st   *store.Memory
	cfg  *policy.Config
	now  time.Time
	logs *observer.ObservedLogs
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: t0}
	clock := func() time.Time { return f.now }
	f.st = store.NewMemory(clock)
	cfg := policy.NewConfig()
	f.cfg = &cfg
	core, logs := observer.New(zap.InfoLevel)
	f.logs = logs
	f.m = &Manager{Store: f.st, Policy: f.cfg, Now: clock, Logger: zap.New(core)}
	return f
}

func (f *fixture) touch(t *testing.T, account, sid, user string, loginAt time.Time) store.TouchResult {
	t.Helper()
	res, err := f.st.Touch(context.Background(), &store.TouchRequest{
		Account: account, SessionHash: session.HashID(sid), User: user, Name: "N " + user, Email: user + "@example.com",
		LoginAt: loginAt, NotAfter: f.now.Add(time.Hour), Policy: f.cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) events(t *testing.T, account string) []store.Event {
	t.Helper()
	v, err := f.m.Audit(context.Background(), account, MaxAuditLimit)
	if err != nil {
		t.Fatal(err)
	}
	return v.Events
}

func i64(n int64) *int64 { return &n }

func TestPatchPolicy(t *testing.T) {
	// default strict: idle 15, absolute 720; bounds idle 5..43200,
	// absolute 15..129600
	tests := []struct {
		name     string
		pre      string // applied first
		body     string
		status   int
		fields   []string // fields with a message (422)
		override OverrideMinutes
	}{
		{name: "idle", body: `{"idle_minutes":30}`, status: 200, override: OverrideMinutes{Idle: i64(30)}},
		{name: "both", body: `{"idle_minutes":30,"absolute_minutes":600}`, status: 200, override: OverrideMinutes{Idle: i64(30), Absolute: i64(600)}},
		{name: "null clears", pre: `{"idle_minutes":30,"absolute_minutes":600}`, body: `{"idle_minutes":null}`, status: 200, override: OverrideMinutes{Absolute: i64(600)}},
		{name: "absent leaves alone", pre: `{"idle_minutes":30}`, body: `{"absolute_minutes":600}`, status: 200, override: OverrideMinutes{Idle: i64(30), Absolute: i64(600)}},
		{name: "empty object is a no-op", pre: `{"idle_minutes":30}`, body: `{}`, status: 200, override: OverrideMinutes{Idle: i64(30)}},
		{name: "preset", body: `{"preset":"standard"}`, status: 200, override: OverrideMinutes{Idle: i64(60), Absolute: i64(1440)}},
		{name: "negative", body: `{"idle_minutes":-5}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "zero", body: `{"absolute_minutes":0}`, status: 422, fields: []string{"absolute_minutes"}},
		{name: "fraction", body: `{"idle_minutes":1.5}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "string", body: `{"idle_minutes":"30"}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "exponent", body: `{"idle_minutes":1e18}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "huge integer", body: `{"idle_minutes":1000000000000000000}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "overflow", body: `{"idle_minutes":99999999999999999999999}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "bool", body: `{"absolute_minutes":true}`, status: 422, fields: []string{"absolute_minutes"}},
		{name: "array", body: `{"absolute_minutes":[30]}`, status: 422, fields: []string{"absolute_minutes"}},
		{name: "two bad fields", body: `{"idle_minutes":"x","absolute_minutes":2.5}`, status: 422, fields: []string{"idle_minutes", "absolute_minutes"}},
		{name: "bad type and out of bounds", body: `{"idle_minutes":1.5,"absolute_minutes":10}`, status: 422, fields: []string{"idle_minutes", "absolute_minutes"}},
		{name: "below bound", body: `{"idle_minutes":4}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "above bound", body: `{"absolute_minutes":129601}`, status: 422, fields: []string{"absolute_minutes"}},
		{name: "idle over default absolute", body: `{"idle_minutes":721}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "absolute under default idle", body: `{"absolute_minutes":14}`, status: 422, fields: []string{"absolute_minutes"}},
		{name: "absolute under overridden idle", pre: `{"idle_minutes":120}`, body: `{"absolute_minutes":60}`, status: 422, fields: []string{"absolute_minutes"}},
		{name: "idle over overridden absolute", pre: `{"absolute_minutes":60}`, body: `{"idle_minutes":61}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "clearing absolute breaks invariant", pre: `{"idle_minutes":1000,"absolute_minutes":2000}`, body: `{"absolute_minutes":null}`, status: 422, fields: []string{"idle_minutes"}},
		{name: "unknown preset", body: `{"preset":"lax"}`, status: 422, fields: []string{"preset"}},
		{name: "preset not a string", body: `{"preset":1}`, status: 422, fields: []string{"preset"}},
		{name: "preset and minutes", body: `{"preset":"strict","idle_minutes":30}`, status: 422, fields: []string{"preset"}},
		{name: "session limit", body: `{"max_sessions_per_user":3}`, status: 200, override: OverrideMinutes{MaxSessions: iptr(3)}},
		{name: "on_limit", body: `{"on_limit":"deny"}`, status: 200, override: OverrideMinutes{OnLimit: mode(policy.Deny)}},
		{name: "limit with minutes", body: `{"idle_minutes":30,"max_sessions_per_user":2,"on_limit":"evict_oldest"}`, status: 200, override: OverrideMinutes{Idle: i64(30), MaxSessions: iptr(2), OnLimit: mode(policy.EvictOldest)}},
		{name: "limit null clears", pre: `{"max_sessions_per_user":3,"on_limit":"deny"}`, body: `{"max_sessions_per_user":null,"on_limit":null}`, status: 200},
		{name: "limit zero", body: `{"max_sessions_per_user":0}`, status: 422, fields: []string{"max_sessions_per_user"}},
		{name: "limit negative", body: `{"max_sessions_per_user":-1}`, status: 422, fields: []string{"max_sessions_per_user"}},
		{name: "limit fraction", body: `{"max_sessions_per_user":1.5}`, status: 422, fields: []string{"max_sessions_per_user"}},
		{name: "limit string", body: `{"max_sessions_per_user":"3"}`, status: 422, fields: []string{"max_sessions_per_user"}},
		{name: "limit huge", body: `{"max_sessions_per_user":99999999999}`, status: 422, fields: []string{"max_sessions_per_user"}},
		{name: "on_limit unknown", body: `{"on_limit":"drop"}`, status: 422, fields: []string{"on_limit"}},
		{name: "on_limit not a string", body: `{"on_limit":1}`, status: 422, fields: []string{"on_limit"}},
		{name: "limit and mode both bad", body: `{"max_sessions_per_user":0,"on_limit":"x","idle_minutes":"y"}`, status: 422, fields: []string{"max_sessions_per_user", "on_limit", "idle_minutes"}},
		{name: "preset and limit", body: `{"preset":"strict","max_sessions_per_user":3}`, status: 422, fields: []string{"preset"}},
		{name: "unknown field", body: `{"idle":30}`, status: 400},
		{name: "duplicate field", body: `{"idle_minutes":30,"idle_minutes":40}`, status: 400},
		{name: "not an object", body: `[1]`, status: 400},
		{name: "trailing data", body: `{"idle_minutes":30} {}`, status: 400},
		{name: "invalid json", body: `{"idle_minutes":`, status: 400},
		{name: "empty body", body: ``, status: 400},
		{name: "nested", body: `{"idle_minutes":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, status: 400},
		{name: "oversized", body: `{"preset":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, status: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if tc.pre != "" {
				if _, err := f.m.PatchPolicy(ctx, "acme", []byte(tc.pre), "setup"); err != nil {
					t.Fatalf("pre: %v", err)
				}
			}
			before := len(f.events(t, "acme"))
			v, err := f.m.PatchPolicy(ctx, "acme", []byte(tc.body), "alice")
			after := f.events(t, "acme")
			if tc.status != 200 {
				if err == nil {
					t.Fatalf("want %d, got success %+v", tc.status, v)
				}
				me := AsError(err)
				if me.Status != tc.status {
					t.Fatalf("status %d, want %d (%v)", me.Status, tc.status, err)
				}
				for _, fld := range tc.fields {
					if me.Fields[fld] == "" {
						t.Errorf("no message for %s: %v", fld, me.Fields)
					}
				}
				if len(me.Fields) != len(tc.fields) {
					t.Errorf("fields %v, want exactly %v", me.Fields, tc.fields)
				}
				if len(after) != before {
					t.Errorf("failed PATCH wrote an audit event")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !eqOverride(v.Override, tc.override) {
				t.Fatalf("override %s, want %s", js(v.Override), js(tc.override))
			}
			stored, _ := f.m.PolicyView(ctx, "acme")
			if !eqOverride(stored.Override, tc.override) {
				t.Fatalf("stored override %s, want %s", js(stored.Override), js(tc.override))
			}
			if len(after) != before+1 {
				t.Fatalf("%d audit events written, want exactly 1", len(after)-before)
			}
			ev := after[0]
			if ev.Type != EventPolicyUpdate || ev.Actor != "alice" || ev.Account != "acme" || !ev.Time.Equal(t0) {
				t.Fatalf("event %+v", ev)
			}
			var data map[string]json.RawMessage
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"old", "new", "effective_old", "effective_new"} {
				if _, ok := data[k]; !ok {
					t.Errorf("event data lacks %s: %s", k, ev.Data)
				}
			}
			var newOv OverrideMinutes
			_ = json.Unmarshal(data["new"], &newOv)
			if !eqOverride(newOv, tc.override) {
				t.Errorf("event new %s, want %s", data["new"], js(tc.override))
			}
		})
	}
}

func eqOverride(a, b OverrideMinutes) bool {
	return eqPtr(a.Idle, b.Idle) && eqPtr(a.Absolute, b.Absolute) && eqPtr(a.MaxSessions, b.MaxSessions) && eqPtr(a.OnLimit, b.OnLimit)
}

func eqPtr[T comparable](x, y *T) bool {
	return (x == nil && y == nil) || (x != nil && y != nil && *x == *y)
}

func iptr(n int) *int { return &n }

func mode(m policy.OnLimit) *policy.OnLimit { return &m }

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestPolicyView(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v, err := f.m.PolicyView(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"account":"acme","override":{"idle_minutes":null,"absolute_minutes":null,"max_sessions_per_user":null,"on_limit":null},` +
		`"effective":{"idle_minutes":15,"absolute_minutes":720,"max_sessions_per_user":null,"on_limit":"evict_oldest"},"preset":"strict",` +
		`"bounds":{"idle":{"min_minutes":5,"max_minutes":43200},"absolute":{"min_minutes":15,"max_minutes":129600},"sessions":{"min":1,"max":null}},"apply":"next_login"}`
	if got := js(v); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := f.m.PatchPolicy(ctx, "acme", []byte(`{"idle_minutes":60,"absolute_minutes":1440}`), "a"); err != nil {
		t.Fatal(err)
	}
	v, _ = f.m.PolicyView(ctx, "acme")
	if v.Preset != "standard" {
		t.Fatalf("preset %q, want standard", v.Preset)
	}
	if _, err := f.m.PatchPolicy(ctx, "acme", []byte(`{"idle_minutes":61}`), "a"); err != nil {
		t.Fatal(err)
	}
	v, _ = f.m.PolicyView(ctx, "acme")
	if v.Preset != "custom" {
		t.Fatalf("preset %q, want custom", v.Preset)
	}
}

func TestSessionsAndRevoke(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.touch(t, "acme", "s1", "alice", t0.Add(-3*time.Minute))
	f.touch(t, "acme", "s2", "bob", t0.Add(-2*time.Minute))
	f.touch(t, "acme", "s3", "alice", t0.Add(-1*time.Minute))
	f.touch(t, "acme", "s4", "carol", t0.Add(-4*time.Minute))
	f.touch(t, "other", "o1", "alice", t0)

	v, err := f.m.Sessions(ctx, "acme", store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Sessions) != 4 {
		t.Fatalf("%d sessions, want 4", len(v.Sessions))
	}
	var order []string
	for _, u := range v.ActiveUsers {
		order = append(order, u.UserID)
	}
	if strings.Join(order, ",") != "alice,bob,carol" {
		t.Fatalf("active users %v, want alice,bob,carol (newest login first)", order)
	}
	if a := v.ActiveUsers[0]; a.Sessions != 2 || !a.LastLoginAt.Equal(t0.Add(-time.Minute)) || a.Name != "N alice" || a.Email != "alice@example.com" {
		t.Fatalf("alice %+v", a)
	}

	revoke := func(body string) int {
		t.Helper()
		out, err := f.m.RevokeJSON(ctx, "acme", []byte(body), "ops")
		if err != nil {
			t.Fatalf("revoke %s: %v", body, err)
		}
		return out.Revoked
	}
	if n := revoke(`{"scope":"session","session":"s2"}`); n != 1 {
		t.Fatalf("session by raw id: %d", n)
	}
	if n := revoke(`{"scope":"session","session":"` + session.HashID("s2") + `"}`); n != 0 {
		t.Fatalf("again by hash: %d, want 0", n)
	}
	if n := revoke(`{"scope":"user","user_id":"alice"}`); n != 2 {
		t.Fatalf("user: %d, want 2", n)
	}
	if n := revoke(`{"scope":"others","keep_session":"` + session.HashID("s4") + `"}`); n != 0 {
		t.Fatalf("others: %d, want 0", n)
	}
	if n := revoke(`{"scope":"all"}`); n != 1 {
		t.Fatalf("all: %d, want 1", n)
	}
	v, _ = f.m.Sessions(ctx, "acme", store.Page{})
	if len(v.Sessions) != 0 || len(v.ActiveUsers) != 0 {
		t.Fatalf("sessions left: %+v", v)
	}
	if v, _ := f.m.Sessions(ctx, "other", store.Page{}); len(v.Sessions) != 1 {
		t.Fatal("other account touched")
	}

	evs := f.events(t, "acme")
	if len(evs) != 5 {
		t.Fatalf("%d events, want 5", len(evs))
	}
	raw := string(evs[4].Data) // oldest: the raw-id revocation
	if strings.Contains(raw, `"s2"`) || !strings.Contains(raw, session.HashID("s2")) {
		t.Fatalf("event data must carry the hash, not the raw id: %s", raw)
	}
	for _, e := range f.logs.All() {
		for _, fld := range e.Context {
			if strings.Contains(fld.String, `"s2"`) || fld.String == "s2" {
				t.Fatalf("raw session id logged: %+v", e)
			}
		}
	}
	if got := f.logs.FilterMessage("audit").Len(); got != 5 {
		t.Fatalf("%d audit log lines, want 5", got)
	}
	if string(evs[0].Data) != `{"scope":"all","count":1}` || evs[0].Actor != "ops" || evs[0].Type != EventSessionsRevoke {
		t.Fatalf("newest event %+v %s", evs[0], evs[0].Data)
	}
}

func TestParseRevoke(t *testing.T) {
	bad := []string{
		`{}`, `{"scope":"everything"}`, `{"scope":"user"}`, `{"scope":"session"}`, `{"scope":"others"}`,
		`{"scope":"all","user_id":"x"}`, `{"scope":"user","user_id":""}`, `{"scope":"user","user_id":5}`,
		`{"scope":"all","extra":1}`, `{"scope":1}`, `nope`,
	}
	for _, b := range bad {
		if _, err := ParseRevoke([]byte(b)); err == nil || AsError(err).Status != 400 {
			t.Errorf("%s: got %v, want 400", b, err)
		}
	}
	for _, b := range []string{`{"scope":"all"}`, `{"scope":"others"}`, `{"scope":"user","user_id":"x"}`} {
		if _, err := ParseOwnerRevoke([]byte(b)); err != nil {
			t.Errorf("owner %s: %v", b, err)
		}
	}
	for _, b := range []string{`{"scope":"user"}`, `{"scope":"user","user_id":""}`, `{"scope":"user","user_id":5}`, `{"scope":"all","user_id":"x"}`,
		`{"scope":"session","session":"x"}`, `{"scope":"others","keep_session":"x"}`, `{}`} {
		if _, err := ParseOwnerRevoke([]byte(b)); err == nil || AsError(err).Status != 400 {
			t.Errorf("owner %s: got %v, want 400", b, err)
		}
	}
}

func TestAuditLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		if _, err := f.m.PatchPolicy(ctx, "acme", []byte(`{}`), "a"); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(time.Second)
	}
	for _, tc := range []struct {
		q    string
		want int
	}{{"", 50}, {"1", 1}, {"1000", 60}} {
		n, err := ParseLimit(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.m.Audit(ctx, "acme", n)
		if err != nil || len(v.Events) != tc.want {
			t.Fatalf("limit %q: %d events, %v", tc.q, len(v.Events), err)
		}
		if tc.want > 1 && !v.Events[0].Time.After(v.Events[1].Time) {
			t.Fatal("not newest first")
		}
	}
	for _, q := range []string{"0", "-1", "1001", "x", "1.5"} {
		if _, err := ParseLimit(q); err == nil || AsError(err).Status != 400 {
			t.Errorf("limit %q: %v, want 400", q, err)
		}
	}
}

type downStore struct{ store.Store }

func (downStore) Override(context.Context, string) (policy.Override, error) {
	return policy.Override{}, store.ErrUnavailable
}
func (downStore) Sessions(context.Context, string, *policy.Config, store.Page) (store.SessionPage, error) {
	return store.SessionPage{}, errors.New("boom")
}
func (downStore) Revoke(context.Context, store.RevokeRequest) (int, error) {
	return 0, store.ErrUnavailable
}
func (downStore) Audit(context.Context, string, int) ([]store.Event, error) {
	return nil, store.ErrUnavailable
}

func TestStoreErrorsAre503(t *testing.T) {
	cfg := policy.NewConfig()
	m := &Manager{Store: downStore{}, Policy: &cfg}
	ctx := context.Background()
	_, e1 := m.PolicyView(ctx, "a")
	_, e2 := m.PatchPolicy(ctx, "a", []byte(`{"idle_minutes":30}`), "x")
	_, e3 := m.Sessions(ctx, "a", store.Page{})
	_, e4 := m.RevokeJSON(ctx, "a", []byte(`{"scope":"all"}`), "x")
	_, e5 := m.Audit(ctx, "a", 10)
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if AsError(err).Status != http.StatusServiceUnavailable {
			t.Errorf("op %d: %v, want 503", i+1, err)
		}
	}
	if !errors.Is(e1, store.ErrUnavailable) {
		t.Error("store error not wrapped")
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		ctype string
		body  string
		want  int
	}{
		{"application/json", `{}`, 0},
		{"application/json; charset=utf-8", `{}`, 0},
		{"text/plain", `{}`, 415},
		{"", `{}`, 415},
		{"application/json", strings.Repeat(" ", MaxBodyBytes+1), 413},
	} {
		r := httptest.NewRequest(http.MethodPatch, "/", bytes.NewBufferString(tc.body))
		if tc.ctype != "" {
			r.Header.Set("Content-Type", tc.ctype)
		}
		_, err := ReadBody(httptest.NewRecorder(), r)
		got := 0
		if err != nil {
			got = AsError(err).Status
		}
		if got != tc.want {
			t.Errorf("%q %d bytes: %d, want %d", tc.ctype, len(tc.body), got, tc.want)
		}
	}
}

func TestCheckAccountAndActor(t *testing.T) {
	for _, a := range []string{"", strings.Repeat("a", 257), "a\x00b", "a\nb", "\xff"} {
		if CheckAccount(a) == nil {
			t.Errorf("account %q accepted", a)
		}
	}
	for _, a := range []string{"acme", "a/b {x}:*", strings.Repeat("a", 256), "café"} {
		if err := CheckAccount(a); err != nil {
			t.Errorf("account %q: %v", a, err)
		}
	}
	if got := SanitizeActor("ops\r\nInjected: 1", "admin"); got != "opsInjected: 1" {
		t.Errorf("actor %q", got)
	}
	if got := SanitizeActor("", "admin"); got != "admin" {
		t.Errorf("empty actor %q", got)
	}
	if got := SanitizeActor(strings.Repeat("é", 100), "admin"); len(got) > MaxActorBytes {
		t.Errorf("actor %d bytes", len(got))
	}
}

// TestSessionsPaged: a page's users carry account-wide counts, merging
// the pages gives the users of a single large page, and bad paging
// parameters are 400.
func TestSessionsPaged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.touch(t, "acme", "s1", "alice", t0.Add(-3*time.Minute))
	f.touch(t, "acme", "s2", "bob", t0.Add(-2*time.Minute))
	f.touch(t, "acme", "s3", "alice", t0.Add(-1*time.Minute))
	whole, err := f.m.Sessions(ctx, "acme", store.Page{})
	if err != nil || whole.NextCursor != "" {
		t.Fatalf("one page: %+v %v", whole, err)
	}
	var users []ActiveUser
	var hashes []string
	p := store.Page{Limit: 1}
	for i := 0; ; i++ {
		v, err := f.m.Sessions(ctx, "acme", p)
		if err != nil || len(v.Sessions) > 1 || i > 5 {
			t.Fatalf("page %d: %+v %v", i, v, err)
		}
		for _, u := range v.ActiveUsers {
			if u.UserID == "alice" && u.Sessions != 2 {
				t.Fatalf("page %d: alice has %d sessions on it, want the account's 2", i, u.Sessions)
			}
		}
		for _, s := range v.Sessions {
			hashes = append(hashes, s.Hash)
		}
		users = MergeUsers(users, v.ActiveUsers)
		if v.NextCursor == "" {
			break
		}
		p.Cursor = v.NextCursor
	}
	SortUsers(users)
	if len(hashes) != 3 || !reflect.DeepEqual(users, whole.ActiveUsers) {
		t.Fatalf("pages: %v %+v, want %+v", hashes, users, whole.ActiveUsers)
	}
	for _, q := range [][2]string{{"", "0"}, {"", "101"}, {"", "x"}, {strings.Repeat("a", 3000), ""}} {
		if _, err := ParsePage(q[0], q[1]); AsError(err).Status != http.StatusBadRequest {
			t.Fatalf("cursor %.10q limit %q: %v, want 400", q[0], q[1], err)
		}
	}
	if _, err := f.m.Sessions(ctx, "acme", store.Page{Cursor: "bm90LWEtY3Vyc29y"}); AsError(err).Status != http.StatusBadRequest {
		t.Fatalf("forged cursor: %v, want 400", err)
	}
}
