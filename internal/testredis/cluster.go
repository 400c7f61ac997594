package testredis

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterReadyTimeout bounds how long a fresh Cluster may take to reach
// cluster_state:ok on every node.
const clusterReadyTimeout = 30 * time.Second

// Cluster is a Redis Cluster of three masters, each a real redis-server
// on a free loopback port, created with `redis-cli --cluster create`;
// with WithReplicas, each master has one replica.
type Cluster struct {
	// Nodes are the three masters as started. After a failover (see
	// WaitPromoted) a node may have become a replica; MasterOf reports
	// the current master of a slot.
	Nodes [3]*Server
	// Replicas are the replicas as started (empty without WithReplicas).
	Replicas []*Server
}

// ClusterOption configures StartCluster.
type ClusterOption func(*clusterConfig)

type clusterConfig struct{ replicas bool }

// WithReplicas gives each master one replica
// (`redis-cli --cluster create --cluster-replicas 1`), so that killing a
// master makes the cluster promote its replica.
func WithReplicas() ClusterOption { return func(c *clusterConfig) { c.replicas = true } }

// StartCluster starts three cluster-enabled servers (cluster-node-timeout
// 1000ms, repl-ping-replica-period 1), joins them with `redis-cli --cluster create --cluster-yes`
// and waits until every node reports cluster_state:ok and knows all the
// others; with WithReplicas it starts three more as replicas and also
// waits until each replica's link to its master is up. It fails the
// test, never skips it, when redis-server or redis-cli is missing.
func StartCluster(tb testing.TB, opts ...ClusterOption) *Cluster {
	tb.Helper()
	var cfg clusterConfig
	for _, o := range opts {
		o(&cfg)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("testredis: redis-cli not found on PATH (%v): %s", err, installHint)
	}
	c := &Cluster{}
	node := func() *Server {
		// A replica syncs at once (no diskless-sync delay, 5s by
		// default) and is pinged every second, so that its offset, and
		// with it its listing in CLUSTER SLOTS, comes within a second
		// instead of 10s.
		return Start(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1")
	}
	args := []string{"--cluster", "create"}
	for i := range c.Nodes {
		c.Nodes[i] = node()
		args = append(args, c.Nodes[i].Addr())
	}
	if cfg.replicas {
		for range c.Nodes {
			r := node()
			c.Replicas = append(c.Replicas, r)
			args = append(args, r.Addr())
		}
		args = append(args, "--cluster-replicas", "1")
	}
	known := fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes)+len(c.Replicas))
	args = append(args, "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("testredis: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	waitFor(tb, clusterReadyTimeout, "cluster_state:ok on every node", func() bool {
		for _, n := range c.all() {
			info := n.CLI(tb, "CLUSTER", "INFO")
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, known) {
				return false
			}
		}
		for _, r := range c.Replicas {
			info := r.CLI(tb, "INFO", "replication")
			if !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_link_status:up") {
				return false
			}
		}
		return len(c.Replicas) == 0 || c.replicasListed()
	})
	return c
}

// WaitReplicasListed waits until every running node's CLUSTER SLOTS
// lists a replica for every slot range: after a killed node was
// restarted and rejoined as a replica, before ReplicaOf can report it.
func (c *Cluster) WaitReplicasListed(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	waitFor(tb, timeout, "every slot range to list a replica", c.replicasListed)
}

func (c *Cluster) replicasListed() bool {
	for _, n := range c.all() {
		if !n.running() {
			continue
		}
		ranges, err := n.clusterSlots()
		if err != nil || len(ranges) == 0 {
			return false
		}
		for _, r := range ranges {
			if len(r.Nodes) < 2 {
				return false
			}
		}
	}
	return true
}

func (c *Cluster) all() []*Server { return append(c.Nodes[:], c.Replicas...) }

// Addrs returns the masters' addresses (as started), the seeds a client
// needs.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Slot returns the hash slot of key (CLUSTER KEYSLOT).
func (c *Cluster) Slot(tb testing.TB, key string) int {
	tb.Helper()
	n, err := strconv.Atoi(c.live(tb).CLI(tb, "CLUSTER", "KEYSLOT", key))
	if err != nil {
		tb.Fatalf("testredis: CLUSTER KEYSLOT %s: %v", key, err)
	}
	return n
}

// MasterOf returns the node that a live node's CLUSTER SHARDS reports as
// the master serving slot.
func (c *Cluster) MasterOf(tb testing.TB, slot int) *Server {
	tb.Helper()
	m, _ := c.shardOf(tb, slot)
	return m
}

