package caddymodule

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessionguard/sessionguard/internal/store"
)

// Store types.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// StoreConfig says where sessions live.
type StoreConfig struct {
	// Type is "memory" (default) or "redis".
	Type string `json:"type,omitempty"`

	// Addresses of Redis (host:port). One address: a single node; several:
	// a Cluster's seed nodes; with MasterName: Sentinel addresses. Default
	// ["127.0.0.1:6379"]. Placeholders such as {env.REDIS_ADDR} are
	// replaced.
	Addresses []string `json:"addresses,omitempty"`

	// MasterName selects Sentinel: the name of the monitored master.
	MasterName string `json:"master_name,omitempty"`

	// Cluster forces Cluster mode with a single seed address.
	Cluster bool `json:"cluster,omitempty"`

	// Username and Password for Redis ACL auth; placeholders are replaced
	// (e.g. {env.REDIS_PASSWORD}).
	Username string `json:"username,omitempty"`
	// Password: see Username.
	Password string `json:"password,omitempty"`

	// DB is the database number (single node and Sentinel only). Default 0.
	DB int `json:"db,omitempty"`

	// TLS enables TLS to Redis. The server certificate is verified
	// against the system roots, or TLSCAFile, for the address's host, or
	// TLSServerName.
	TLS bool `json:"tls,omitempty"`

	// TLSCAFile is a PEM file of the CA certificates that Redis's server
	// certificate must chain to, instead of the system roots. Requires
	// TLS. Default: none (system roots). Placeholders are replaced. It is
	// read when the config is loaded; a reload reads it again.
	TLSCAFile string `json:"tls_ca_file,omitempty"`

	// TLSServerName is the name the server certificate must be valid
	// for. Requires TLS. Default: the host of each address (for Sentinel
	// and Cluster, of each node).
	TLSServerName string `json:"tls_server_name,omitempty"`

	// KeyPrefix starts every key. Default "sg".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout bounds every store operation, network included. Default
	// 100ms (go-redis's own 5s defaults are far too long for a request
	// path).
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// PoolSize is the number of connections per node. Default: go-redis's
	// (10 per CPU).
	PoolSize int `json:"pool_size,omitempty"`

	// RevokeReplicas is how many Redis replicas must have acknowledged a
	// revocation (Redis WAIT) before it answers 2xx; when fewer do in
	// time, it answers 503. Default: 1 once the master a revocation runs
	// on has reported a connected replica (INFO replication), 0 as long
	// as none has. 0 turns the wait off.
	RevokeReplicas *int `json:"revoke_replicas,omitempty"`

	// RevokeReplicasTimeout bounds the wait for the replicas. Default:
	// Timeout. A revocation may take Timeout plus this.
	RevokeReplicasTimeout caddy.Duration `json:"revoke_replicas_timeout,omitempty"`

	// DisableCache turns the gateway's session cache off: every request
	// goes to Redis. Revocations made by this gateway still reach the
	// caches of the others. Default: the cache is on (store.Cached).
	DisableCache bool `json:"disable_cache,omitempty"`
}

func (sc *StoreConfig) validate() error {
	switch sc.Type {
	case StoreMemory:
		if len(sc.Addresses) > 0 || sc.MasterName != "" || sc.Password != "" || sc.Username != "" || sc.TLS || sc.DB != 0 || sc.Cluster ||
			sc.TLSCAFile != "" || sc.TLSServerName != "" || sc.DisableCache || sc.RevokeReplicas != nil || sc.RevokeReplicasTimeout != 0 {
			return errors.New("redis settings given for the memory store")
		}
	case StoreRedis:
		if sc.MasterName != "" && sc.Cluster {
			return errors.New("master_name (Sentinel) and cluster exclude each other")
		}
		if sc.DB != 0 && (sc.Cluster || (len(sc.Addresses) > 1 && sc.MasterName == "")) {
			return errors.New("db is not supported by Redis Cluster")
		}
		if !sc.TLS && (sc.TLSCAFile != "" || sc.TLSServerName != "") {
			return errors.New("tls_ca_file and tls_server_name require tls")
		}
		if sc.Timeout < 0 || sc.RevokeReplicasTimeout < 0 {
			return errors.New("timeout and revoke_replicas_timeout must not be negative")
		}
		if sc.RevokeReplicas != nil && *sc.RevokeReplicas < 0 {
			return errors.New("revoke_replicas must not be negative")
		}
		for _, a := range sc.Addresses {
			if a == "" {
				return errors.New("empty redis address")
			}
		}
	default:
		return fmt.Errorf("unknown store type %q: must be memory or redis", sc.Type)
	}
	return nil
}

