package events

import (
	"context"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
)

// Dispatcher delivers an outbox's events to one sink, as the consumer
// Consumer of the group Group: at least once, in order, each retried
// with exponential backoff until delivered. An event it does not
// acknowledge (a crash, a shutdown mid-retry) stays in the outbox and is
// handed out again after Reclaim.
type Dispatcher struct {
	Outbox   Outbox
	Group    string
	Consumer string
	Sink     Sink
	// Batch is how many events one read takes; default 64.
	Batch int
	// Reclaim is how long an event handed out and not acknowledged stays
	// with its consumer before another may take it; default 1m.
	Reclaim time.Duration
	// Poll is how often an empty outbox is read again; default 1s.
	Poll time.Duration
	// Wake, when set, ends the wait of an empty outbox early.
	Wake <-chan struct{}
	// MinBackoff and MaxBackoff bound the wait before a retry, which
	// doubles from MinBackoff (default 1s) to MaxBackoff (default 5m), with
	// up to a tenth more as jitter.
	MinBackoff, MaxBackoff time.Duration
	// Wait waits d or until ctx is done; injected by tests, default a
	// timer.
	Wait func(ctx context.Context, d time.Duration) error
	// Delivered and Failed count deliveries and failed attempts by type.
	Delivered, Failed func(typ string)
	// Logger logs failed attempts; default none.
	Logger *zap.Logger
}

func (d *Dispatcher) defaults() {
	if d.Batch <= 0 {
		d.Batch = 64
	}
	if d.Reclaim <= 0 {
		d.Reclaim = time.Minute
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = time.Second
	}
	if d.MaxBackoff < d.MinBackoff {
		d.MaxBackoff = max(5*time.Minute, d.MinBackoff)
	}
	if d.Wait == nil {
		d.Wait = sleep
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
}

// Run delivers until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) {
	d.defaults()
	failures := 0
	for ctx.Err() == nil {
		evs, err := d.Outbox.Read(ctx, d.Group, d.Consumer, d.Batch, d.Reclaim)
		if err != nil {
			if ctx.Err() == nil {
				d.Logger.Warn("reading the event outbox", zap.String("sink", d.Group), zap.Error(err))
			}
			_ = d.Wait(ctx, d.Backoff(failures))
			failures++
			continue
		}
		failures = 0
		if len(evs) == 0 {
			d.idle(ctx)
			continue
		}
		for _, ev := range evs {
			if !d.deliver(ctx, ev) {
				return
			}
		}
	}
}

// idle waits for the next poll or a wake-up.
func (d *Dispatcher) idle(ctx context.Context) {
	t := time.NewTimer(d.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-d.Wake:
	}
}

// deliver sends ev until the sink takes it, then acknowledges it; false
// when ctx ended first (ev stays in the outbox).
func (d *Dispatcher) deliver(ctx context.Context, ev Event) bool {
	for attempt := 0; ; attempt++ {
		err := d.Sink.Deliver(ctx, ev)
		if err == nil {
			count(d.Delivered, ev.Type)
			if err := d.Outbox.Ack(ctx, d.Group, []Event{ev}); err != nil && ctx.Err() == nil {
				// delivered again after Reclaim: at least once
				d.Logger.Warn("acknowledging a delivered event", zap.String("sink", d.Group), zap.Error(err))
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		count(d.Failed, ev.Type)
		wait := d.Backoff(attempt)
		d.Logger.Warn("event delivery failed; retrying", zap.String("sink", d.Group), zap.String("type", ev.Type),
			zap.String("event_id", ev.ID), zap.Int("attempt", attempt+1), zap.Duration("retry_in", wait), zap.Error(err))
		if d.Wait(ctx, wait) != nil {
			return false
		}
	}
}

// Backoff is the wait after the attempt-th consecutive failure (from 0):
// MinBackoff doubled attempt times, at most MaxBackoff, plus up to a
// tenth of it as jitter.
func (d *Dispatcher) Backoff(attempt int) time.Duration {
	b := d.MaxBackoff
	if attempt < 30 {
		b = min(d.MinBackoff<<attempt, d.MaxBackoff)
	}
	return b + rand.N(b/10+1)
}

func count(f func(string), typ string) {
	if f != nil {
		f(typ)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
