package events

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
)

// Sink delivers one event; an error means it was not delivered and is
// to be retried.
type Sink interface {
	Deliver(ctx context.Context, ev Event) error
}

// Log is the sink that writes each event to a logger at info.
type Log struct{ Logger *zap.Logger }

// Deliver implements Sink; it never fails.
func (l Log) Deliver(_ context.Context, ev Event) error {
	l.Logger.Info("session event",
		zap.String("type", ev.Type), zap.String("event_id", ev.ID), zap.Time("time", ev.Time),
		zap.String("account", ev.Account), zap.String("session_id_hash", ev.SessionHash),
		zap.String("user_id", ev.User), zap.String("by", ev.By))
	return nil
}

// Webhook is the sink that POSTs each event, signed per Standard
// Webhooks: webhook-id is the event's id (the same on every retry),
// webhook-timestamp the attempt's time, webhook-signature v1 HMAC-SHA256.
type Webhook struct {
	url    string
	signer *standardwebhooks.Webhook
	client *http.Client
	now    func() time.Time
}

// NewWebhook returns the sink POSTing to url, signing with the raw
// secret, through client (http.DefaultClient when nil), timestamped by
// now.
func NewWebhook(url string, secret []byte, client *http.Client, now func() time.Time) (*Webhook, error) {
	signer, err := standardwebhooks.NewWebhookRaw(secret)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Webhook{url: url, signer: signer, client: client, now: now}, nil
}

// Deliver implements Sink: any 2xx answer is a delivery.
func (w *Webhook) Deliver(ctx context.Context, ev Event) error {
	body := ev.Payload()
	ts := w.now()
	sig, err := w.signer.Sign(ev.ID, ts, body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", ev.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}