// storePool shares stores across config reloads: one memory store per
// process, one Redis client per set of connection settings. The key of a
// Redis entry is a hash of its settings, never a user-chosen name alone.
var storePool = caddy.NewUsagePool()

type pooledStore struct {
	store  store.Store
	client redis.UniversalClient // nil for memory
	// bg is the session cache's client for its lease and subscription
	// (store.CacheOptions.Background); nil for memory
	bg redis.UniversalClient
	// closeDelay is how long Destruct leaves the client open at least.
	closeDelay time.Duration

	inflight  atomic.Int64 // requests of any config using the client
	closing   atomic.Bool  // closeDelay has passed since Destruct
	closeOnce sync.Once
}

// maxCloseWait bounds how long an unloaded client waits for requests
// still using it (a stuck or streaming request must not keep it open
// for ever).
const maxCloseWait = 5 * time.Minute

// hold and release bracket a request that may use the client; see
// Destruct.
func (p *pooledStore) hold() { p.inflight.Add(1) }

func (p *pooledStore) release() {
	if p.inflight.Add(-1) == 0 && p.closing.Load() {
		p.close()
	}
}

func (p *pooledStore) close() {
	p.closeOnce.Do(func() {
		_ = p.client.Close()
		_ = p.bg.Close()
	})
}

// Destruct closes the Redis client when its last config is unloaded,
// once the requests still using it are done. On a reload Caddy cleans
// up the old config as soon as the old server has stopped accepting
// connections, without waiting for the requests it is still serving;
// closed at once, the client made those requests fail closed with
// "redis: client is closed" (6 of 772 in TestReloadUnderLoad with
// changed store settings). In opaque mode a request uses the store
// again after the upstream answered (bind, unbind), however long that
// took. So the client stays open at least closeDelay (a request may not
// have been counted yet) and then until no request holds it, at most
// maxCloseWait.
func (p *pooledStore) Destruct() error {
	if p.client == nil {
		return nil
	}
	if p.closeDelay <= 0 {
		p.close()
		return nil
	}
	time.AfterFunc(p.closeDelay, func() {
		p.closing.Store(true)
		if p.inflight.Load() == 0 {
			p.close()
		}
	})
	time.AfterFunc(maxCloseWait, p.close)
	return nil
}

// redisCloseDelay is how long an unloaded Redis client stays open for
// the old config's requests in flight: 1s plus two store timeouts.
func redisCloseDelay(timeout time.Duration) time.Duration { return time.Second + 2*timeout }

// redisSettings is what identifies one pooled client.
type redisSettings struct {
	Addrs      []string `json:"a"`
	MasterName string   `json:"m"`
	Cluster    bool     `json:"c"`
	Username   string   `json:"u"`
	Password   string   `json:"p"`
	DB         int      `json:"d"`
	TLS        bool     `json:"t"`
	TLSCA      []byte   `json:"ca"` // PEM content, so that a changed file makes a new client
	TLSName    string   `json:"sn"`
	Timeout    int64    `json:"o"`
	PoolSize   int      `json:"s"`
	// Name is the client name Redis lists (CLIENT LIST); default
	// "sessionguard". Not part of the pool key.
	Name string `json:"-"`
}

