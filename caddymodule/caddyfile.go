package caddymodule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sessionguard/sessionguard/internal/policy"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("session_guard", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("session_guard", parseHandlerDirective)
	httpcaddyfile.RegisterDirectiveOrder("session_guard", httpcaddyfile.After, "basic_auth")
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)

// parseGlobalOption turns the session_guard global option into the
// session_guard app.
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "session_guard", Value: caddyconfig.JSON(app, nil)}, nil
}

// seen rejects a second occurrence of a once-only key.
type seen map[string]bool

func (s seen) once(d *caddyfile.Dispenser, key string) error {
	if s[key] {
		return d.Errf("duplicate %q", key)
	}
	s[key] = true
	return nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	session_guard {
//		store memory
//		store redis {
//			address <host:port>        # repeatable
//			master_name <name>
//			cluster
//			username <user>
//			password <password>
//			db <n>
//			tls
//			tls_ca_file <pem file>     # implies tls
//			tls_server_name <name>     # implies tls
//			key_prefix <prefix>
//			timeout <duration>
//			pool_size <n>
//			revoke_replicas <n>
//			revoke_replicas_timeout <duration>
//			cache on|off
//		}
//		default_preset <name>
//		preset <name> <idle> <absolute> [sessions <n> [evict_oldest|deny]]
//		bounds idle|absolute <min> <max>
//		bounds sessions <min> <max>
//		apply next_login|immediately
//		warn_before <duration>
//		touch_interval <duration>|off
//		on_store_error closed|open
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	keys := seen{}
	for d.NextBlock(0) {
		if err := a.unmarshalOption(d, keys, d.Val()); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalOption parses one option of the session_guard global block.
func (a *App) unmarshalOption(d *caddyfile.Dispenser, keys seen, key string) error {
	switch key {
	case "preset":
		return a.parsePreset(d)
	case "bounds":
		return a.parseBounds(d, keys)
	}
	if err := keys.once(d, key); err != nil {
		return err
	}
	switch key {
	case "store":
		sc, err := parseStore(d)
		if err != nil {
			return err
		}
		a.Store = sc
		return nil
	case "default_preset", "apply", "on_store_error":
		return a.parseChoice(d, key)
	case "warn_before", "touch_interval":
		return a.parseTiming(d, key)
	}
	return d.Errf("unrecognized session_guard option %q", key)
}

// parseChoice parses the options that name a preset or a mode.
func (a *App) parseChoice(d *caddyfile.Dispenser, key string) error {
	var err error
	switch key {
	case "default_preset":
		a.DefaultPreset, err = oneArg(d)
	case "apply":
		a.Apply, err = oneOf(d, "next_login", "immediately")
	case "on_store_error":
		a.OnStoreError, err = oneOf(d, OnStoreErrorClosed, OnStoreErrorOpen)
	}
	return err
}

// parseTiming parses "warn_before <duration>" and
// "touch_interval <duration>|off".
func (a *App) parseTiming(d *caddyfile.Dispenser, key string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if key == "touch_interval" && v == "off" {
		a.TouchInterval = -1
		return nil
	}
	dur, err := parseDur(d, v)
	if err != nil {
		return err
	}
	if key == "warn_before" {
		a.WarnBefore = dur
	} else {
		a.TouchInterval = dur
	}
	return nil
}

// parsePreset parses "preset <name> <idle> <absolute> [sessions <n>
// [evict_oldest|deny]]".
func (a *App) parsePreset(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 3 && (len(args) < 5 || len(args) > 6 || args[3] != "sessions") {
		return d.Errf("preset needs <name> <idle> <absolute> [sessions <n> [evict_oldest|deny]]")
	}
	if _, dup := a.Presets[args[0]]; dup {
		return d.Errf("duplicate preset %q", args[0])
	}
	idle, err := parseDur(d, args[1])
	if err != nil {
		return err
	}
	abs, err := parseDur(d, args[2])
	if err != nil {
		return err
	}
	if a.Presets == nil {
		a.Presets = make(map[string]PresetConfig)
	}
	pc := PresetConfig{Idle: idle, Absolute: abs}
	if len(args) > 3 {
		if pc.MaxSessions, err = parseCount(d, args[4]); err != nil {
			return err
		}
	}
	if len(args) == 6 {
		if args[5] != string(policy.EvictOldest) && args[5] != string(policy.Deny) {
			return d.Errf("preset %s: %q is not %s or %s", args[0], args[5], policy.EvictOldest, policy.Deny)
		}
		pc.OnLimit = args[5]
	}
	a.Presets[args[0]] = pc
	return nil
}

// parseCount parses a positive whole number of sessions.
func parseCount(d *caddyfile.Dispenser, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, d.Errf("%q is not a positive whole number of sessions", v)
	}
	return n, nil
}

// parseBounds parses "bounds idle|absolute <min> <max>" and "bounds
// sessions <min> <max>".
func (a *App) parseBounds(d *caddyfile.Dispenser, keys seen) error {
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("bounds needs idle|absolute|sessions <min> <max>")
	}
	if err := keys.once(d, "bounds "+args[0]); err != nil {
		return err
	}
	if args[0] == "sessions" {
		return a.parseSessionBounds(d, args[1], args[2])
	}
	lo, err := parseDur(d, args[1])
	if err != nil {
		return err
	}
	hi, err := parseDur(d, args[2])
	if err != nil {
		return err
	}
	if a.Bounds == nil {
		a.Bounds = new(BoundsConfig)
	}
	switch args[0] {
	case "idle":
		a.Bounds.IdleMin, a.Bounds.IdleMax = lo, hi
	case "absolute":
		a.Bounds.AbsoluteMin, a.Bounds.AbsoluteMax = lo, hi
	default:
		return d.Errf("bounds: unknown field %q (want idle, absolute or sessions)", args[0])
	}
	return nil
}

// parseSessionBounds parses the counts of "bounds sessions <min> <max>".
func (a *App) parseSessionBounds(d *caddyfile.Dispenser, lo, hi string) error {
	minN, err := parseCount(d, lo)
	if err != nil {
		return err
	}
	maxN, err := parseCount(d, hi)
	if err != nil {
		return err
	}
	if a.Bounds == nil {
		a.Bounds = new(BoundsConfig)
	}
	a.Bounds.SessionsMin, a.Bounds.SessionsMax = minN, maxN
	return nil
}

func parseStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	sc := &StoreConfig{Type: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	switch sc.Type {
	case StoreMemory:
		if d.NextBlock(d.Nesting()) {
			return nil, d.Err("the memory store takes no options")
		}
		return sc, nil
	case StoreRedis:
	default:
		return nil, d.Errf("unknown store %q (want memory or redis)", sc.Type)
	}
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if key != "address" {
			if err := keys.once(d, key); err != nil {
				return nil, err
			}
		}
		if err := sc.parseRedisOption(d, key); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// parseRedisOption parses one option of the redis store block.
func (sc *StoreConfig) parseRedisOption(d *caddyfile.Dispenser, key string) error {
	if dst := sc.redisString(key); dst != nil {
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		*dst = v
		sc.TLS = sc.TLS || key == "tls_ca_file" || key == "tls_server_name"
		return nil
	}
	switch key {
	case "address":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		sc.Addresses = append(sc.Addresses, args...)
	case "cluster", "tls":
		if d.NextArg() {
			return d.ArgErr()
		}
		if key == "tls" {
			sc.TLS = true
		} else {
			sc.Cluster = true
		}
	case "db", "pool_size", "revoke_replicas":
		if !d.NextArg() {
			return d.ArgErr()
		}
		n, err := strconv.Atoi(d.Val())
		if err != nil || n < 0 {
			return d.Errf("%s: want a non-negative integer, got %q", key, d.Val())
		}
		switch key {
		case "db":
			sc.DB = n
		case "pool_size":
			sc.PoolSize = n
		default:
			sc.RevokeReplicas = &n
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	case "cache":
		v, err := oneOf(d, "on", "off")
		if err != nil {
			return err
		}
		sc.DisableCache = v == "off"
	case "timeout", "revoke_replicas_timeout":
		if !d.NextArg() {
			return d.ArgErr()
		}
		dur, err := parseDur(d, d.Val())
		if err != nil {
			return err
		}
		if key == "timeout" {
			sc.Timeout = dur
		} else {
			sc.RevokeReplicasTimeout = dur
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	default:
		return d.Errf("unrecognized redis store option %q", key)
	}
	return nil
}

// redisString is the field of a redis store option that takes one
// string, or nil.
func (sc *StoreConfig) redisString(key string) *string {
	switch key {
	case "master_name":
		return &sc.MasterName
	case "username":
		return &sc.Username
	case "password":
		return &sc.Password
	case "key_prefix":
		return &sc.KeyPrefix
	case "tls_ca_file":
		return &sc.TLSCAFile
	case "tls_server_name":
		return &sc.TLSServerName
	}
	return nil
}

func parseDur(d *caddyfile.Dispenser, s string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("bad duration %q: %v", s, err)
	}
	if dur <= 0 {
		return 0, d.Errf("duration %q must be positive", s)
	}
	return caddy.Duration(dur), nil
}

// oneArg returns the only argument on the line.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

func oneOf(d *caddyfile.Dispenser, allowed ...string) (string, error) {
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", d.Errf("%q: want one of %v", v, allowed)
}

// parseHandlerDirective sets up the handler from the session_guard
// directive: UnmarshalCaddyfile reads it, then the matchers of its
// passive lines are resolved against the site's named matchers, which
// only the Helper knows (as reverse_proxy does with handle_response).
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hd := new(Handler)
	if err := hd.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if err := hd.parsePassive(h); err != nil {
		return nil, err
	}
	return hd, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. The
// passive lines are kept for parseHandlerDirective, which resolves
// their matchers. Syntax:
//
//	session_guard [<matcher>] {
//		token header <name> [<scheme>] | cookie <name>   # repeatable
//		jwt {
//			alg <algorithm...>
//			secret <secret>
//			public_key <pem-file>
//			jwks_url <url>
//			discovery <issuer-url>     # instead of jwks_url
//			jwks_refresh <duration>
//			issuer <iss>
//			audience <aud>
//			leeway <duration>
//		}
//		claims {
//			session <claim|a+b>...  # first present wins; a+b joins claims
//			user|account|role|login|name|email|idle|absolute <claim>
//		}                          # a claim may be a.b.c or a JSON Pointer
//		default_account <id>       # for tokens without the account claim
//		opaque {                   # instead of jwt; needs token cookie <name>
//			key <key>              # default: generated, kept in the store
//			unbound pass|reject
//			cookie_path <path>
//			cookie_domain <domain>
//		}
//		login_url <url>
//		passive <matcher>          # repeatable
//		endpoints <prefix>
//		owner_roles <role...>
//		realm <realm>
//		max_token_size <bytes>
//		cors {
//			origins <origin...>
//			credentials
//			max_age <duration>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	keys := seen{}
	for d.NextBlock(0) {
		key := d.Val()
		if key != "token" && key != "passive" {
			if err := keys.once(d, key); err != nil {
				return err
			}
		}
		if err := h.unmarshalOption(d, key); err != nil {
			return err
		}
	}
	return nil
}

// unmarshalOption parses one option of the session_guard directive.
func (h *Handler) unmarshalOption(d *caddyfile.Dispenser, key string) error {
	switch key {
	case "token":
		return h.parseToken(d)
	case "passive": // the matcher is resolved by parsePassive
		h.passiveLines = append(h.passiveLines, d.NewFromNextSegment())
		return nil
	case "jwt", "opaque", "cors", "claims":
		return h.parseBlock(d, key)
	case "hooks":
		var err error
		h.Hooks, err = parseHooks(d)
		return err
	case "login_url", "endpoints", "realm", "default_account":
		return h.parseString(d, key)
	case "owner_roles":
		h.OwnerRoles = d.RemainingArgs()
		if len(h.OwnerRoles) == 0 {
			return d.ArgErr()
		}
		return nil
	case "max_auth_age", "max_token_size":
		return h.parseLimit(d, key)
	}
	return d.Errf("unrecognized session_guard option %q", key)
}

// parseToken parses "token header <name> [<scheme>] | cookie <name>".
func (h *Handler) parseToken(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Err("token needs header <name> [<scheme>] or cookie <name>")
	}
	ts := TokenSource{From: args[0], Name: args[1]}
	switch {
	case args[0] == "header" && len(args) <= 3:
		if len(args) == 3 {
			ts.Scheme = args[2]
		}
	case args[0] == "cookie" && len(args) == 2:
	default:
		return d.Errf("token: want header <name> [<scheme>] or cookie <name>, got %v", args)
	}
	h.Tokens = append(h.Tokens, ts)
	return nil
}

// parseBlock parses an option that is a block of its own.
func (h *Handler) parseBlock(d *caddyfile.Dispenser, key string) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	var err error
	switch key {
	case "jwt":
		h.JWT, err = parseJWT(d)
	case "opaque":
		h.Opaque, err = parseOpaque(d)
	case "cors":
		h.CORS, err = parseCORS(d)
	case "claims":
		err = parseClaims(d, h)
	}
	return err
}

