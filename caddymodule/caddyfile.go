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
)

func init() {
	httpcaddyfile.RegisterGlobalOption("session_guard", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("session_guard", parseHandlerDirective)
	httpcaddyfile.RegisterDirectiveOrder("session_guard", httpcaddyfile.After, "basic_auth")
}

// Interface guards
var _ caddyfile.Unmarshaler = (*App)(nil)

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
//			cache on|off
//		}
//		default_preset <name>
//		preset <name> <idle> <absolute>
//		bounds idle|absolute <min> <max>
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
	case "store":
		if err := keys.once(d, key); err != nil {
			return err
		}
		sc, err := parseStore(d)
		if err != nil {
			return err
		}
		a.Store = sc
	case "default_preset":
		if err := keys.once(d, key); err != nil {
			return err
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		a.DefaultPreset = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	case "preset":
		return a.parsePreset(d)
	case "bounds":
		return a.parseBounds(d, keys)
	case "apply":
		if err := keys.once(d, key); err != nil {
			return err
		}
		v, err := oneOf(d, "next_login", "immediately")
		if err != nil {
			return err
		}
		a.Apply = v
	case "warn_before":
		if err := keys.once(d, key); err != nil {
			return err
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		dur, err := parseDur(d, d.Val())
		if err != nil {
			return err
		}
		a.WarnBefore = dur
		if d.NextArg() {
			return d.ArgErr()
		}
	case "touch_interval":
		if err := keys.once(d, key); err != nil {
			return err
		}
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		if v == "off" {
			a.TouchInterval = -1
			break
		}
		if a.TouchInterval, err = parseDur(d, v); err != nil {
			return err
		}
	case "on_store_error":
		if err := keys.once(d, key); err != nil {
			return err
		}
		v, err := oneOf(d, OnStoreErrorClosed, OnStoreErrorOpen)
		if err != nil {
			return err
		}
		a.OnStoreError = v
	default:
		return d.Errf("unrecognized session_guard option %q", key)
	}
	return nil
}

// parsePreset parses "preset <name> <idle> <absolute>".
func (a *App) parsePreset(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("preset needs <name> <idle> <absolute>")
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
	a.Presets[args[0]] = PresetConfig{Idle: idle, Absolute: abs}
	return nil
}

// parseBounds parses "bounds idle|absolute <min> <max>".
func (a *App) parseBounds(d *caddyfile.Dispenser, keys seen) error {
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("bounds needs idle|absolute <min> <max>")
	}
	if err := keys.once(d, "bounds "+args[0]); err != nil {
		return err
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
		return d.Errf("bounds: unknown field %q (want idle or absolute)", args[0])
	}
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
	case "db", "pool_size":
		if !d.NextArg() {
			return d.ArgErr()
		}
		n, err := strconv.Atoi(d.Val())
		if err != nil || n < 0 {
			return d.Errf("%s: want a non-negative integer, got %q", key, d.Val())
		}
		if key == "db" {
			sc.DB = n
		} else {
			sc.PoolSize = n
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
	case "timeout":
		if !d.NextArg() {
			return d.ArgErr()
		}
		dur, err := parseDur(d, d.Val())
		if err != nil {
			return err
		}
		sc.Timeout = dur
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

// parseHandlerDirective sets up the handler from Caddyfile tokens.
// Syntax:
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
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hd := new(Handler)
	h.Next() // consume directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	keys := seen{}
	for h.NextBlock(0) {
		key := h.Val()
		if key != "token" && key != "passive" {
			if err := keys.once(h.Dispenser, key); err != nil {
				return nil, err
			}
		}
		switch key {
		case "token":
			args := h.RemainingArgs()
			if len(args) < 2 {
				return nil, h.Err("token needs header <name> [<scheme>] or cookie <name>")
			}
			ts := TokenSource{From: args[0], Name: args[1]}
			switch {
			case args[0] == "header" && len(args) <= 3:
				if len(args) == 3 {
					ts.Scheme = args[2]
				}
			case args[0] == "cookie" && len(args) == 2:
			default:
				return nil, h.Errf("token: want header <name> [<scheme>] or cookie <name>, got %v", args)
			}
			hd.Tokens = append(hd.Tokens, ts)
		case "jwt":
			if h.NextArg() {
				return nil, h.ArgErr()
			}
			jc, err := parseJWT(h.Dispenser)
			if err != nil {
				return nil, err
			}
			hd.JWT = jc
		case "opaque":
			if h.NextArg() {
				return nil, h.ArgErr()
			}
			oc, err := parseOpaque(h.Dispenser)
			if err != nil {
				return nil, err
			}
			hd.Opaque = oc
		case "cors":
			if h.NextArg() {
				return nil, h.ArgErr()
			}
			c, err := parseCORS(h.Dispenser)
			if err != nil {
				return nil, err
			}
			hd.CORS = c
		case "claims":
			if h.NextArg() {
				return nil, h.ArgErr()
			}
			if err := parseClaims(h.Dispenser, hd); err != nil {
				return nil, err
			}
		case "login_url", "endpoints", "realm", "default_account":
			v, err := oneArg(h.Dispenser)
			if err != nil {
				return nil, err
			}
			switch key {
			case "login_url":
				hd.LoginURL = v
			case "endpoints":
				hd.Endpoints = v
			case "realm":
				hd.Realm = v
			case "default_account":
				hd.DefaultAccount = v
			}
		case "passive":
			set, ok, err := h.MatcherToken()
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, h.Err("passive needs a matcher: @name, a path or *")
			}
			if set == nil { // "*": an empty matcher set matches every request
				set = caddy.ModuleMap{}
			}
			if h.NextArg() {
				return nil, h.ArgErr()
			}
			hd.PassiveRaw = append(hd.PassiveRaw, set)
		case "owner_roles":
			hd.OwnerRoles = h.RemainingArgs()
			if len(hd.OwnerRoles) == 0 {
				return nil, h.ArgErr()
			}
		case "max_auth_age":
			v, err := oneArg(h.Dispenser)
			if err != nil {
				return nil, err
			}
			d, err := caddy.ParseDuration(v)
			if err != nil || d < time.Second {
				return nil, h.Errf("max_auth_age: want a duration of at least 1s, got %q", v)
			}
			hd.MaxAuthAge = caddy.Duration(d)
		case "max_token_size":
			if !h.NextArg() {
				return nil, h.ArgErr()
			}
			n, err := strconv.Atoi(h.Val())
			if err != nil || n <= 0 {
				return nil, h.Errf("max_token_size: want a positive integer, got %q", h.Val())
			}
			hd.MaxTokenSize = n
			if h.NextArg() {
				return nil, h.ArgErr()
			}
		default:
			return nil, h.Errf("unrecognized session_guard option %q", key)
		}
	}
	return hd, nil
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
