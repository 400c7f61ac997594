package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionguard/sessionguard/internal/events"
)

// The example receiver accepts what the gateway's webhook sink sends,
// once per webhook-id, and refuses another secret's signature and a
// stale timestamp.
func TestReceiverVerifiesTheSink(t *testing.T) {
	key := []byte("events-secret-0123456789abcdef01")
	var got []Event
	rc, err := NewReceiver("whsec_"+base64.StdEncoding.EncodeToString(key), func(_ string, ev Event) { got = append(got, ev) })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ev := events.Event{ID: "evt_acme_1-0", Type: events.Revoked, Time: time.Now(), Account: "acme", SessionHash: "h", User: "alice", By: events.ByLogout}
	send := func(key []byte, now func() time.Time) error {
		sink, err := events.NewWebhook(srv.URL, key, srv.Client(), now)
		if err != nil {
			t.Fatal(err)
		}
		return sink.Deliver(context.Background(), ev)
	}
	for i := 0; i < 2; i++ { // a retry: accepted, handled once
		if err := send(key, time.Now); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if len(got) != 1 || got[0].Type != events.Revoked || got[0].By != "logout" || got[0].SessionIDHash != "h" {
		t.Fatalf("handled %+v, want the one event once", got)
	}
	if err := send([]byte("another-secret-0123456789abcdef0"), time.Now); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("another secret's signature: %v, want 401", err)
	}
	if err := send(key, func() time.Time { return time.Now().Add(-time.Hour) }); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("an hour-old timestamp: %v, want 401", err)
	}
	r, _ := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", r.StatusCode)
	}
	r.Body.Close()
}
