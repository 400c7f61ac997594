package testredis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSentinelFailover(t *testing.T) {
	t0 := time.Now()
	s := StartSentinel(t)
	t.Logf("sentinel set ready in %v", time.Since(t0))
	first := s.MasterAddr(t)
	if first != s.Nodes[0].Addr() {
		t.Fatalf("master %s, want the first node %s", first, s.Nodes[0].Addr())
	}
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through sentinel: %v", err)
	}
	if err := c.Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatalf("WAIT: %v", err)
	}
	t1 := time.Now()
	second := s.Failover(t)
	t.Logf("failover in %v", time.Since(t1))
	if second != s.Nodes[1].Addr() {
		t.Fatalf("new master %s, want the replica %s", second, s.Nodes[1].Addr())
	}
	if !strings.Contains(s.Master(t).CLI(t, "INFO", "replication"), "role:master") {
		t.Fatal("Master() is not role:master")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := c.Get(ctx, "k").Result()
		if err == nil {
			if v != "v" {
				t.Fatalf("GET after failover = %q", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	cc := c.Client(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		if err := cc.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	for _, n := range c.Nodes {
		if n.CLI(t, "DBSIZE") == "0" {
			t.Fatalf("node %s holds no key: the slots are not spread", n.Addr())
		}
	}
	// Every bus port is below the ephemeral range (32768-), where the
	// default port + 10000 lands, often held by TIME_WAIT sockets.
	for _, n := range c.Nodes {
		cl := n.Client(t)
		v, err := cl.ConfigGet(ctx, "cluster-port").Result()
		if err != nil {
			t.Fatal(err)
		}
		if bus, err := strconv.Atoi(v["cluster-port"]); err != nil || bus == 0 || bus >= 32768 {
			t.Fatalf("node %s: cluster bus port %q, want one below 32768", n.Addr(), v["cluster-port"])
		}
	}
}

// TestClusterReplicaPromotion kills the master of a key's slot: its
// replica is promoted and still has the key written before the kill.
func TestClusterReplicaPromotion(t *testing.T) {
	t0 := time.Now()
	c := StartCluster(t, WithReplicas())
	t.Logf("cluster with replicas ready in %v", time.Since(t0))
	if len(c.Replicas) != 3 {
		t.Fatalf("%d replicas, want 3", len(c.Replicas))
	}
	cc := c.Client(t)
	ctx := context.Background()
	slot := c.Slot(t, "{k}")
	master, replica := c.MasterOf(t, slot), c.ReplicaOf(t, slot)
	if master == replica {
		t.Fatal("the slot's master is its own replica")
	}
	if err := cc.Set(ctx, "{k}", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	WaitReplicated(t, master, []*Server{replica}, 5*time.Second)
	master.Stop(t)
	t1 := time.Now()
	promoted := c.WaitPromoted(t, slot, master, 20*time.Second)
	t.Logf("replica promoted in %v", time.Since(t1))
	if promoted != replica {
		t.Fatalf("promoted %s, want the replica %s", promoted.Addr(), replica.Addr())
	}
	waitFor(t, 10*time.Second, "GET through the cluster client", func() bool {
		v, err := cc.Get(ctx, "{k}").Result()
		return err == nil && v == "v"
	})
}
