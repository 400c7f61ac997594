package caddymodule

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/policy"
	"github.com/sessionguard/sessionguard/internal/store"
	"github.com/sessionguard/sessionguard/internal/token"
)

// metrics are sessionguard's Prometheus collectors. They are built once
// per process and registered on the metrics registry of every config
// (Caddy makes a fresh registry per config load), so a reload neither
// panics on re-registration nor resets the counters. Every label has a
// small, fixed set of values.
var metrics = struct {
	once         sync.Once
	decisions    *prometheus.CounterVec
	storeLatency *prometheus.HistogramVec
	storeErrors  *prometheus.CounterVec
	revocations  prometheus.Counter
	created      prometheus.Counter

	// The series of nearly every request, looked up once.
	touchLatency prometheus.Observer // storeLatency{op="touch"}
	proxyAllowed prometheus.Counter  // decisions{endpoint="proxy",outcome="allowed"}
}{}

// Values of the decisions' endpoint label: the proxied requests and the
// session endpoints served by the handler.
const (
	endpointProxy     = "proxy"
	endpointStatus    = "status"
	endpointKeepalive = "keepalive"
	endpointLogout    = "logout"
	endpointAccount   = "account" // the owner endpoints, /.session/account*
)

// decisionOutcomes are the values of the outcome label; anything else is
// counted as "other".
var decisionOutcomes = map[string]bool{
	"allowed": true, "fail_open": true, "unbound": true,
	"no_token": true, "invalid_request": true, "invalid_token": true,
	"key_unavailable": true, "canceled": true, "store_unavailable": true,
	"idle": true, "absolute": true, "revoked": true, "cross_site": true,
}

// registerMetrics builds the collectors on first use and registers them
// on reg, ignoring the error that they are registered already.
func registerMetrics(reg *prometheus.Registry) error {
	const ns, sub = "caddy", "session_guard"
	metrics.once.Do(func() {
		metrics.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "decisions_total",
			Help: "Requests checked by session_guard, by endpoint (proxy, status, keepalive, logout) and outcome (allowed, fail_open, unbound, or the rejection reason).",
		}, []string{"endpoint", "outcome"})
		metrics.storeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "store_latency_seconds",
			Help:    "Latency of session store operations, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op"})
		metrics.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "store_errors_total",
			Help: "Session store operations that failed, by operation.",
		}, []string{"op"})
		metrics.revocations = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "revocations_total",
			Help: "Live sessions ended by revocation through this instance.",
		})
		metrics.created = prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions_created_total",
			Help: "Sessions first seen by this instance.",
		})
		metrics.touchLatency = metrics.storeLatency.WithLabelValues("touch")
		metrics.proxyAllowed = metrics.decisions.WithLabelValues(endpointProxy, "allowed")
	})
	if err := registerOn(reg, metrics.decisions, metrics.storeLatency, metrics.storeErrors, metrics.revocations, metrics.created); err != nil {
		return err
	}
	if err := registerEventMetrics(reg); err != nil {
		return err
	}
	return registerRevocationMetrics(reg)
}

