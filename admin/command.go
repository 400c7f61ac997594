package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/sessionguard/sessionguard/internal/devtoken"
	"github.com/sessionguard/sessionguard/internal/manage"
	"github.com/sessionguard/sessionguard/internal/store"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "session-guard",
		Usage: "<policy|sessions|revoke|audit|token|inspect> [args] [--address <admin>] [--config <path> [--adapter <name>]] [--json]",
		Short: "Manages sessionguard policies, sessions and audit logs",
		Long: `
Manages sessionguard through the admin API of a running Caddy.

  policy get <account>
  policy set <account> [--idle <min>] [--absolute <min>] [--clear-idle] [--clear-absolute]
             [--max-sessions <n>] [--on-limit evict_oldest|deny] [--clear-max-sessions] [--clear-on-limit] | --preset <name>
  sessions <account> [--page-size N]
  revoke <account> --all | --others <keep-session> | --user <user-id> | --session <session>
  audit <account> [--limit N]
  token --sub <user> [--acct <account>] [--role owner] [--name] [--email] [--ttl 1h] [--sid <id>] [--config <Caddyfile>]
  inspect [--config <Caddyfile>] <token>

The admin address is taken from --address, else from the config given
with --config (or a Caddyfile in the current directory), like 'caddy
reload' does, else ` + caddy.DefaultAdminListen + `. Output is
human-readable; --json prints the API's JSON.

'token' mints an HS256 development JWT with the HMAC secret of the first
session_guard handler in the config, for trying the gateway out. It is
not an identity provider.

'inspect' verifies a token against the first session_guard handler of
the config (fetching its JWKS or discovery document) and prints each
step: header, verification, and, for iss/aud/alg/kid, the expected and
received values; then the identity. It prints no token and writes
nothing.`,
		CobraFunc: setupCommand,
	})
}

// setupCommand adds the flags and subcommands of `caddy session-guard`.
func setupCommand(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("address", "", "Address of the administration API listener (if --config is not used)")
	pf.StringP("config", "c", "", "Configuration file (to find the admin address, or the secret for token)")
	pf.StringP("adapter", "a", "", "Name of config adapter to apply (if --config is used)")
	pf.Bool("json", false, "Print JSON instead of tables")
	pf.String("actor", "", "Who is acting, for the audit log (default cli:<login name>)")

	policyCmd := &cobra.Command{Use: "policy", Short: "Shows or changes an account's policy"}
	getCmd := &cobra.Command{
		Use:   "get <account>",
		Short: "Shows an account's policy",
		Args:  cobra.ExactArgs(1),
		RunE:  runPolicyGet,
	}
	setCmd := &cobra.Command{
		Use:   "set <account>",
		Short: "Changes an account's policy override",
		Args:  cobra.ExactArgs(1),
		RunE:  runPolicySet,
	}
	setCmd.Flags().Int64("idle", 0, "Idle limit in minutes")
	setCmd.Flags().Int64("absolute", 0, "Absolute limit in minutes")
	setCmd.Flags().String("preset", "", "Set every field to a preset's")
	setCmd.Flags().Bool("clear-idle", false, "Inherit the idle limit again")
	setCmd.Flags().Bool("clear-absolute", false, "Inherit the absolute limit again")
	setCmd.Flags().Int64("max-sessions", 0, "Most live sessions per user")
	setCmd.Flags().String("on-limit", "", "At the session limit: evict_oldest or deny")
	setCmd.Flags().Bool("clear-max-sessions", false, "Inherit the session limit again")
	setCmd.Flags().Bool("clear-on-limit", false, "Inherit on_limit again")
	policyCmd.AddCommand(getCmd, setCmd)

	sessionsCmd := &cobra.Command{
		Use:   "sessions <account>",
		Short: "Lists an account's live sessions and active users",
		Args:  cobra.ExactArgs(1),
		RunE:  runSessions,
	}
	sessionsCmd.Flags().Int("page-size", store.MaxPageLimit, "Sessions asked for per request (the CLI pages through them all)")
	revokeCmd := &cobra.Command{
		Use:   "revoke <account>",
		Short: "Ends sessions of an account",
		Args:  cobra.ExactArgs(1),
		RunE:  runRevoke,
	}
	revokeCmd.Flags().Bool("all", false, "End every session of the account")
	revokeCmd.Flags().String("others", "", "End every session but this one (id or hash)")
	revokeCmd.Flags().String("user", "", "End every session of this user")
	revokeCmd.Flags().String("session", "", "End this session (id or hash)")

	auditCmd := &cobra.Command{
		Use:   "audit <account>",
		Short: "Shows an account's audit log, newest first",
		Args:  cobra.ExactArgs(1),
		RunE:  runAudit,
	}
	auditCmd.Flags().Int("limit", manage.DefaultAuditLimit, "How many events to show (1-1000)")

	tokenCmd := &cobra.Command{
		Use:   "token",
		Short: "Mints a development JWT with the config's HMAC secret",
		Args:  cobra.NoArgs,
		RunE:  runToken,
	}
	tf := tokenCmd.Flags()
	tf.String("sub", "", "User id (sub claim); required")
	tf.String("acct", "", "Account id (acct claim)")
	tf.String("role", "", "Role (role claim), e.g. owner")
	tf.String("name", "", "Display name (name claim)")
	tf.String("email", "", "Email (email claim)")
	tf.Duration("ttl", time.Hour, "Token lifetime")
	tf.String("sid", "", "Session id (sid claim); default random")

	inspectCmd := &cobra.Command{
		Use:   "inspect <token>",
		Short: "Verifies a token against the config and prints each step; writes nothing",
		Args:  cobra.ExactArgs(1),
		RunE:  runInspect,
	}

	cmd.AddCommand(policyCmd, sessionsCmd, revokeCmd, auditCmd, tokenCmd, inspectCmd)
}

