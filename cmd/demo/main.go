// Command demo is the sessionguard quick start: one command runs two
// small web apps behind an embedded Caddy with session_guard on the
// memory store.
//
//	go run ./cmd/demo
//
// The first app (app.go, on the gateway's -listen address) has a login
// form that mints JWTs (sid, sub, acct, role, auth_time) into the
// sg_token cookie; the gateway checks every other request against a
// server-side session and passes the identity on in the Session-*
// headers. The second app (cookieapp.go, on -listen-cookie) knows nothing
// about JWTs: a classic server-side session behind a random demo_sid
// cookie, which the gateway's opaque mode binds from the app's
// Session-Guard-Bind-* login response headers. The Caddyfile it runs is
// Caddyfile.tmpl, next to this file.
//
// The signed-in pages use the browser kit in web/ (session-expiry.js,
// served at /assets/session-expiry.js): a toast five minutes before the
// session ends ("Stay signed in" for idle expiry, "Sign in now" for the
// absolute limit), and for owners an account security page (/security)
// with the policy form, the active users and revocation.
//
// Flags:
//
//	-listen 127.0.0.1:8080   gateway address (a free port if the default is busy)
//	-listen-cookie 127.0.0.1:8081  the cookie app's gateway address (likewise)
//	-admin localhost:2019    Caddy admin endpoint, or "off"
//	-idle 5m -absolute 15m   a custom default preset, to watch sessions expire
//	-warn 1m                 warn_before (default 5m, shorter for short idle limits)
//	-v                       debug and access logs
//	-print-caddyfile         print the rendered Caddyfile and exit
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sessionguard/sessionguard/internal/devtoken"
)

const (
	defaultListen       = "127.0.0.1:8080"
	defaultCookieListen = "127.0.0.1:8081"
	defaultAdmin        = "localhost:2019"
)

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	var opts options
	var printCaddyfile bool
	flag.StringVar(&opts.Listen, "listen", defaultListen, "gateway `host:port`")
	flag.StringVar(&opts.CookieListen, "listen-cookie", defaultCookieListen, "`host:port` of the gateway's site in front of the cookie app")
	flag.StringVar(&opts.Admin, "admin", defaultAdmin, "Caddy admin endpoint `host:port`, or off")
	flag.DurationVar(&opts.Idle, "idle", 0, "idle limit of a custom default preset (e.g. 5m)")
	flag.DurationVar(&opts.Absolute, "absolute", 0, "absolute limit of a custom default preset (e.g. 15m)")
	flag.DurationVar(&opts.WarnBefore, "warn", 0, "warn_before (default 5m, or half the idle limit when that is 10m or less)")
	flag.BoolVar(&opts.Verbose, "v", false, "log at DEBUG level and write access logs")
	flag.BoolVar(&printCaddyfile, "print-caddyfile", false, "print the rendered Caddyfile and exit")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts.ListenFallback = !set["listen"]
	opts.CookieListenFallback = !set["listen-cookie"]
	opts.AdminFallback = !set["admin"]

	if printCaddyfile {
		data, _, err := policyData(opts)
		if err != nil {
			return err
		}
		data.Admin, data.LogLevel, data.AccessLog = opts.Admin, "WARN", opts.Verbose
		host, port, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return fmt.Errorf("-listen: %w", err)
		}
		data.Host, data.Port = host, port
		data.Upstream = "127.0.0.1:8000"
		if data.CookieHost, data.CookiePort, err = net.SplitHostPort(opts.CookieListen); err != nil {
			return fmt.Errorf("-listen-cookie: %w", err)
		}
		data.CookieUpstream = "127.0.0.1:8001"
		if opts.Verbose {
			data.LogLevel = "DEBUG"
		}
		body, err := render(data)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(body)
		return err
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	d, err := run(ctx, opts)
	if err != nil {
		return err
	}
	if err := d.printBanner(os.Stdout, opts); err != nil {
		_ = d.stop()
		return err
	}
	<-ctx.Done()
	cancel() // a second Ctrl-C kills the process the usual way
	fmt.Println("\nstopping…")
	return d.stop()
}

// printBanner tells the newcomer where everything is and what to try.
func (d *demo) printBanner(w io.Writer, opts options) error {
	tok, err := devtoken.Mint(d.secret, devtoken.Claims{
		User: "bob", Account: "acme", Role: "member", Name: "bob", Email: "bob@acme.example",
		TTL: time.Hour,
	})
	if err != nil {
		return fmt.Errorf("minting example token: %w", err)
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("sessionguard demo is running: session_guard (memory store) in front of two small apps.")
	p("")
	p("JWT app: its login mints a JWT into the sg_token cookie.")
	p("  Gateway     %s/", d.GatewayURL)
	p("  Sign in     %s/login", d.GatewayURL)
	p("  Security    %s/security  (sign in with role owner)", d.GatewayURL)
	p("  Frontend    %s/assets/session-expiry.js", d.GatewayURL)
	p("  App         %s/  (the upstream; only the gateway should talk to it)", d.UpstreamURL)
	p("")
	p("Cookie app: no JWTs, a plain server-side session in the demo_sid cookie (opaque mode).")
	p("  Gateway     %s/", d.CookieGatewayURL)
	p("  Sign in     %s/login", d.CookieGatewayURL)
	p("  App         %s/  (the upstream)", d.CookieUpstreamURL)
	p("")
	if d.AdminURL != "" {
		p("Admin API     %s/session_guard/policy  (both apps' sessions)", d.AdminURL)
	}
	p("Policy: %s.", d.Policy)
	if opts.ListenFallback && opts.Listen != "" && d.GatewayURL != "http://"+opts.Listen {
		p("Note: %s was busy, so the gateway took a free port.", opts.Listen)
	}
	if opts.CookieListenFallback && opts.CookieListen != "" && d.CookieGatewayURL != "http://"+opts.CookieListen {
		p("Note: %s was busy, so the cookie app's site took a free port.", opts.CookieListen)
	}
	p("")
	if d.SecretGenerated {
		p("The HS256 secret was generated for this run. To mint tokens the gateway accepts")
		p("(e.g. with `caddy session-guard token`), use it in another shell:")
		p("  export %s='%s'", secretEnv, string(d.secret))
	} else {
		p("Tokens are signed with $%s from the environment.", secretEnv)
	}
	p("")
	p("Try the API with a bearer token (user bob, account acme, role member, valid 1h):")
	p("  TOKEN='%s'", tok)
	p("  curl -i -H \"Authorization: Bearer $TOKEN\" %s/api/data", d.GatewayURL)
	p("  curl -s -H \"Authorization: Bearer $TOKEN\" %s/.session/status", d.GatewayURL)
	p("  curl -i %s/api/data    # no token: 401", d.GatewayURL)
	if d.AdminURL != "" {
		p("  curl -s %s/session_guard/accounts/acme/sessions", d.AdminURL)
		p("  curl -s -X POST -H 'Content-Type: application/json' -d '{\"scope\":\"all\"}' %s/session_guard/accounts/acme/revoke", d.AdminURL)
	}
	p("")
	p("Sign in to the cookie app (the gateway binds its cookie and hides the bind headers):")
	p("  curl -si -c /tmp/sg-jar -d 'user=bob&account=acme&role=member' %s/login", d.CookieGatewayURL)
	p("  curl -s -b /tmp/sg-jar %s/.session/status", d.CookieGatewayURL)
	p("")
	p("Press Ctrl-C to stop.")
	return nil
}
