package store

import (
	"context"
	"testing"
)

// TestBatcherCanceledWhileQueued: a call whose context ends while it is
// queued gets an error command, never nil, whichever of its done channel
// and its context the caller sees first.
func TestBatcherCanceledWhileQueued(t *testing.T) {
	for i := 0; i < 2000; i++ {
		b := &batcher{max: 1, inflight: 1} // the only pipeline is busy
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error)
		go func() {
			cmd := b.run(ctx, scriptTouch, []string{"k"})
			if cmd == nil {
				got <- nil
				return
			}
			got <- cmd.Err()
		}()
		for { // wait until queued
			b.mu.Lock()
			n := len(b.queue)
			b.mu.Unlock()
			if n == 1 {
				break
			}
		}
		cancel()
		b.next() // the busy pipeline ends; the queued call is dropped
		if err := <-got; err == nil {
			t.Fatalf("round %d: a call canceled while queued returned no error (nil command or success)", i)
		}
		b.mu.Lock()
		inflight, queued := b.inflight, len(b.queue)
		b.mu.Unlock()
		if inflight != 0 || queued != 0 {
			t.Fatalf("round %d: %d in flight, %d queued after the queue drained", i, inflight, queued)
		}
	}
}