// newCommand returns a fresh `session-guard` command tree.
func newCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "session-guard", SilenceUsage: true}
	setupCommand(cmd)
	return cmd
}

// client talks to the admin API of a running Caddy.
type client struct {
	addr  string
	actor string
}

func newClient(cmd *cobra.Command) (*client, error) {
	fl := cmd.Flags()
	addr, _ := fl.GetString("address")
	cfgFile, _ := fl.GetString("config")
	adapter, _ := fl.GetString("adapter")
	if addr == "" {
		cfg, file, _, err := caddycmd.LoadConfig(cfgFile, adapter)
		if err != nil {
			return nil, fmt.Errorf("loading config: %w", err)
		}
		if addr, err = caddycmd.DetermineAdminAPIAddress("", cfg, file, adapter); err != nil {
			return nil, fmt.Errorf("determining admin API address: %w", err)
		}
	}
	actor, _ := fl.GetString("actor")
	if actor == "" {
		actor = "cli"
		if u, err := user.Current(); err == nil && u.Username != "" {
			actor = "cli:" + u.Username
		}
	}
	cmd.SilenceUsage = true
	return &client{addr: addr, actor: actor}, nil
}

// do sends a request and decodes the JSON answer into out (when not
// nil), returning the raw body too.
func (c *client) do(method, uri string, body any, out any) ([]byte, error) {
	hdr := http.Header{}
	hdr.Set(ActorHeader, c.actor)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, hdr, rd)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decoding response: %w", err)
		}
	}
	return raw, nil
}

func accountURI(account, rest string) string {
	return routePrefix + "accounts/" + url.PathEscape(account) + "/" + rest
}