// registerOn registers cs on reg (nil: none), ignoring those registered
// already (a reload).
func registerOn(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// observeDecision counts the outcome of one check on endpoint (one of
// the endpoint* constants): rejected requests by the reason check put in
// the replacer, passed ones as allowed, fail_open (store down,
// on_store_error open) or unbound (opaque cookie without a session).
func (h *Handler) observeDecision(endpoint string, repl *caddy.Replacer, rejected bool, ident *token.Identity, res *store.TouchResult) {
	outcome := "allowed"
	switch {
	case rejected:
		outcome = "other"
		if v, _ := repl.Get("http.session_guard.reason"); v != nil {
			if s, ok := v.(string); ok && decisionOutcomes[s] {
				outcome = s
			}
		}
	case ident == nil:
		// opaque mode: no session bound to the cookie, or nobody could
		// tell whose it is (store down, failing open)
		outcome = "unbound"
		if v, _ := repl.Get("http.session_guard.reason"); v == "store_unavailable" {
			outcome = "fail_open"
		}
	case res == nil:
		outcome = "fail_open"
	}
	countDecision(endpoint, outcome)
}

// countDecision counts one decision with a known outcome.
func countDecision(endpoint, outcome string) {
	switch {
	case metrics.decisions == nil:
	case endpoint == endpointProxy && outcome == "allowed":
		metrics.proxyAllowed.Inc()
	default:
		metrics.decisions.WithLabelValues(endpoint, outcome).Inc()
	}
}

// instrumentStore wraps st so that every operation is timed and its
// errors counted. The wrapper keeps st's optional SecretStore.
func instrumentStore(st store.Store) store.Store {
	if st == nil {
		return nil
	}
	in := &instrumented{Store: st}
	if ss, ok := st.(store.SecretStore); ok {
		return &instrumentedSecret{instrumented: in, secret: ss}
	}
	return in
}

// unwrapStore returns the store instrumentStore wrapped.
func unwrapStore(st store.Store) store.Store {
	switch s := st.(type) {
	case *instrumented:
		return s.Store
	case *instrumentedSecret:
		return s.Store
	}
	return st
}

// instrumented is a store.Store that records metrics.
type instrumented struct {
	store.Store
}

func observe(op string, start time.Time, err error) {
	if metrics.storeLatency == nil {
		return
	}
	latency := metrics.touchLatency
	if op != "touch" {
		latency = metrics.storeLatency.WithLabelValues(op)
	}
	latency.Observe(time.Since(start).Seconds())
	if err != nil && errors.Is(err, store.ErrUnavailable) {
		metrics.storeErrors.WithLabelValues(op).Inc()
	}
}

// Touch implements store.Store.
func (s *instrumented) Touch(ctx context.Context, req *store.TouchRequest) (store.TouchResult, error) {
	start := time.Now()
	res, err := s.Store.Touch(ctx, req)
	observe("touch", start, err)
	if err == nil && res.Created && metrics.created != nil {
		metrics.created.Inc()
	}
	return res, err
}

// Sessions implements store.Store.
func (s *instrumented) Sessions(ctx context.Context, account string, cfg *policy.Config, page store.Page) (store.SessionPage, error) {
	start := time.Now()
	l, err := s.Store.Sessions(ctx, account, cfg, page)
	observe("sessions", start, err)
	return l, err
}

// Revoke implements store.Store.
func (s *instrumented) Revoke(ctx context.Context, req store.RevokeRequest) (int, error) {
	start := time.Now()
	n, err := s.Store.Revoke(ctx, req)
	observe("revoke", start, err)
	if err == nil && metrics.revocations != nil {
		metrics.revocations.Add(float64(n))
	}
	return n, err
}

// Override implements store.Store.
func (s *instrumented) Override(ctx context.Context, account string) (policy.Override, error) {
	start := time.Now()
	ov, err := s.Store.Override(ctx, account)
	observe("override", start, err)
	return ov, err
}

// SetOverride implements store.Store.
func (s *instrumented) SetOverride(ctx context.Context, account string, ov policy.Override) (policy.Override, error) {
	start := time.Now()
	old, err := s.Store.SetOverride(ctx, account, ov)
	observe("set_override", start, err)
	return old, err
}

// AppendAudit implements store.Store.
func (s *instrumented) AppendAudit(ctx context.Context, account string, ev store.Event) error {
	start := time.Now()
	err := s.Store.AppendAudit(ctx, account, ev)
	observe("append_audit", start, err)
	return err
}

// Audit implements store.Store.
func (s *instrumented) Audit(ctx context.Context, account string, limit int) ([]store.Event, error) {
	start := time.Now()
	l, err := s.Store.Audit(ctx, account, limit)
	observe("audit", start, err)
	return l, err
}

// Ping implements store.Store.
func (s *instrumented) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	observe("ping", start, err)
	return err
}

// instrumentedSecret is instrumented for a store that also keeps
// secrets.
type instrumentedSecret struct {
	*instrumented
	secret store.SecretStore
}

// Secret implements store.SecretStore.
func (s *instrumentedSecret) Secret(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	start := time.Now()
	b, err := s.secret.Secret(ctx, name, fresh)
	observe("secret", start, err)
	return b, err
}

// instrumentedOpaque is an OpaqueStore that records metrics; its
// operations count as touches.
type instrumentedOpaque struct {
	store.OpaqueStore
}

// Lookup implements store.OpaqueStore.
func (s instrumentedOpaque) Lookup(ctx context.Context, req *store.TouchRequest) (store.OpaqueResult, error) {
	start := time.Now()
	res, err := s.OpaqueStore.Lookup(ctx, req)
	observe("touch", start, err)
	return res, err
}

// Bind implements store.OpaqueStore.
func (s instrumentedOpaque) Bind(ctx context.Context, req *store.TouchRequest) (store.OpaqueResult, error) {
	start := time.Now()
	res, err := s.OpaqueStore.Bind(ctx, req)
	observe("touch", start, err)
	if err == nil && res.Created && metrics.created != nil {
		metrics.created.Inc()
	}
	return res, err
}

// Interface guards
var (
	_ store.Store       = (*instrumented)(nil)
	_ store.Store       = (*instrumentedSecret)(nil)
	_ store.SecretStore = (*instrumentedSecret)(nil)
	_ store.OpaqueStore = instrumentedOpaque{}
)
