package caddymodule

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionguard/sessionguard/internal/store"
)

// Values of the endpoint label of revocationRequests.
const (
	endpointBackchannel = "backchannel_logout"
	endpointRevokeHook  = "revoke_hook"
)

// revocationRequests counts back-channel logout and revoke hook requests
// by endpoint and outcome: ok, invalid_request, replayed,
// invalid_signature, stale_timestamp, key_unavailable,
// store_unavailable, not_found, method_not_allowed.
var revocationRequests = struct {
	once sync.Once
	vec  *prometheus.CounterVec
}{}

// registerRevocationMetrics builds the collector once and registers it
// on reg, ignoring that it is registered already.
func registerRevocationMetrics(reg *prometheus.Registry) error {
	revocationRequests.once.Do(func() {
		revocationRequests.vec = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "caddy", Subsystem: "session_guard", Name: "revocation_requests_total",
			Help: "Back-channel logout and revoke hook requests, by endpoint (backchannel_logout, revoke_hook) and outcome.",
		}, []string{"endpoint", "outcome"})
	})
	if reg == nil {
		return nil
	}
	if err := reg.Register(revocationRequests.vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

func countRevocationRequest(endpoint, outcome string) {
	if revocationRequests.vec != nil {
		revocationRequests.vec.WithLabelValues(endpoint, outcome).Inc()
	}
}

// indexCapabilities returns the store's SubjectIndex and OnceStore
// sides, timed and counted like its other operations; nil for a side it
// does not have.
func indexCapabilities(st store.Store) (store.SubjectIndex, store.OnceStore) {
	var (
		x store.SubjectIndex
		o store.OnceStore
	)
	if v, ok := st.(store.SubjectIndex); ok {
		x = instrumentedIndex{v}
	}
	if v, ok := st.(store.OnceStore); ok {
		o = instrumentedOnce{v}
	}
	return x, o
}

type instrumentedIndex struct{ store.SubjectIndex }

// IndexSession implements store.SubjectIndex.
func (s instrumentedIndex) IndexSession(ctx context.Context, e store.IndexEntry) (time.Time, error) {
	start := time.Now()
	cut, err := s.SubjectIndex.IndexSession(ctx, e)
	observe("index", start, err)
	return cut, err
}

// LogoutSID implements store.SubjectIndex.
func (s instrumentedIndex) LogoutSID(ctx context.Context, sidHash string, keep time.Duration) ([]store.Indexed, error) {
	start := time.Now()
	l, err := s.SubjectIndex.LogoutSID(ctx, sidHash, keep)
	observe("index_logout", start, err)
	return l, err
}

// LogoutSubject implements store.SubjectIndex.
func (s instrumentedIndex) LogoutSubject(ctx context.Context, sub string, keep time.Duration) ([]store.Indexed, error) {
	start := time.Now()
	l, err := s.SubjectIndex.LogoutSubject(ctx, sub, keep)
	observe("index_logout", start, err)
	return l, err
}

type instrumentedOnce struct{ store.OnceStore }

// Once implements store.OnceStore.
func (s instrumentedOnce) Once(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.OnceStore.Once(ctx, id, ttl)
	observe("once", start, err)
	return ok, err
}

// Forget implements store.OnceStore.
func (s instrumentedOnce) Forget(ctx context.Context, id string) error {
	start := time.Now()
	err := s.OnceStore.Forget(ctx, id)
	observe("once", start, err)
	return err
}
