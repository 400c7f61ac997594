package testredis

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterReadyTimeout bounds how long a fresh Cluster may take to reach
// cluster_state:ok on every node.
const clusterReadyTimeout = 30 * time.Second

// Cluster is a Redis Cluster of three masters (no replicas), each a real
// redis-server on a free loopback port, created with
// `redis-cli --cluster create`.
type Cluster struct {
	// Nodes are the three masters.
	Nodes [3]*Server
}

// StartCluster starts three cluster-enabled servers (cluster-node-timeout
// 1000ms), joins them with `redis-cli --cluster create --cluster-yes`
// and waits until every node reports cluster_state:ok and knows all
// three. It fails the test, never skips it, when redis-server or
// redis-cli is missing.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("testredis: redis-cli not found on PATH (%v): %s", err, installHint)
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for i := range c.Nodes {
		c.Nodes[i] = Start(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000")
		args = append(args, c.Nodes[i].Addr())
	}
	args = append(args, "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("testredis: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	waitFor(tb, clusterReadyTimeout, "cluster_state:ok on every node", func() bool {
		for _, n := range c.Nodes {
			info := n.CLI(tb, "CLUSTER", "INFO")
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
	return c
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Client returns a go-redis cluster client on all nodes, closed at
// cleanup.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}
