package testredis

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSServerName is a DNS name, besides "localhost" and the IP address
// 127.0.0.1, that the server certificates of NewTLSCerts are valid for.
// It resolves nowhere: it serves to test a configured server name.
const TLSServerName = "redis.sessionguard.test"

// TLSCerts are the PEM files of a throwaway certificate authority and a
// server certificate it signed, valid for 127.0.0.1, localhost and
// TLSServerName for one day.
type TLSCerts struct {
	// CAFile holds the CA certificate.
	CAFile string
	// CertFile and KeyFile hold the server certificate and its key.
	CertFile, KeyFile string

	pool *x509.CertPool
}

// NewTLSCerts generates a fresh CA and a server certificate in a
// t.TempDir() directory. Two calls give two unrelated CAs, so one
// call's CAFile does not verify the other's server.
func NewTLSCerts(tb testing.TB) *TLSCerts {
	tb.Helper()
	c, err := newTLSCerts(tb.TempDir())
	if err != nil {
		tb.Fatalf("testredis: generating TLS certificates: %v", err)
	}
	return c
}

// ClientConfig returns a client TLS configuration trusting only the CA.
func (c *TLSCerts) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.pool, MinVersion: tls.VersionTLS12}
}

// StartTLS is Start for a server that speaks TLS only: it listens with
// --tls-port on the free port and --port 0, with the certificates of a
// fresh NewTLSCerts and --tls-auth-clients no (no client certificate).
// Addr, Client and CLI work as with Start, over TLS; TLS returns the
// certificates.
//
// It fails the test, never skips it, when redis-server was built
// without TLS support (it then refuses --tls-port at startup).
func StartTLS(tb testing.TB, extraArgs ...string) *Server {
	tb.Helper()
	return startServer(tb, NewTLSCerts(tb), extraArgs)
}

// TLS returns the server's certificates, nil when it was not started by
// StartTLS.
func (s *Server) TLS() *TLSCerts { return s.tls }

func (s *Server) tlsConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.ClientConfig()
}

// tlsHint explains a startup failure of a TLS server when redis-server
// was built without TLS: it then refuses --tls-port with a bad-directive
// message that does not say so.
func tlsHint(err error) error {
	if msg := err.Error(); strings.Contains(msg, "tls-port") && strings.Contains(msg, "Bad directive") {
		return fmt.Errorf("redis-server does not support TLS (it needs a build with BUILD_TLS=yes, "+
			"as Debian's redis-server package is): %w", err)
	}
	return err
}

func newTLSCerts(dir string) (*TLSCerts, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testredis CA " + now.Format(time.RFC3339Nano)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", TLSServerName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &TLSCerts{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server.key"),
		pool:     x509.NewCertPool(),
	}
	c.pool.AddCert(ca)
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{c.CAFile, "CERTIFICATE", caDER, 0o644},
		{c.CertFile, "CERTIFICATE", der, 0o644},
		{c.KeyFile, "PRIVATE KEY", keyDER, 0o600},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return nil, err
		}
	}
	return c, nil
}
