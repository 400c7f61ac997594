package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher sends the scripts of concurrent requests to Redis together, in
// one pipeline, so that under load many requests share one write and one
// read on each side of the connection instead of paying a round trip
// each (what bounds the Redis store's throughput on a small machine is
// the system calls and wake-ups of those round trips, not Redis).
//
// It adds no delay: a call that finds fewer than max pipelines in flight
// is sent at once, alone or with whatever queued before it. Only calls
// that arrive while max pipelines are in flight wait, and they go
// together in the next one. Each request still costs exactly one script
// execution, atomic as before; only how they travel changes.
//
// The queue is bounded (a full queue fails the call at once, as an
// unreachable store does), and a call whose caller gave up while it was
// queued is dropped, never sent late.
//
// A batcher owns no long-lived goroutine: the caller that finds a free
// slot sends the pipeline itself; when calls queued meanwhile, a
// short-lived goroutine sends them and ends when the queue is empty.
//
// On Redis Cluster the batcher is off (every call goes alone): a
// pipeline waits for every master in it, so one slow master would hold
// up the requests of all the others.
type batcher struct {
	client  redis.UniversalClient
	timeout time.Duration
	max     int  // pipelines in flight
	off     bool // every call on its own (Cluster)

	mu       sync.Mutex
	queue    []*batchCall
	inflight int
}

// maxBatch bounds the calls in one pipeline; the queue holds at most
// max * maxBatch calls.
const maxBatch = 128

// errQueueFull is returned when the queue is full: Redis is not keeping
// up, and waiting longer would only answer later what will time out.
var errQueueFull = errors.New("too many requests waiting for redis")

type batchCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	done   chan struct{}
}

func newBatcher(client redis.UniversalClient, timeout time.Duration, pipelines int) *batcher {
	_, cluster := client.(*redis.ClusterClient)
	return &batcher{client: client, timeout: timeout, max: max(pipelines, 1), off: cluster}
}

// run is script.Run through the batcher. ctx bounds the call: a call
// whose context ends while it is queued is dropped.
func (b *batcher) run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if b.off {
		return script.Run(ctx, b.client, keys, args...)
	}
	b.mu.Lock()
	if b.inflight < b.max {
		// A free slot means nothing is queued: send this call alone,
		// under its own context.
		b.inflight++
		b.mu.Unlock()
		defer b.next()
		return script.Run(ctx, b.client, keys, args...)
	}
	if len(b.queue) >= b.max*maxBatch {
		b.mu.Unlock()
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(errQueueFull)
		return cmd
	}
	c := &batchCall{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// take removes up to maxBatch calls from the queue, dropping those whose
// caller is gone; b.mu is held.
func (b *batcher) take() []*batchCall {
	n := min(len(b.queue), maxBatch)
	batch := make([]*batchCall, 0, n)
	for _, c := range b.queue[:n] {
		if c.ctx.Err() != nil { // the caller gave up
			c.cmd = redis.NewCmd(c.ctx)
			c.cmd.SetErr(context.Cause(c.ctx))
			close(c.done)
			continue
		}
		batch = append(batch, c)
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	if rest == 0 && cap(b.queue) > 4*maxBatch {
		b.queue = nil // let a spike's array go
	}
	return batch
}

// next sends what queued while a pipeline was in flight, or frees the
// slot of the pipeline that just ended.
func (b *batcher) next() {
	b.mu.Lock()
	var batch []*batchCall
	for len(b.queue) > 0 && len(batch) == 0 {
		batch = b.take()
	}
	if len(batch) == 0 {
		b.inflight--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go func() {
		defer b.next()
		b.exec(batch)
	}()
}

// exec runs one batch of queued calls and completes every one of them.
func (b *batcher) exec(batch []*batchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	defer func() {
		for _, c := range batch {
			if c.cmd == nil {
				c.cmd = redis.NewCmd(ctx)
				c.cmd.SetErr(errors.New("redis pipeline aborted"))
			}
			close(c.done)
		}
	}()
	if len(batch) == 1 {
		c := batch[0]
		c.cmd = c.script.Run(ctx, b.client, c.keys, c.args...)
		return
	}
	pipe := b.client.Pipeline()
	for _, c := range batch {
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	var retry redis.Pipeliner
	for _, c := range batch {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// the script cache was flushed or a failover lost it: send
			// the source, as Script.Run does
			if retry == nil {
				retry = b.client.Pipeline()
			}
			c.cmd = c.script.Eval(ctx, retry, c.keys, c.args...)
		}
	}
	if retry != nil {
		_, _ = retry.Exec(ctx)
	}
}