// parseString parses an option that takes one string.
func (h *Handler) parseString(d *caddyfile.Dispenser, key string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	switch key {
	case "login_url":
		h.LoginURL = v
	case "endpoints":
		h.Endpoints = v
	case "realm":
		h.Realm = v
	case "default_account":
		h.DefaultAccount = v
	}
	return nil
}

// parseLimit parses "max_auth_age <duration>" and
// "max_token_size <bytes>".
func (h *Handler) parseLimit(d *caddyfile.Dispenser, key string) error {
	v, err := oneArg(d)
	if err != nil {
		return err
	}
	if key == "max_token_size" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return d.Errf("max_token_size: want a positive integer, got %q", v)
		}
		h.MaxTokenSize = n
		return nil
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur < time.Second {
		return d.Errf("max_auth_age: want a duration of at least 1s, got %q", v)
	}
	h.MaxAuthAge = caddy.Duration(dur)
	return nil
}

// parsePassive resolves the matcher of every passive line: @name, a
// path or *.
func (h *Handler) parsePassive(helper httpcaddyfile.Helper) error {
	for _, d := range h.passiveLines {
		d.Next() // consume "passive"
		set, ok, err := helper.WithDispenser(d).MatcherToken()
		if err != nil {
			return err
		}
		if !ok {
			return d.Err("passive needs a matcher: @name, a path or *")
		}
		if set == nil { // "*": an empty matcher set matches every request
			set = caddy.ModuleMap{}
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		if d.Next() { // the segment goes on with a block
			return d.Err("passive takes a matcher and no block")
		}
		h.PassiveRaw = append(h.PassiveRaw, set)
	}
	h.passiveLines = nil
	return nil
}

func parseJWT(d *caddyfile.Dispenser) (*JWTConfig, error) {
	jc := new(JWTConfig)
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if err := keys.once(d, key); err != nil {
			return nil, err
		}
		if key == "alg" {
			jc.Algorithms = d.RemainingArgs()
			if len(jc.Algorithms) == 0 {
				return nil, d.ArgErr()
			}
			continue
		}
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch key {
		case "secret":
			jc.Secret = v
		case "public_key":
			jc.PublicKey = v
		case "jwks_url":
			jc.JWKSURL = v
		case "discovery":
			jc.Discovery = v
		case "jwks_refresh":
			dur, err := parseDur(d, v)
			if err != nil {
				return nil, err
			}
			jc.JWKSRefresh = dur
		case "issuer":
			jc.Issuer = v
		case "audience":
			jc.Audience = v
		case "leeway":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < 0 || dur > time.Hour {
				return nil, d.Errf("leeway: want a duration between 0 and 1h, got %q", v)
			}
			jc.Leeway = caddy.Duration(dur)
		default:
			return nil, d.Errf("unrecognized jwt option %q", key)
		}
	}
	return jc, nil
}

