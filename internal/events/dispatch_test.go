package events_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessionguard/sessionguard/internal/events"
	"github.com/sessionguard/sessionguard/internal/testclock"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

var secret = []byte("0123456789abcdef0123456789abcdef")

// receiver is a real HTTP receiver that verifies every delivery's
// Standard Webhooks signature and fails the first failFirst of them.
type receiver struct {
	t         *testing.T
	clock     *testclock.Clock
	failFirst int

	mu       sync.Mutex
	attempts []string       // webhook-id of every attempt
	got      map[string]int // webhook-id -> accepted deliveries
	bodies   map[string]events.Event
}

func newReceiver(t *testing.T, clock *testclock.Clock, failFirst int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, clock: clock, failFirst: failFirst, got: map[string]int{}, bodies: map[string]events.Event{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	wh, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString(secret))
	if err := wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
		rc.t.Errorf("bad signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if ts := r.Header.Get("webhook-timestamp"); ts != strconv.FormatInt(rc.clock.Now().Unix(), 10) {
		rc.t.Errorf("webhook-timestamp %s, want the injected clock's %d", ts, rc.clock.Now().Unix())
	}
	var ev events.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("body %s: %v", body, err)
	}
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts = append(rc.attempts, id)
	if len(rc.attempts) <= rc.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.got[id]++
	rc.bodies[id] = ev
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) delivered() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// waits records the dispatcher's backoff waits and returns at once.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

// A receiver that fails the first deliveries gets every event exactly
// once in the end, each retry signed and carrying the same webhook-id,
// after waits that double from the minimum.
func TestWebhookRetriesWithBackoffAndSameID(t *testing.T) {
	clock := testclock.New(t0)
	rc, srv := newReceiver(t, clock, 3)
	ob := events.NewMemory(clock.Now, 100, nil)
	for i, typ := range []string{events.Created, events.Revoked, events.PolicyUpdate} {
		ob.Append(events.Event{Type: typ, Account: "acme", SessionHash: "h" + strconv.Itoa(i), User: "alice"})
	}
	sink, err := events.NewWebhook(srv.URL, secret, srv.Client(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	var w waits
	var mu sync.Mutex
	delivered, failed := map[string]int{}, map[string]int{}
	d := &events.Dispatcher{Outbox: ob, Group: "webhook", Consumer: "c1", Sink: sink, Wait: w.wait, Poll: time.Millisecond,
		Delivered: func(typ string) { mu.Lock(); delivered[typ]++; mu.Unlock() },
		Failed:    func(typ string) { mu.Lock(); failed[typ]++; mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	// done when the dispatcher has acknowledged all three, not when the
	// receiver has answered the third (the dispatcher counts and
	// acknowledges it after that)
	settled := func() bool {
		n, err := ob.Queued(context.Background(), "webhook")
		return err == nil && n == 0 && rc.delivered() >= 3
	}
	deadline := time.Now().Add(5 * time.Second)
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 3 {
		t.Fatalf("delivered %v, want 3 distinct events", rc.got)
	}
	for id, n := range rc.got {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
	// the first event failed three times: four attempts with one id
	for i := 0; i < 4; i++ {
		if rc.attempts[i] != rc.attempts[0] {
			t.Fatalf("attempts %v: the retries of one event must carry the same webhook-id", rc.attempts)
		}
	}
	if len(rc.attempts) != 6 {
		t.Errorf("%d attempts, want 6 (3 failures, 3 deliveries)", len(rc.attempts))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if i >= len(w.d) || w.d[i] < want || w.d[i] > want+want/10 {
			t.Fatalf("waits %v, want 1s, 2s, 4s (plus up to a tenth)", w.d)
		}
	}
	if len(w.d) != 3 {
		t.Errorf("waits %v, want exactly 3", w.d)
	}
	if failed[events.Created] != 3 || delivered[events.Created] != 1 || delivered[events.Revoked] != 1 || delivered[events.PolicyUpdate] != 1 {
		t.Errorf("delivered %v failed %v", delivered, failed)
	}
	if n, _ := ob.Queued(context.Background(), "webhook"); n != 0 {
		t.Errorf("queued %d after delivery, want 0", n)
	}
}

// A dispatcher stopped while retrying leaves the event in the outbox;
// another consumer takes it after the reclaim time, with the same id.
func TestUnacknowledgedEventIsReclaimed(t *testing.T) {
	clock := testclock.New(t0)
	ob := events.NewMemory(clock.Now, 100, nil)
	ob.Append(events.Event{Type: events.Created, Account: "acme", SessionHash: "h"})
	ctx := context.Background()
	first, err := ob.Read(ctx, "webhook", "a", 10, time.Minute)
	if err != nil || len(first) != 1 {
		t.Fatalf("read %v %v", first, err)
	}
	if again, _ := ob.Read(ctx, "webhook", "b", 10, time.Minute); len(again) != 0 {
		t.Fatalf("handed out twice before the reclaim time: %v", again)
	}
	clock.Advance(time.Minute)
	again, _ := ob.Read(ctx, "webhook", "b", 10, time.Minute)
	if len(again) != 1 || again[0].ID != first[0].ID {
		t.Fatalf("after the reclaim time got %v, want the same event %s", again, first[0].ID)
	}
	if n, _ := ob.Queued(ctx, "log"); n != 1 {
		t.Errorf("another group's queue is %d, want 1: groups are independent", n)
	}
	if err := ob.Ack(ctx, "webhook", again); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if evs, _ := ob.Read(ctx, "webhook", "b", 10, time.Minute); len(evs) != 0 {
		t.Fatalf("an acknowledged event came back: %v", evs)
	}
}

// A full outbox drops the oldest events and reports how many.
func TestMemoryOutboxBounded(t *testing.T) {
	clock := testclock.New(t0)
	dropped := 0
	ob := events.NewMemory(clock.Now, 3, &events.Hooks{Dropped: func(n int) { dropped += n }})
	for i := 0; i < 5; i++ {
		ob.Append(events.Event{Type: events.Created, Account: "acme", SessionHash: strconv.Itoa(i)})
	}
	if dropped != 2 {
		t.Errorf("dropped %d, want 2", dropped)
	}
	evs, _ := ob.Read(context.Background(), "log", "c", 10, time.Minute)
	if len(evs) != 3 || evs[0].SessionHash != "2" || evs[2].SessionHash != "4" {
		t.Fatalf("kept %v, want the newest three", evs)
	}
}
