// Package resilience holds sessionguard's process-level suites: many
// gateways, Redis Sentinel and Cluster, injected faults and hostile
// input. Every test runs against real processes (redis-server,
// sentinels, Caddy) on loopback ports and is bounded in requests and
// time. The package has no non-test code besides this comment.
package resilience
