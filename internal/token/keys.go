package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
)

// MinRSABits is the smallest RSA modulus, in bits, accepted for a
// verification key, whether configured or fetched from a JWKS.
const MinRSABits = 2048

// keyKind is the family of key a signing algorithm needs.
type keyKind int

const (
	kindHMAC keyKind = iota
	kindRSA
	kindECDSA
	kindEd25519
)

func (k keyKind) String() string {
	switch k {
	case kindHMAC:
		return "a secret"
	case kindRSA:
		return "an RSA public key"
	case kindECDSA:
		return "an ECDSA public key"
	case kindEd25519:
		return "an Ed25519 public key"
	}
	return "an unknown key"
}

// algorithm describes a supported JWS signing algorithm.
type algorithm struct {
	kind  keyKind
	curve string // for ECDSA: the required curve name
}

// algorithms are the supported JWS algorithms. "none" is deliberately
// absent.
var algorithms = map[string]algorithm{
	"HS256": {kind: kindHMAC},
	"HS384": {kind: kindHMAC},
	"HS512": {kind: kindHMAC},
	"RS256": {kind: kindRSA},
	"RS384": {kind: kindRSA},
	"RS512": {kind: kindRSA},
	"PS256": {kind: kindRSA},
	"PS384": {kind: kindRSA},
	"PS512": {kind: kindRSA},
	"ES256": {kind: kindECDSA, curve: "P-256"},
	"ES384": {kind: kindECDSA, curve: "P-384"},
	"ES512": {kind: kindECDSA, curve: "P-521"},
	"EdDSA": {kind: kindEd25519},
}

// accepts reports whether key can verify signatures made with a: an RSA key
// for RS*/PS*, an ECDSA key on the matching curve for ES*, an Ed25519 key
// for EdDSA. No public key is ever accepted for HS*.
func (a algorithm) accepts(key crypto.PublicKey) bool {
	switch a.kind {
	case kindRSA:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case kindECDSA:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve != nil && k.Curve.Params().Name == a.curve
	case kindEd25519:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// checkPublicKey validates key and returns it in the form used for
// verification.
func checkPublicKey(key crypto.PublicKey) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, errors.New("empty RSA public key")
		}
		if bits := k.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("RSA public key has %d bits, want at least %d", bits, MinRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, errors.New("RSA public key has an invalid exponent")
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return nil, errors.New("empty ECDSA public key")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("ECDSA public key on unsupported curve %s", k.Curve.Params().Name)
		}
		return k, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 public key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return k, nil
	case *ed25519.PublicKey:
		if k == nil {
			return nil, errors.New("empty ed25519 public key")
		}
		return checkPublicKey(*k)
	}
	return nil, fmt.Errorf("unsupported public key type %T", key)
}