// acquire returns the store, taking it from the pool or creating it,
// and the pool key to release in Cleanup. No network I/O happens here.
func (sc *StoreConfig) acquire(ctx caddy.Context, clock func() time.Time) (store.Store, string, *pooledStore, error) {
	if sc.Type == "" {
		sc.Type = StoreMemory
	}
	switch sc.Type {
	case StoreMemory:
		const key = "memory"
		v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
			return &pooledStore{store: store.NewMemory(clock)}, nil
		})
		if err != nil {
			return nil, "", nil, err
		}
		return v.(*pooledStore).store, key, nil, nil
	case StoreRedis:
	default:
		return nil, "", nil, fmt.Errorf("unknown store type %q", sc.Type)
	}
	set, err := sc.redisSettings()
	if err != nil {
		return nil, "", nil, err
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, "", nil, err
	}
	sum := sha256.Sum256(raw)
	key := "redis:" + hex.EncodeToString(sum[:])
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		bg := set
		bg.PoolSize = 4 // a subscription, a renewal, acknowledgements
		bg.Name = "sessionguard-cache"
		return &pooledStore{client: newRedisClient(set), bg: newRedisClient(bg), closeDelay: redisCloseDelay(time.Duration(set.Timeout))}, nil
	})
	if err != nil {
		return nil, "", nil, err
	}
	ps := v.(*pooledStore)
	opts := store.RedisOptions{KeyPrefix: sc.KeyPrefix, Timeout: time.Duration(sc.Timeout), Now: clock,
		RevokeReplicas: sc.RevokeReplicas, RevokeReplicasTimeout: time.Duration(sc.RevokeReplicasTimeout)}
	size := store.DefaultCacheSize
	if sc.DisableCache {
		size = 0
	}
	cached, err := store.NewCached(store.NewRedis(ps.client, opts), store.CacheOptions{Size: size, Background: ps.bg})
	if err != nil {
		return nil, "", nil, err
	}
	return cached, key, ps, nil
}

// redisSettings sets the Redis defaults and returns the connection
// settings, placeholders replaced and the CA file read.
func (sc *StoreConfig) redisSettings() (redisSettings, error) {
	repl := caddy.NewReplacer()
	if sc.Timeout == 0 {
		sc.Timeout = caddy.Duration(100 * time.Millisecond)
	}
	if sc.KeyPrefix == "" {
		sc.KeyPrefix = "sg"
	}
	set := redisSettings{
		MasterName: repl.ReplaceAll(sc.MasterName, ""),
		Cluster:    sc.Cluster,
		Username:   repl.ReplaceAll(sc.Username, ""),
		Password:   repl.ReplaceAll(sc.Password, ""),
		DB:         sc.DB,
		TLS:        sc.TLS,
		Timeout:    int64(sc.Timeout),
		PoolSize:   sc.PoolSize,
	}
	for _, a := range sc.Addresses {
		set.Addrs = append(set.Addrs, strings.TrimSpace(repl.ReplaceAll(a, "")))
	}
	if sc.TLS {
		set.TLSName = repl.ReplaceAll(sc.TLSServerName, "")
		if f := repl.ReplaceAll(sc.TLSCAFile, ""); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return redisSettings{}, fmt.Errorf("tls_ca_file: %w", err)
			}
			if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				return redisSettings{}, fmt.Errorf("tls_ca_file %s: no PEM certificate found", f)
			}
			set.TLSCA = pem
		}
	}
	if len(set.Addrs) == 0 {
		set.Addrs = []string{"127.0.0.1:6379"}
	}
	return set, nil
}

func newRedisClient(s redisSettings) redis.UniversalClient {
	timeout := time.Duration(s.Timeout)
	opts := &redis.UniversalOptions{
		Addrs:                 s.Addrs,
		MasterName:            s.MasterName,
		IsClusterMode:         s.Cluster,
		Username:              s.Username,
		Password:              s.Password,
		DB:                    s.DB,
		ClientName:            cmp.Or(s.Name, "sessionguard"),
		DialTimeout:           max(timeout*5, 250*time.Millisecond),
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		PoolSize:              s.PoolSize,
		PipelinePoolSize:      -1, // pipelines share the pool: pool_size is every connection per node
		DisableIdentity:       true,
	}
	if s.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSName}
		if s.TLSCA != nil {
			opts.TLSConfig.RootCAs = x509.NewCertPool()
			opts.TLSConfig.RootCAs.AppendCertsFromPEM(s.TLSCA)
		}
	}
	if s.MasterName == "" && (s.Cluster || len(s.Addrs) > 1) {
		// go-redis reloads the slot map on MOVED, which a killed master
		// never sends: with its default 60s interval, the slots of a
		// failed master stay routed to it for up to a minute after its
		// replica was promoted (TestClusterFailoverUnderLoad).
		co := opts.Cluster()
		co.ClusterStateReloadInterval = clusterStateReloadInterval
		return redis.NewClusterClient(co)
	}
	return redis.NewUniversalClient(opts)
}

// clusterStateReloadInterval is how old go-redis's Cluster slot map may
// get before a request triggers a reload in the background (one CLUSTER
// SLOTS); it bounds the time to follow a failover.
const clusterStateReloadInterval = time.Second