func jsonFlag(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

// printJSON writes raw indented.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// call sends one request to the admin API and prints the answer: the
// raw JSON with --json, else the decoded value through show.
func call[T any](cmd *cobra.Command, method, uri string, body any, show func(io.Writer, T) error) error {
	c, err := newClient(cmd)
	if err != nil {
		return err
	}
	var v T
	raw, err := c.do(method, uri, body, &v)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if jsonFlag(cmd) {
		return printJSON(out, raw)
	}
	return show(out, v)
}

func runPolicyGet(cmd *cobra.Command, args []string) error {
	return call(cmd, http.MethodGet, accountURI(args[0], "policy"), nil, showPolicy)
}

func showPolicy(out io.Writer, v manage.PolicyView) error {
	ov := func(p *int64) string {
		if p == nil {
			return "inherited"
		}
		return strconv.FormatInt(*p, 10)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "account:\t%s\n", v.Account)
	fmt.Fprintf(tw, "preset:\t%s\n", v.Preset)
	fmt.Fprintf(tw, "apply:\t%s\n\n", v.Apply)
	fmt.Fprintln(tw, "LIMIT (minutes)\tOVERRIDE\tEFFECTIVE\tBOUNDS")
	fmt.Fprintf(tw, "idle\t%s\t%d\t%d..%d\n", ov(v.Override.Idle), v.Effective.Idle, v.Bounds.Idle.Min, v.Bounds.Idle.Max)
	fmt.Fprintf(tw, "absolute\t%s\t%d\t%d..%d\n", ov(v.Override.Absolute), v.Effective.Absolute, v.Bounds.Absolute.Min, v.Bounds.Absolute.Max)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SESSIONS PER USER\tOVERRIDE\tEFFECTIVE\tBOUNDS")
	fmt.Fprintf(tw, "max\t%s\t%s\t%d..%s\n", orInherited(v.Override.MaxSessions), limitText(v.Effective.MaxSessions), v.Bounds.Sessions.Min, limitText(v.Bounds.Sessions.Max))
	fmt.Fprintf(tw, "on_limit\t%s\t%s\t\n", orInherited(v.Override.OnLimit), v.Effective.OnLimit)
	return tw.Flush()
}

// orInherited shows an override field, "inherited" when unset.
func orInherited[T any](p *T) string {
	if p == nil {
		return "inherited"
	}
	return fmt.Sprint(*p)
}

// limitText shows a session count, "unlimited" when there is none.
func limitText(n *int) string {
	if n == nil {
		return "unlimited"
	}
	return strconv.Itoa(*n)
}

func runPolicySet(cmd *cobra.Command, args []string) error {
	fl := cmd.Flags()
	body := map[string]any{}
	preset, _ := fl.GetString("preset")
	if preset != "" {
		body["preset"] = preset
	}
	for _, f := range []struct{ flag, clear, field string }{
		{"idle", "clear-idle", "idle_minutes"},
		{"absolute", "clear-absolute", "absolute_minutes"},
		{"max-sessions", "clear-max-sessions", "max_sessions_per_user"},
		{"on-limit", "clear-on-limit", "on_limit"},
	} {
		clr, _ := fl.GetBool(f.clear)
		if fl.Changed(f.flag) && clr {
			return fmt.Errorf("--%s and --%s exclude each other", f.flag, f.clear)
		}
		if fl.Changed(f.flag) {
			body[f.field] = fl.Lookup(f.flag).Value // marshals as its number or string
		}
		if clr {
			body[f.field] = nil
		}
	}
	if len(body) == 0 {
		return errors.New("nothing to set: give --idle, --absolute, --max-sessions, --on-limit, a --clear-... flag or --preset")
	}
	return call(cmd, http.MethodPatch, accountURI(args[0], "policy"), body, showPolicy)
}

// runSessions pages through the listing and shows it whole: sessions
// in listing order, users merged across pages.
func runSessions(cmd *cobra.Command, args []string) error {
	c, err := newClient(cmd)
	if err != nil {
		return err
	}
	var all manage.SessionsView
	all.Sessions, all.ActiveUsers = []manage.Session{}, []manage.ActiveUser{}
	size, _ := cmd.Flags().GetInt("page-size")
	q := url.Values{"limit": {strconv.Itoa(size)}}
	for {
		var v manage.SessionsView
		if _, err := c.do(http.MethodGet, accountURI(args[0], "sessions")+"?"+q.Encode(), nil, &v); err != nil {
			return err
		}
		all.Sessions = append(all.Sessions, v.Sessions...)
		all.ActiveUsers = manage.MergeUsers(all.ActiveUsers, v.ActiveUsers)
		if v.NextCursor == "" {
			break
		}
		q.Set("cursor", v.NextCursor)
	}
	manage.SortUsers(all.ActiveUsers)
	out := cmd.OutOrStdout()
	if jsonFlag(cmd) {
		raw, err := json.Marshal(all)
		if err != nil {
			return err
		}
		return printJSON(out, raw)
	}
	return showSessions(out, all)
}

func showSessions(out io.Writer, v manage.SessionsView) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tNAME\tEMAIL\tSESSIONS\tLAST LOGIN")
	for _, u := range v.ActiveUsers {
		n := strconv.Itoa(u.Sessions)
		if u.MaxSessions != nil {
			n += "/" + strconv.Itoa(*u.MaxSessions)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.UserID, dash(u.Name), dash(u.Email), n, stamp(u.LastLoginAt))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "SESSION\tUSER\tLOGIN\tLAST SEEN\tIDLE EXPIRES\tABSOLUTE EXPIRES\tIP")
	for _, s := range v.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Hash, s.User, stamp(s.CreatedAt), stamp(s.LastSeenAt), stamp(s.IdleExpiresAt), stamp(s.AbsoluteExpiresAt), dash(s.IP))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "\n%d live session(s), %d active user(s)\n", len(v.Sessions), len(v.ActiveUsers))
	return err
}

func runRevoke(cmd *cobra.Command, args []string) error {
	fl := cmd.Flags()
	var req manage.RevokeRequest
	n := 0
	if all, _ := fl.GetBool("all"); all {
		req.Scope, n = store.ScopeAll, n+1
	}
	if fl.Changed("others") {
		req.Scope, n = store.ScopeOthers, n+1
		req.KeepSession, _ = fl.GetString("others")
	}
	if fl.Changed("user") {
		req.Scope, n = store.ScopeUser, n+1
		req.UserID, _ = fl.GetString("user")
	}
	if fl.Changed("session") {
		req.Scope, n = store.ScopeSession, n+1
		req.Session, _ = fl.GetString("session")
	}
	if n != 1 {
		return errors.New("give exactly one of --all, --others <keep>, --user <id>, --session <id>")
	}
	return call(cmd, http.MethodPost, accountURI(args[0], "revoke"), req, func(out io.Writer, res manage.RevokeResult) error {
		_, err := fmt.Fprintf(out, "revoked %d session(s) of %s (scope %s)\n", res.Revoked, args[0], req.Scope)
		return err
	})
}

