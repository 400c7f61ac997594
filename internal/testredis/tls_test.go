package testredis

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestTLS starts a TLS-only server: clients trusting its CA work, plain
// TCP and clients trusting another CA are refused, Restart keeps TLS.
func TestTLS(t *testing.T) {
	s := StartTLS(t)
	if s.TLS() == nil {
		t.Fatal("TLS() is nil")
	}
	if got := s.CLI(t, "PING"); got != "PONG" {
		t.Fatalf("CLI PING over TLS = %q", got)
	}
	if got := s.CLI(t, "CONFIG", "GET", "port"); !strings.Contains(got, "port") || !strings.Contains(got, " 0") && !strings.Contains(got, ":0") {
		t.Fatalf("CONFIG GET port = %s, want 0 (TLS only)", got)
	}
	ctx := context.Background()
	if err := s.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}

	plain := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer plain.Close()
	if err := ping(plain); err == nil {
		t.Fatal("PING over plain TCP succeeded on a TLS-only server")
	}
	other := NewTLSCerts(t)
	wrong := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: other.ClientConfig(), MaxRetries: -1})
	defer wrong.Close()
	err := ping(wrong)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("PING trusting another CA: err = %v, want a certificate error", err)
	}
	named := s.TLS().ClientConfig()
	named.ServerName = TLSServerName
	byName := redis.NewClient(&redis.Options{Addr: s.Addr(), TLSConfig: named})
	defer byName.Close()
	if err := ping(byName); err != nil {
		t.Fatalf("PING with server name %s: %v", TLSServerName, err)
	}

	s.Restart(t)
	if err := s.Client(t).Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET over TLS after Restart: err = %v, want redis.Nil", err)
	}
}
