package main

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// testSecret is a 32+ byte HS256 secret for the tests.
const testSecret = "test-secret-0123456789abcdef-0123456789abcdef"

// validate provisions and validates an adapted config without starting
// it, like `caddy validate`.
func validate(t *testing.T, cfgJSON []byte) {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatalf("decoding adapted config: %v", err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}
}

// adaptClean adapts body and fails on errors and on warnings, which
// include "input is not formatted".
func adaptClean(t *testing.T, name string, body []byte) []byte {
	t.Helper()
	cfg, warnings, err := adapt(name, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("%s: warning: %s", name, w.String())
	}
	if formatted := caddyfile.Format(body); !bytes.Equal(formatted, body) {
		t.Errorf("%s is not formatted like `caddy fmt`", name)
	}
	return cfg
}

func readExample(t *testing.T) []byte {
	t.Helper()
	body, err := os.ReadFile("../../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestCaddyfileExample is `caddy adapt` and `caddy validate` of the
// repository's Caddyfile.example.
func TestCaddyfileExample(t *testing.T) {
	t.Setenv(secretEnv, testSecret)
	cfg := adaptClean(t, "Caddyfile.example", readExample(t))
	for _, want := range []string{`"session_guard"`, `"login_url":"/login"`, `"default_preset":"strict"`, `"opaque":{`, `"name":"sid"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
	validate(t, cfg)
}

// TestCaddyfileExampleRedis uncomments the example's redis block in place
// of `store memory` and validates the result: the commented block must be
// valid as it stands. Provisioning the Redis store does not connect.
func TestCaddyfileExampleRedis(t *testing.T) {
	t.Setenv(secretEnv, testSecret)
	t.Setenv("REDIS_PASSWORD", "not-used")
	lines := strings.Split(string(readExample(t)), "\n")
	commented := regexp.MustCompile(`^(\s*)# ?(.*)$`)
	in, found := false, false
	for i, l := range lines {
		switch {
		case strings.TrimSpace(l) == "store memory":
			lines[i] = ""
		case strings.TrimSpace(l) == "# store redis {":
			in, found = true, true
		}
		if in {
			if strings.TrimSpace(l) == "# }" {
				in = false
			}
			lines[i] = commented.ReplaceAllString(l, "$1$2")
		}
	}
	if !found {
		t.Fatal("Caddyfile.example has no commented `# store redis {` block")
	}
	body := []byte(strings.Join(lines, "\n"))
	cfg, _, err := adapt("Caddyfile.example (redis)", body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":"redis"`, `"addresses":["127.0.0.1:6379"]`, `"password":"{env.REDIS_PASSWORD}"`, `"key_prefix":"sg"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("adapted config lacks %s:\n%s", want, cfg)
		}
	}
	validate(t, cfg)
}

// TestDemoCaddyfile adapts and validates the demo's rendered Caddyfile
// for the default policy and for short custom presets.
func TestDemoCaddyfile(t *testing.T) {
	t.Setenv(secretEnv, testSecret)
	for _, tc := range []struct {
		name           string
		idle, absolute time.Duration
		verbose        bool
		want           []string
	}{
		{name: "default", want: []string{`"warn_before":300000000000`}},
		{name: "5m-15m", idle: 5 * time.Minute, absolute: 15 * time.Minute,
			want: []string{`"default_preset":"demo"`, `"presets":{"demo":{"idle":300000000000,"absolute":900000000000}}`}},
		{name: "1m-3m", idle: time.Minute, absolute: 3 * time.Minute, verbose: true,
			want: []string{`"idle_min":60000000000`, `"absolute_min":180000000000`, `"warn_before":30000000000`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _, err := policyData(options{Idle: tc.idle, Absolute: tc.absolute})
			if err != nil {
				t.Fatal(err)
			}
			data.Admin, data.LogLevel, data.AccessLog = "localhost:2019", "WARN", tc.verbose
			data.Host, data.Port, data.Upstream = "127.0.0.1", "8080", "127.0.0.1:8000"
			data.CookieHost, data.CookiePort, data.CookieUpstream = "127.0.0.1", "8081", "127.0.0.1:8001"
			body, err := render(data)
			if err != nil {
				t.Fatal(err)
			}
			cfg := adaptClean(t, "Caddyfile.tmpl", body)
			// both sites: the JWT app's and the cookie app's (opaque mode)
			want := append([]string{`"listen":["127.0.0.1:8080"]`, `"listen":["127.0.0.1:8081"]`, `"opaque":{"unbound":"pass"}`, `"name":"demo_sid"`, `"dial":"127.0.0.1:8001"`}, tc.want...)
			for _, want := range want {
				if !strings.Contains(string(cfg), want) {
					t.Errorf("adapted config lacks %s:\n%s", want, cfg)
				}
			}
			validate(t, cfg)
		})
	}
}

func TestPolicyData(t *testing.T) {
	for _, tc := range []struct {
		idle, absolute, warn time.Duration
		preset, bounds       string
		wantErr              string
	}{
		{},
		{idle: 5 * time.Minute, absolute: 15 * time.Minute, preset: "5m 15m"},
		{idle: 2 * time.Minute, absolute: 10 * time.Minute, preset: "2m 10m", bounds: "2m 10m"},
		{idle: 30 * time.Minute, preset: "30m 12h"},
		{absolute: 90 * time.Minute, preset: "15m 1h30m"},
		{idle: 20 * time.Minute, absolute: 10 * time.Minute, wantErr: "longer than"},
		{idle: 30 * time.Second, absolute: 10 * time.Minute, wantErr: "at least"},
		{idle: 800 * time.Hour, absolute: 900 * time.Hour, wantErr: "above the maximum"},
		{warn: -time.Second, wantErr: "negative"},
	} {
		data, _, err := policyData(options{Idle: tc.idle, Absolute: tc.absolute, WarnBefore: tc.warn})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v/%v: got error %v, want %q", tc.idle, tc.absolute, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v/%v: %v", tc.idle, tc.absolute, err)
			continue
		}
		var preset string
		if data.Preset != nil {
			preset = data.Preset.Idle + " " + data.Preset.Absolute
		}
		bounds := strings.TrimSpace(data.IdleMin + " " + data.AbsoluteMin)
		if preset != tc.preset || bounds != tc.bounds {
			t.Errorf("%v/%v: preset %q bounds %q, want %q %q", tc.idle, tc.absolute, preset, bounds, tc.preset, tc.bounds)
		}
	}
}
