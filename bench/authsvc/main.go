// Command authsvc is the reference auth service of the load benchmark: a
// minimal service for Caddy's forward_auth that does what a typical
// session service does per request, and nothing more: one HS256 JWT
// verification and one Redis script (EVALSHA) that checks the session is
// not revoked and records its activity. It answers 200 with identity
// headers, or 401.
//
//	authsvc -listen 127.0.0.1:9000 -redis 127.0.0.1:6379 -secret <32+ bytes>
//
// It exists only to give the benchmark a fair baseline; it is not a
// product and does not implement sessionguard's policy.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// touch checks that the session is not revoked, records the last-seen
// time and renews the key's TTL, in one round trip.
var touch = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'revoked') then return 0 end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	addr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	secret := flag.String("secret", "", "HS256 secret (at least 32 bytes)")
	flag.Parse()
	if len(*secret) < 32 {
		log.Fatal("authsvc: -secret must be at least 32 bytes")
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:            *addr,
		ReadTimeout:     100 * time.Millisecond,
		WriteTimeout:    100 * time.Millisecond,
		PoolTimeout:     100 * time.Millisecond,
		DisableIdentity: true,
	})
	defer rdb.Close()
	key := []byte(*secret)
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	keyfunc := func(*jwt.Token) (any, error) { return key, nil }
	idle := strconv.FormatInt((time.Hour).Milliseconds(), 10)

	http.HandleFunc("/verify", func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		claims := jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(raw, claims, keyfunc); err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		sid, _ := claims["sid"].(string)
		acct, _ := claims["acct"].(string)
		sub, _ := claims["sub"].(string)
		if sid == "" || sub == "" {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 100*time.Millisecond)
		defer cancel()
		k := "auth:{" + acct + "}:" + sid
		n, err := touch.Run(ctx, rdb, []string{k}, time.Now().Unix(), idle).Int()
		if err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		if n != 1 {
			http.Error(w, "revoked", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Session-User", sub)
		w.Header().Set("Session-Account", acct)
		w.WriteHeader(http.StatusOK)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