func runAudit(cmd *cobra.Command, args []string) error {
	limit, _ := cmd.Flags().GetInt("limit")
	return call(cmd, http.MethodGet, accountURI(args[0], "audit")+"?limit="+strconv.Itoa(limit), nil, showAudit)
}

func showAudit(out io.Writer, v manage.AuditView) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tACTOR\tDETAILS")
	for _, ev := range v.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", stamp(ev.Time), ev.Type, ev.Actor, details(ev.Data))
	}
	return tw.Flush()
}

// details renders event data as sorted key=value pairs.
func details(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return string(raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := string(m[k])
		if s, err := strconv.Unquote(v); err == nil {
			v = s
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

func runToken(cmd *cobra.Command, _ []string) error {
	fl := cmd.Flags()
	sub, _ := fl.GetString("sub")
	if sub == "" {
		return errors.New("--sub is required")
	}
	cfg, file, err := localConfig(cmd)
	if err != nil {
		return err
	}
	secret, err := hmacSecret(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	c := devtoken.Claims{}
	c.User = sub
	c.Account, _ = fl.GetString("acct")
	c.Role, _ = fl.GetString("role")
	c.Name, _ = fl.GetString("name")
	c.Email, _ = fl.GetString("email")
	c.Session, _ = fl.GetString("sid")
	c.TTL, _ = fl.GetDuration("ttl")
	if c.TTL <= 0 {
		return errors.New("--ttl must be positive")
	}
	if c.Session == "" {
		c.Session = devtoken.NewSessionID()
	}
	c.Now = time.Now()
	tok, err := devtoken.Mint(secret, c)
	if err != nil {
		return fmt.Errorf("minting token: %w", err)
	}
	out := cmd.OutOrStdout()
	if jsonFlag(cmd) {
		b, _ := json.Marshal(map[string]any{"token": tok, "expires_at": c.Now.Add(c.TTL).UTC().Truncate(time.Second)})
		return printJSON(out, b)
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

// localConfig loads the config named by --config (or the Caddyfile in the
// current directory), as JSON, and its file name.
func localConfig(cmd *cobra.Command) ([]byte, string, error) {
	cfgFile, _ := cmd.Flags().GetString("config")
	adapter, _ := cmd.Flags().GetString("adapter")
	cfg, file, _, err := caddycmd.LoadConfig(cfgFile, adapter)
	if err != nil {
		return nil, "", fmt.Errorf("loading config: %w", err)
	}
	if file == "" || len(cfg) == 0 {
		return nil, "", errors.New("no config: use --config or run in a directory with a Caddyfile")
	}
	return cfg, file, nil
}

// hmacSecret finds the first session_guard handler in a JSON config and
// returns its HMAC secret with placeholders such as {env.X} replaced.
func hmacSecret(cfg []byte) ([]byte, error) {
	var root any
	if err := json.Unmarshal(cfg, &root); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	h := findHandler(root)
	if h == nil {
		return nil, errors.New("no session_guard handler in the config")
	}
	jwtCfg, _ := h["jwt"].(map[string]any)
	secret, _ := jwtCfg["secret"].(string)
	if secret == "" {
		return nil, errors.New("the session_guard handler has no HMAC secret (jwt secret)")
	}
	if algs, ok := jwtCfg["algorithms"].([]any); ok && len(algs) > 0 {
		hs256 := false
		for _, a := range algs {
			hs256 = hs256 || a == "HS256"
		}
		if !hs256 {
			return nil, errors.New("the session_guard handler does not accept HS256, the only algorithm this command mints")
		}
	}
	s := caddy.NewReplacer().ReplaceAll(secret, "")
	if s == "" {
		return nil, errors.New("the HMAC secret is empty after replacing placeholders (is the environment variable set?)")
	}
	return []byte(s), nil
}

// findHandler walks a decoded JSON config depth-first, in key order,
// for the first object with "handler": "session_guard".
func findHandler(v any) map[string]any {
	switch t := v.(type) {
	case map[string]any:
		if t["handler"] == "session_guard" {
			return t
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if h := findHandler(t[k]); h != nil {
				return h
			}
		}
	case []any:
		for _, e := range t {
			if h := findHandler(e); h != nil {
				return h
			}
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
