package caddymodule

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/events"
)

// metricsEvents are the lifecycle events' collectors, built once per
// process like the others (metrics.go). Labels: type is one of
// events.Types, sink is log or webhook.
var metricsEvents = struct {
	once                       sync.Once
	emitted, delivered, failed *prometheus.CounterVec
	queued                     *prometheus.GaugeVec
	dropped                    prometheus.Counter
}{}

// registerEventMetrics builds the collectors on first use and registers
// them on reg, ignoring that they are registered already.
func registerEventMetrics(reg *prometheus.Registry) error {
	const ns, sub = "caddy", "session_guard"
	metricsEvents.once.Do(func() {
		metricsEvents.emitted = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "events_emitted_total",
			Help: "Session lifecycle events written to the outbox through this instance, by type.",
		}, []string{"type"})
		metricsEvents.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "events_delivered_total",
			Help: "Session lifecycle events delivered by this instance, by type and sink (log, webhook).",
		}, []string{"type", "sink"})
		metricsEvents.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "events_failed_total",
			Help: "Failed delivery attempts of session lifecycle events (each is retried), by type and sink.",
		}, []string{"type", "sink"})
		metricsEvents.queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "events_queued",
			Help: "Session lifecycle events not yet delivered, by sink, sampled every events interval.",
		}, []string{"sink"})
		metricsEvents.dropped = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "events_dropped_total",
			Help: "Undelivered session lifecycle events dropped because the outbox was full (max_queued).",
		})
	})
	return registerOn(reg, metricsEvents.emitted, metricsEvents.delivered, metricsEvents.failed, metricsEvents.queued, metricsEvents.dropped)
}

// countEvent counts one event of type typ on vec, with sink when the
// vector has that label; unknown types count as "other".
func countEvent(vec *prometheus.CounterVec, typ, sink string) {
	if vec == nil {
		return
	}
	known := false
	for _, t := range events.Types {
		known = known || t == typ
	}
	if !known {
		typ = "other"
	}
	if sink == "" {
		vec.WithLabelValues(typ).Inc()
		return
	}
	vec.WithLabelValues(typ, sink).Inc()
}
