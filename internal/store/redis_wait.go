package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revocations that survive a failover. Redis replicates asynchronously:
// a master that acknowledged a write and then died before sending it on
// loses the write when its replica is promoted, and a revoked session
// would pass again. So a revocation runs on one connection to the master
// that owns its keys and is followed, on that same connection, by WAIT,
// which counts the replicas that acknowledged that connection's writes
// (go-redis pools connections: a WAIT on another one would count
// nothing). The revocation returns only when enough did; otherwise it
// fails with ErrNotReplicated, wrapped in ErrUnavailable, and the caller
// answers 503: the master has it, but a failover may still lose it.

// ErrNotReplicated is wrapped in the error of a revocation that the
// master made but fewer replicas than RevokeReplicas acknowledged in
// time.
var ErrNotReplicated = errors.New("revocation not acknowledged by enough replicas")

// replicaWait is how many replicas a revocation waits for, and how long.
type replicaWait struct {
	want    int // autoReplicas: see need
	timeout time.Duration
	// seen: a master has reported a connected replica (autoReplicas)
	seen atomic.Bool
}

// autoReplicas is replicaWait.want for RedisOptions.RevokeReplicas nil.
const autoReplicas = -1

func newReplicaWait(opts RedisOptions) *replicaWait {
	w := &replicaWait{want: autoReplicas, timeout: opts.RevokeReplicasTimeout}
	if opts.RevokeReplicas != nil {
		w.want = max(*opts.RevokeReplicas, 0)
	}
	if w.timeout <= 0 {
		w.timeout = opts.Timeout
	}
	// WAIT's timeout is in whole milliseconds, and 0 would block for ever.
	w.timeout = max(w.timeout.Truncate(time.Millisecond), time.Millisecond)
	return w
}

// withRevokeTimeout is withTimeout for a revocation: the store timeout,
// plus the replicas' when it may wait for them.
func (r *Redis) withRevokeTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.wait.want == 0 {
		return r.withTimeout(ctx)
	}
	return context.WithTimeout(ctx, r.timeout+r.wait.timeout)
}

// runReplicated is s.Run for a write that must survive a failover (a
// revocation, an override that apply immediately puts in force at once):
// it runs s on a
// connection of its own to the master owning keys[0] and then, when
// replicas must acknowledge it, WAITs for them on that connection. Its
// error wraps ErrNotReplicated when too few did.
func (r *Redis) runReplicated(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	err := r.onMaster(ctx, keys[0], func(sc redis.Cmdable) error {
		cmd = s.Run(ctx, sc, keys, args...)
		return cmd.Err()
	})
	if cmd == nil {
		return failedCmd(ctx, err)
	}
	if err != nil && cmd.Err() == nil {
		cmd.SetErr(err)
	}
	return cmd
}

// onMaster runs do with a client for the master owning key: when
// replicas must acknowledge, a connection of its own, and after do one
// WAIT on it, which covers every write do made (a revocation in several
// steps waits once, after the last). Its error is do's, or wraps
// ErrNotReplicated.
func (r *Redis) onMaster(ctx context.Context, key string, do func(redis.Cmdable) error) error {
	if r.wait.want == 0 {
		return do(r.client)
	}
	conn, err := r.masterConn(ctx, key)
	if err != nil {
		return err
	}
	defer conn.Close()
	nctx, cancel := r.withTimeout(ctx)
	n, err := r.wait.need(nctx, conn)
	cancel()
	if err == nil {
		err = do(conn)
	}
	if err != nil {
		r.followFailover(ctx)
		return err
	}
	if n == 0 {
		return nil
	}
	wctx, cancel := r.withRevokeTimeout(ctx)
	defer cancel()
	return r.wait.wait(wctx, conn, n)
}

// masterConn returns a connection to the master that owns key; the
// caller closes it (which returns it to the pool).
func (r *Redis) masterConn(ctx context.Context, key string) (*redis.Conn, error) {
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Conn(), nil
	case *redis.Client: // a single node, or the master through Sentinel
		return c.Conn(), nil
	}
	return nil, fmt.Errorf("waiting for replicas needs a single-node, Sentinel or Cluster client, not %T", r.client)
}

// followFailover makes a Cluster client reload its slot map after a
// failed revocation (a MOVED from a demoted master, a dead node): the
// revocation itself fails (503), and the next one goes to the promoted
// master. The revocation's connection bypasses the client's own
// redirect handling, which would have done the same.
func (r *Redis) followFailover(ctx context.Context) {
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}

// need is how many replicas to wait for. Unset (autoReplicas), it is 1
// once a master has reported a connected replica (INFO replication, on
// conn, asked until one has) and 0 before: a topology without replicas
// has no failover that could lose a write, and one that had a replica
// keeps waiting for one, so that a revocation is never acknowledged
// unreplicated while the replica is down.
func (w *replicaWait) need(ctx context.Context, conn *redis.Conn) (int, error) {
	if w.want != autoReplicas {
		return w.want, nil
	}
	if w.seen.Load() {
		return 1, nil
	}
	info, err := conn.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	if connectedReplicas(info) == 0 {
		return 0, nil
	}
	w.seen.Store(true)
	return 1, nil
}

// wait WAITs on conn until n replicas acknowledged its writes.
func (w *replicaWait) wait(ctx context.Context, conn *redis.Conn, n int) error {
	got, err := conn.Wait(ctx, n, w.timeout).Result()
	if err != nil {
		return fmt.Errorf("%w: WAIT: %w", ErrNotReplicated, err)
	}
	if got < int64(n) {
		return fmt.Errorf("%w: %d of %d acknowledged within %v", ErrNotReplicated, got, n, w.timeout)
	}
	return nil
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// failedCmd is a command that failed with err before reaching Redis.
func failedCmd(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}