func parseClaims(d *caddyfile.Dispenser, hd *Handler) error {
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		err := keys.once(d, key)
		if err != nil {
			return err
		}
		var v string
		if key == "session" { // alternatives: session sid sub+auth_time
			v = strings.Join(d.RemainingArgs(), " ")
			if v == "" {
				return d.ArgErr()
			}
		} else if v, err = oneArg(d); err != nil {
			return err
		}
		c := &hd.Claims
		dst := map[string]*string{
			"session": &c.Session, "user": &c.User, "account": &c.Account, "role": &c.Role,
			"login": &c.Login, "name": &c.Name, "email": &c.Email, "idle": &c.Idle, "absolute": &c.Absolute,
		}[key]
		if dst == nil {
			return d.Errf("unrecognized claims option %q", key)
		}
		*dst = v
	}
	return nil
}

func parseOpaque(d *caddyfile.Dispenser) (*OpaqueConfig, error) {
	oc := new(OpaqueConfig)
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if err := keys.once(d, key); err != nil {
			return nil, err
		}
		if key == "unbound" {
			v, err := oneOf(d, UnboundPass, UnboundReject)
			if err != nil {
				return nil, err
			}
			oc.Unbound = v
			continue
		}
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch key {
		case "key":
			oc.Key = v
		case "cookie_path":
			oc.CookiePath = v
		case "cookie_domain":
			oc.CookieDomain = v
		default:
			return nil, d.Errf("unrecognized opaque option %q", key)
		}
	}
	return oc, nil
}

// String helps error messages name a token source.
func (ts TokenSource) String() string { return fmt.Sprintf("%s %s", ts.From, ts.Name) }
