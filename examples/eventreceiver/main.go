// Command eventreceiver is an example receiver of sessionguard's
// lifecycle events webhook: it verifies each delivery's Standard
// Webhooks signature and timestamp, drops deliveries whose webhook-id it
// has seen (delivery is at least once), and prints the event.
//
//	SESSION_EVENTS_SECRET=whsec_... go run ./examples/eventreceiver -listen :8099
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Event is the JSON body of a delivery.
type Event struct {
	Type          string `json:"type"`
	Time          string `json:"time"`
	Account       string `json:"account"`
	SessionIDHash string `json:"session_id_hash,omitempty"`
	UserID        string `json:"user_id,omitempty"`
	By            string `json:"by,omitempty"`
}

// Receiver verifies and de-duplicates deliveries and hands each event
// to Handle once.
type Receiver struct {
	wh     *standardwebhooks.Webhook
	Handle func(id string, ev Event)

	mu   sync.Mutex
	seen map[string]bool // a real receiver keeps these for a few days, durably
}

// NewReceiver returns a receiver for the whsec_ secret configured in the
// gateway's events webhook.
func NewReceiver(secret string, handle func(string, Event)) (*Receiver, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &Receiver{wh: wh, Handle: handle, seen: map[string]bool{}}, nil
}

// ServeHTTP answers 204 to a delivery it verified (or had already), 401
// to a bad signature or a timestamp more than 5 minutes off, 400 to a
// bad body.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	if err := rc.wh.Verify(body, r.Header); err != nil {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	dup := rc.seen[id]
	rc.seen[id] = true
	rc.mu.Unlock()
	if !dup {
		rc.Handle(id, ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

func main() {
	listen := flag.String("listen", ":8099", "address to listen on")
	flag.Parse()
	rc, err := NewReceiver(os.Getenv("SESSION_EVENTS_SECRET"), func(id string, ev Event) {
		log.Printf("%s %s account=%s session=%s user=%s by=%s at=%s", id, ev.Type, ev.Account, ev.SessionIDHash, ev.UserID, ev.By, ev.Time)
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(*listen, rc))
}
