package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// parseEvents parses the events block of the session_guard global
// option:
//
//	events {
//		interval <duration>
//		max_queued <n>
//		retry <min> <max>
//		reclaim <duration>
//		webhook <url> {
//			secret <whsec_…>
//			timeout <duration>
//		}
//	}
func parseEvents(d *caddyfile.Dispenser) (*EventsConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	e := new(EventsConfig)
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if err := keys.once(d, key); err != nil {
			return nil, err
		}
		if err := e.parseOption(d, key); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// parseOption parses one option of the events block.
func (e *EventsConfig) parseOption(d *caddyfile.Dispenser, key string) error {
	switch key {
	case "interval", "reclaim":
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		dur, err := parseDur(d, v)
		if key == "interval" {
			e.Interval = dur
		} else {
			e.Reclaim = dur
		}
		return err
	case "max_queued":
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		if e.MaxQueued, err = strconv.Atoi(v); err != nil || e.MaxQueued < 1 {
			return d.Errf("max_queued: want a positive whole number, got %q", v)
		}
		return nil
	case "retry":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("retry needs <min> <max>")
		}
		var err error
		if e.RetryMin, err = parseDur(d, args[0]); err != nil {
			return err
		}
		e.RetryMax, err = parseDur(d, args[1])
		return err
	case "webhook":
		w, err := parseWebhook(d)
		e.Webhook = w
		return err
	}
	return d.Errf("unrecognized events option %q", key)
}

// parseWebhook parses "webhook <url> { secret …; timeout … }".
func parseWebhook(d *caddyfile.Dispenser) (*WebhookConfig, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	w := &WebhookConfig{URL: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	keys := seen{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if err := keys.once(d, key); err != nil {
			return nil, err
		}
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch key {
		case "secret":
			w.Secret = v
		case "timeout":
			if w.Timeout, err = parseDur(d, v); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("unrecognized webhook option %q", key)
		}
	}
	if w.Secret == "" {
		return nil, d.Err("webhook needs a secret")
	}
	return w, nil
}
