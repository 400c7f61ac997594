package caddymodule

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

	// TLS enables TLS to Redis with the system roots.
	TLS bool `json:"tls,omitempty"`

	// KeyPrefix starts every key. Default "sg".
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout bounds every store operation, network included. Default
	// 100ms (go-redis's own 5s defaults are far too long for a request
	// path).
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// PoolSize is the number of connections per node. Default: go-redis's
	// (10 per CPU).
	PoolSize int `json:"pool_size,omitempty"`
}

func (sc *StoreConfig) validate() error {
	switch sc.Type {
	case StoreMemory:
		if len(sc.Addresses) > 0 || sc.MasterName != "" || sc.Password != "" || sc.Username != "" || sc.TLS || sc.DB != 0 || sc.Cluster {
			return errors.New("redis settings given for the memory store")
		}
	case StoreRedis:
		if sc.DB != 0 && (sc.Cluster || (len(sc.Addresses) > 1 && sc.MasterName == "")) {
			return errors.New("db is not supported by Redis Cluster")
		}
		if sc.Timeout < 0 {
			return errors.New("timeout must not be negative")
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
}

// Destruct closes the Redis client when its last config is unloaded.
func (p *pooledStore) Destruct() error {
	if p.client != nil {
		return p.client.Close()
	}
	return nil
}

// redisSettings is what identifies one pooled client.
type redisSettings struct {
	Addrs      []string `json:"a"`
	MasterName string   `json:"m"`
	Cluster    bool     `json:"c"`
	Username   string   `json:"u"`
	Password   string   `json:"p"`
	DB         int      `json:"d"`
	TLS        bool     `json:"t"`
	Timeout    int64    `json:"o"`
	PoolSize   int      `json:"s"`
}

// acquire returns the store, taking it from the pool or creating it,
// and the pool key to release in Cleanup. No network I/O happens here.
func (sc *StoreConfig) acquire(ctx caddy.Context, now func() time.Time, fixed bool) (store.Store, string, error) {
	if sc.Type == "" {
		sc.Type = StoreMemory
	}
	switch sc.Type {
	case StoreMemory:
		const key = "memory"
		v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
			var clock func() time.Time
			if fixed {
				clock = now
			}
			return &pooledStore{store: store.NewMemory(clock)}, nil
		})
		if err != nil {
			return nil, "", err
		}
		return v.(*pooledStore).store, key, nil
	case StoreRedis:
	default:
		return nil, "", fmt.Errorf("unknown store type %q", sc.Type)
	}
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
	if len(set.Addrs) == 0 {
		set.Addrs = []string{"127.0.0.1:6379"}
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw)
	key := "redis:" + hex.EncodeToString(sum[:])
	v, _, err := storePool.LoadOrNew(key, func() (caddy.Destructor, error) {
		return &pooledStore{client: newRedisClient(set)}, nil
	})
	if err != nil {
		return nil, "", err
	}
	ps := v.(*pooledStore)
	opts := store.RedisOptions{KeyPrefix: sc.KeyPrefix, Timeout: time.Duration(sc.Timeout)}
	if fixed {
		opts.Now = now
	}
	return store.NewRedis(ps.client, opts), key, nil
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
		ClientName:            "sessionguard",
		DialTimeout:           max(timeout*5, 250*time.Millisecond),
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		PoolSize:              s.PoolSize,
		DisableIdentity:       true,
	}
	if s.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(opts)
}