// ReplicaOf returns the replica of the shard serving slot, failing the
// test when it has none.
func (c *Cluster) ReplicaOf(tb testing.TB, slot int) *Server {
	tb.Helper()
	_, r := c.shardOf(tb, slot)
	if r == nil {
		tb.Fatalf("testredis: slot %d has no replica (start the cluster WithReplicas)", slot)
	}
	return r
}

// WaitPromoted waits until a node other than old serves slot as master,
// says role:master, and every running node reports cluster_state:ok. It
// returns the new master. Use it after killing old.
func (c *Cluster) WaitPromoted(tb testing.TB, slot int, old *Server, timeout time.Duration) *Server {
	tb.Helper()
	var m *Server
	waitFor(tb, timeout, fmt.Sprintf("a replica to be promoted for slot %d", slot), func() bool {
		m = c.tryMasterOf(slot)
		if m == nil || m == old || !strings.Contains(m.CLI(tb, "INFO", "replication"), "role:master") {
			return false
		}
		for _, n := range c.all() {
			if n == old || !n.running() {
				continue
			}
			if !strings.Contains(n.CLI(tb, "CLUSTER", "INFO"), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return m
}

// WaitReplicated waits until every replica of master has processed all
// of master's replication stream up to now (its slave_repl_offset
// reaches the master's master_repl_offset read at the call), so that
// every write master acknowledged before the call survives a failover.
// Unlike WAIT from a fresh connection, which returns at once because
// that connection wrote nothing, it covers other clients' writes.
func WaitReplicated(tb testing.TB, master *Server, replicas []*Server, timeout time.Duration) {
	tb.Helper()
	want := infoInt(tb, master, "master_repl_offset")
	waitFor(tb, timeout, fmt.Sprintf("replicas at offset %d", want), func() bool {
		for _, r := range replicas {
			if infoInt(tb, r, "slave_repl_offset") < want {
				return false
			}
		}
		return true
	})
}

func infoInt(tb testing.TB, s *Server, field string) int64 {
	tb.Helper()
	for _, l := range strings.Split(s.CLI(tb, "INFO", "replication"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatalf("testredis: INFO replication %s: %q", field, v)
			}
			return n
		}
	}
	tb.Fatalf("testredis: %s not in INFO replication of %s", field, s.Addr())
	return 0
}

// live returns a running node.
func (c *Cluster) live(tb testing.TB) *Server {
	tb.Helper()
	for _, n := range c.all() {
		if n.running() {
			return n
		}
	}
	tb.Fatalf("testredis: no cluster node is running")
	return nil
}

func (c *Cluster) byAddr(a string) *Server {
	for _, n := range c.all() {
		if n.Addr() == a {
			return n
		}
	}
	return nil
}

func (c *Cluster) shardOf(tb testing.TB, slot int) (master, replica *Server) {
	tb.Helper()
	master, replica, err := c.tryShardOf(slot)
	if err != nil {
		tb.Fatalf("testredis: %v", err)
	}
	return master, replica
}

func (c *Cluster) tryMasterOf(slot int) *Server {
	m, _, err := c.tryShardOf(slot)
	if err != nil {
		return nil
	}
	return m
}

// tryShardOf asks a running node CLUSTER SLOTS for slot's master and
// first replica.
func (c *Cluster) tryShardOf(slot int) (master, replica *Server, err error) {
	for _, n := range c.all() {
		if !n.running() {
			continue
		}
		ranges, err := n.clusterSlots()
		if err != nil {
			continue
		}
		for _, r := range ranges {
			if slot < r.Start || slot > r.End || len(r.Nodes) == 0 {
				continue
			}
			master = c.byAddr(r.Nodes[0].Addr)
			if len(r.Nodes) > 1 {
				replica = c.byAddr(r.Nodes[1].Addr)
			}
			if master == nil {
				return nil, nil, fmt.Errorf("slot %d served by unknown node %s", slot, r.Nodes[0].Addr)
			}
			return master, replica, nil
		}
		return nil, nil, fmt.Errorf("slot %d not served (CLUSTER SLOTS on %s)", slot, n.Addr())
	}
	return nil, nil, fmt.Errorf("no running cluster node answers CLUSTER SLOTS")
}

// Client returns a go-redis cluster client on all nodes, closed at
// cleanup. Its slot map is reloaded when older than 1s (go-redis's
// default is 60s, and a killed master sends no MOVED to trigger one), so
// that it follows a failover within about a second.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true,
		ClusterStateReloadInterval: time.Second})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// clusterSlots is the node's CLUSTER SLOTS, on a client of its own.
func (s *Server) clusterSlots() ([]redis.ClusterSlot, error) {
	cl := s.newClient()
	defer cl.Close()
	//lint:ignore SA1019 CLUSTER SHARDS also lists failed nodes and gives no master-first order
	return cl.ClusterSlots(context.Background()).Result()
}
