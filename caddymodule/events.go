package caddymodule

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/store"
)

// EventsConfig configures the session lifecycle events. Without it the
// events still go to Caddy's log with the defaults.
type EventsConfig struct {
	// Interval is how often the store is swept for expiries no request
	// observed, so an expiry event trails the expiry by at most this
	// much (events_interval). Default 10s.
	Interval caddy.Duration `json:"interval,omitempty"`
	// MaxQueued bounds the undelivered events kept (with Redis, per
	// account); beyond it the oldest are dropped, counted and logged.
	// Default 100000.
	MaxQueued int `json:"max_queued,omitempty"`
	// RetryMin and RetryMax bound the exponential backoff between
	// delivery attempts of one event. Default 1s and 5m.
	RetryMin caddy.Duration `json:"retry_min,omitempty"`
	RetryMax caddy.Duration `json:"retry_max,omitempty"`
	// Reclaim is how long an event handed to one gateway and not
	// acknowledged (it crashed, or is still retrying) waits before
	// another gateway takes it over. Default 1m.
	Reclaim caddy.Duration `json:"reclaim,omitempty"`
	// Webhook, when set, also POSTs every event, signed.
	Webhook *WebhookConfig `json:"webhook,omitempty"`
}

// WebhookConfig is the webhook sink.
type WebhookConfig struct {
	// URL receives each event as a Standard Webhooks-signed POST.
	URL string `json:"url"`
	// Secret is the signing secret: "whsec_" and the base64 of 24 to 64
	// bytes. Placeholders such as {env.EVENTS_SECRET} are replaced.
	Secret string `json:"secret"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// Event defaults.
const (
	DefaultEventsInterval = 10 * time.Second
	DefaultMaxQueued      = 100000
	defaultWebhookTimeout = 10 * time.Second
)

// Names of the sinks: the consumer groups and the metrics' sink label.
const (
	sinkLog     = "log"
	sinkWebhook = "webhook"
)

// eventSink is a configured sink and its group.
type eventSink struct {
	group string
	sink  events.Sink
}

// provisionEvents fills the defaults and builds the sinks.
func (a *App) provisionEvents() error {
	if a.Events == nil {
		a.Events = new(EventsConfig)
	}
	e := a.Events
	if e.Interval == 0 {
		e.Interval = caddy.Duration(DefaultEventsInterval)
	}
	if e.MaxQueued == 0 {
		e.MaxQueued = DefaultMaxQueued
	}
	if e.Interval < 0 || e.MaxQueued < 0 || e.RetryMin < 0 || e.RetryMax < 0 || e.Reclaim < 0 {
		return errors.New("events: interval, max_queued, retry bounds and reclaim must be positive")
	}
	a.sinks = []eventSink{{sinkLog, events.Log{Logger: a.logger.Named("events")}}}
	w := e.Webhook
	if w == nil {
		return nil
	}
	if w.URL == "" {
		return errors.New("events webhook: the url is required")
	}
	key, err := webhookSecret(w.Secret)
	if err != nil {
		return fmt.Errorf("events webhook secret: %w", err)
	}
	timeout := time.Duration(w.Timeout)
	if timeout <= 0 {
		timeout = defaultWebhookTimeout
	}
	sink, err := events.NewWebhook(caddy.NewReplacer().ReplaceAll(w.URL, ""), key, &http.Client{Timeout: timeout}, a.now)
	if err != nil {
		return fmt.Errorf("events webhook: %w", err)
	}
	a.sinks = append(a.sinks, eventSink{sinkWebhook, sink})
	return nil
}

// webhookSecret decodes a Standard Webhooks secret (placeholders
// replaced): "whsec_" and the base64 of at least minHookSecret bytes.
func webhookSecret(secret string) ([]byte, error) {
	secret = caddy.NewReplacer().ReplaceAll(secret, "")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errors.New("want whsec_ followed by base64")
	}
	if len(key) < minHookSecret {
		return nil, fmt.Errorf("%d bytes, want at least %d", len(key), minHookSecret)
	}
	return key, nil
}

// startEvents starts, when the store writes events, one dispatcher per
// sink and the sweep for unobserved expiries, all stopped by a.ctx.
func (a *App) startEvents() {
	src := a.eventSource()
	if src == nil {
		return
	}
	ob := src.EventOutbox()
	if d, ok := src.(interface{ DeclareGroups(...string) }); ok {
		groups := make([]string, len(a.sinks))
		for i, s := range a.sinks {
			groups[i] = s.group
		}
		d.DeclareGroups(groups...) // no sink's events are drained before it reads
	}
	var wake <-chan struct{}
	if m, ok := ob.(*events.Memory); ok {
		wake = m.Wake()
	}
	consumer := consumerName()
	e := a.Events
	for _, s := range a.sinks {
		d := &events.Dispatcher{
			Outbox: ob, Group: s.group, Consumer: consumer, Sink: s.sink, Wake: wake,
			MinBackoff: time.Duration(e.RetryMin), MaxBackoff: time.Duration(e.RetryMax), Reclaim: time.Duration(e.Reclaim),
			Delivered: func(typ string) { countEvent(metricsEvents.delivered, typ, s.group) },
			Failed:    func(typ string) { countEvent(metricsEvents.failed, typ, s.group) },
			Logger:    a.logger.Named("events"),
		}
		go d.Run(a.ctx)
	}
	go a.sweepEvents(src, ob)
}

// eventSource returns the store's EventSource side, with events enabled,
// or nil when the store writes none.
func (a *App) eventSource() store.EventSource {
	st := unwrapStore(a.store)
	switch s := st.(type) {
	case *store.Memory:
		s.EnableEvents(a.Events.MaxQueued, a.eventHooks())
	case interface {
		EnableEvents(int, *events.Hooks) events.Outbox
	}: // Redis, cached or not
		s.EnableEvents(a.Events.MaxQueued, a.eventHooks())
	}
	src, ok := st.(store.EventSource)
	if !ok || src.EventOutbox() == nil {
		return nil
	}
	return src
}

// eventHooks count emitted events and log a full outbox.
func (a *App) eventHooks() *events.Hooks {
	logger := a.logger.Named("events")
	return &events.Hooks{
		Emitted: func(typ string) { countEvent(metricsEvents.emitted, typ, "") },
		Dropped: func(n int) {
			if metricsEvents.dropped != nil {
				metricsEvents.dropped.Add(float64(n))
			}
			logger.Error("event outbox full: dropped the oldest undelivered events",
				zap.Int("dropped", n), zap.Int("max_queued", a.Events.MaxQueued))
		},
	}
}

// sweepEvents ends unobserved expiries and samples the queue lengths
// every events interval until a.ctx is done.
func (a *App) sweepEvents(src store.EventSource, ob events.Outbox) {
	t := time.NewTicker(time.Duration(a.Events.Interval))
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		if sw, ok := src.(store.ExpirySweeper); ok {
			if _, err := sw.SweepExpired(a.ctx, &a.policy); err != nil && a.ctx.Err() == nil {
				a.logger.Warn("sweeping expired sessions for events", zap.Error(err))
			}
		}
		for _, s := range a.sinks {
			if n, err := ob.Queued(a.ctx, s.group); err == nil && metricsEvents.queued != nil {
				metricsEvents.queued.WithLabelValues(s.group).Set(float64(n))
			}
		}
	}
}

// consumerName names this process among the consumers of a group.
func consumerName() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid())
}
