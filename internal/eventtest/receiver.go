// Package eventtest is a webhook receiver for tests of the lifecycle
// events: a real HTTP server that verifies each delivery's Standard
// Webhooks signature, fails the first deliveries on request, and counts
// what it accepted by webhook-id and by event.
package eventtest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessionguard/sessionguard/internal/events"
)

// Receiver is the test receiver.
type Receiver struct {
	URL string
	// Secret is the whsec_ form of the signing key, for the gateway.
	Secret string

	t      testing.TB
	wh     *standardwebhooks.Webhook
	mu     sync.Mutex
	fail   int                     // deliveries still to fail
	tries  []string                // webhook-id of every attempt
	byID   map[string]int          // accepted deliveries per webhook-id
	events map[string]events.Event // accepted event per webhook-id
	bad    int                     // attempts with a bad signature or body
}

// Start starts a receiver with key that answers 503 to the first
// failFirst deliveries; it stops with the test.
func Start(t testing.TB, key []byte, failFirst int) *Receiver {
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{t: t, wh: wh, fail: failFirst, byID: map[string]int{}, events: map[string]events.Event{},
		Secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// ServeHTTP verifies and records one delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev events.Event
	// the timestamp is the gateway's (possibly injected) clock
	err := rc.wh.VerifyIgnoringTimestamp(body, r.Header)
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tries = append(rc.tries, id)
	if err != nil {
		rc.bad++
		rc.t.Errorf("delivery %s: %v (body %s)", id, err, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if rc.fail > 0 {
		rc.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.byID[id]++
	rc.events[id] = ev
	w.WriteHeader(http.StatusNoContent)
}

// Attempts returns the webhook-id of every attempt, in order.
func (rc *Receiver) Attempts() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.tries...)
}

// Key names an event for counting: "type session_id_hash by".
func Key(ev events.Event) string { return ev.Type + " " + ev.SessionHash + " " + ev.By }

// Counts returns the distinct events accepted (de-duplicated by
// webhook-id, as at-least-once allows), counted by Key; and how many
// webhook-ids were accepted more than once.
func (rc *Receiver) Counts() (byKey map[string]int, redelivered int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	byKey = map[string]int{}
	for id, ev := range rc.events {
		byKey[Key(ev)]++
		if rc.byID[id] > 1 {
			redelivered++
		}
	}
	return byKey, redelivered
}

// Events returns the distinct events accepted.
func (rc *Receiver) Events() []events.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]events.Event, 0, len(rc.events))
	for _, ev := range rc.events {
		out = append(out, ev)
	}
	return out
}

// WaitFor waits up to d until the receiver has accepted n distinct
// events, and reports whether it has.
func (rc *Receiver) WaitFor(n int, d time.Duration) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		rc.mu.Lock()
		got := len(rc.events)
		rc.mu.Unlock()
		if got >= n || time.Now().After(end) {
			return got >= n
		}
	}
}

// Diff lists, one per line and sorted, the keys whose counts differ
// between got and want as "key: got/want"; empty when they agree.
func Diff(got, want map[string]int) string {
	var lines []string
	for k, n := range want {
		if got[k] != n {
			lines = append(lines, k+": "+strconv.Itoa(got[k])+"/"+strconv.Itoa(n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, k+": "+strconv.Itoa(n)+"/0")
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
