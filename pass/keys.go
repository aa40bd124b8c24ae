package pass

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
)

// Alg is a COSE algorithm identifier (RFC 9053).
type Alg int

// Supported algorithms. Passes are signed with EdDSA by default; ES256 is
// accepted when verifying (and may be used for signing).
const (
	AlgEdDSA Alg = -8
	AlgES256 Alg = -7
)

// String returns "EdDSA" or "ES256", or alg(unknown) otherwise.
func (a Alg) String() string {
	switch a {
	case AlgEdDSA:
		return "EdDSA"
	case AlgES256:
		return "ES256"
	}
	return "alg(unknown)"
}

// supported reports whether a is one of the two algorithms of the format.
func (a Alg) supported() bool { return a == AlgEdDSA || a == AlgES256 }

// Raw public key and signature sizes.
const (
	ed25519RawLen = ed25519.PublicKeySize // 32
	p256RawLen    = 33                    // compressed SEC1 point
	sigLen        = 64                    // Ed25519 signature, or ES256 r||s
)

// PublicKey is a verification key. Raw is 32 bytes for Ed25519 and the
// 33-byte compressed SEC1 point for P-256.
type PublicKey struct {
	Alg Alg
	Raw []byte
	KID KeyID

	ed ed25519.PublicKey // set when Alg is EdDSA
	ec *ecdsa.PublicKey  // set when Alg is ES256
}

// ErrBadKey is wrapped by every ParsePublicKey error: the bytes are not a
// key anyone can hold the private half of, or not in the one encoding the
// format allows.
var ErrBadKey = errors.New("public key refused")

// ParsePublicKey checks raw for alg and returns the key with its KeyID.
// It is the one place a public key is made from bytes, so every key that
// arrives from outside (roots, certificates, trust lists, enrolment,
// bundles) gets the same checks:
//
//   - Ed25519: 32 bytes, the canonical encoding of a point on the curve
//     (y < p, no sign bit on x = 0), and not of small order (the eight
//     torsion points, the identity among them, verify signatures made
//     without any private key).
//   - P-256: 33 bytes, a compressed point (02/03 ‖ X) on the curve; the
//     point at infinity has no compressed form and is refused.
//
// raw is copied. Errors wrap ErrBadKey.
func ParsePublicKey(alg Alg, raw []byte) (*PublicKey, error) {
	k := &PublicKey{Alg: alg, Raw: append([]byte(nil), raw...)}
	switch alg {
	case AlgEdDSA:
		if len(raw) != ed25519RawLen {
			return nil, fmt.Errorf("pass: %w: Ed25519 public key is %d bytes, want %d", ErrBadKey, len(raw), ed25519RawLen)
		}
		if err := checkEd25519Point(k.Raw); err != nil {
			return nil, err
		}
		k.ed = ed25519.PublicKey(k.Raw)
	case AlgES256:
		if len(raw) != p256RawLen {
			return nil, fmt.Errorf("pass: %w: P-256 public key is %d bytes, want %d (compressed point)", ErrBadKey, len(raw), p256RawLen)
		}
		// UnmarshalCompressed rejects other prefixes, x >= p and points
		// that are not on the curve.
		x, y := elliptic.UnmarshalCompressed(elliptic.P256(), raw)
		if x == nil {
			return nil, fmt.Errorf("pass: %w: P-256 public key is not a point on the curve", ErrBadKey)
		}
		var u [65]byte
		u[0] = 4
		x.FillBytes(u[1:33])
		y.FillBytes(u[33:])
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), u[:])
		if err != nil {
			return nil, fmt.Errorf("pass: %w: P-256 public key: %v", ErrBadKey, err)
		}
		k.ec = pk
	default:
		return nil, fmt.Errorf("pass: %w: %w: %d", ErrBadKey, ErrUnsupportedAlg, int(alg))
	}
	k.KID = keyID(alg, k.Raw)
	return k, nil
}

// checkEd25519Point refuses an Ed25519 public key that is not the
// canonical encoding of a point of large order. The edwards25519 decoder
// accepts non-canonical encodings, so canonicity is checked by encoding
// the point again; the cofactor check catches every small-order point
// whatever its encoding.
func checkEd25519Point(raw []byte) error {
	p, err := new(edwards25519.Point).SetBytes(raw)
	if err != nil {
		return fmt.Errorf("pass: %w: Ed25519 public key is not a point on the curve", ErrBadKey)
	}
	if !bytes.Equal(p.Bytes(), raw) {
		return fmt.Errorf("pass: %w: Ed25519 public key is not canonically encoded", ErrBadKey)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return fmt.Errorf("pass: %w: Ed25519 public key is a point of small order", ErrBadKey)
	}
	return nil
}

// keyID is SHA-256 over the CBOR array [alg, raw public key], truncated
// to 8 bytes. Hashing the algorithm too means the same bytes under another
// algorithm can never share an id. The encoding is written out by hand; it
// is the deterministic CBOR encoding (a test checks it against the
// library encoder).
func keyID(alg Alg, raw []byte) KeyID {
	sum := (&PublicKey{Alg: alg, Raw: raw}).Fingerprint()
	var id KeyID
	copy(id[:], sum[:])
	return id
}

// Fingerprint is SHA-256 over the KeyID input (the CBOR array [alg, raw
// public key]): the whole hash of which the KeyID is the first 8 bytes,
// long enough for people to compare a key read out over a telephone.
func (k *PublicKey) Fingerprint() [sha256.Size]byte {
	var buf [2 + 9 + 2 + p256RawLen]byte
	b := append(buf[:0], 0x82)
	b = appendInt(b, int64(k.Alg))
	b = appendBytes(b, k.Raw)
	return sha256.Sum256(b)
}

// Verify reports whether sig is a valid signature of msg. For ES256 sig is
// the 64-byte r||s form of COSE (not ASN.1) and msg is hashed with SHA-256.
func (k *PublicKey) Verify(msg, sig []byte) bool {
	if k == nil || len(sig) != sigLen {
		return false
	}
	switch k.Alg {
	case AlgEdDSA:
		if k.ed == nil {
			return false
		}
		return ed25519.Verify(k.ed, msg, sig)
	case AlgES256:
		if k.ec == nil {
			return false
		}
		h := sha256.Sum256(msg)
		var der [72]byte
		return ecdsa.VerifyASN1(k.ec, h[:], rawToASN1(der[:0], sig))
	}
	return false
}

// rawToASN1 converts a 64-byte r||s signature to the DER SEQUENCE of two
// INTEGERs that crypto/ecdsa verifies. Leading zeros are stripped and a
// zero byte is prepended when the high bit is set, as DER requires. Zero
// values produce an INTEGER 0, which ecdsa rejects.
func rawToASN1(dst, sig []byte) []byte {
	r, s := derInt(sig[:32]), derInt(sig[32:])
	dst = append(dst, 0x30, byte(4+len(r)+len(s)+btoi(r[0]&0x80 != 0)+btoi(s[0]&0x80 != 0)))
	for _, v := range [2][]byte{r, s} {
		if v[0]&0x80 != 0 {
			dst = append(dst, 0x02, byte(len(v)+1), 0)
		} else {
			dst = append(dst, 0x02, byte(len(v)))
		}
		dst = append(dst, v...)
	}
	return dst
}

func derInt(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	return v
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PrivateKey is a signing key.
type PrivateKey struct {
	alg Alg
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
	pub *PublicKey
}

// GenerateKey makes a new key for alg from rand (crypto/rand.Reader in
// production, a fixed reader in tests).
//
// The key is a pure function of the bytes read, so a fixed reader gives a
// fixed key: Ed25519 reads a 32-byte seed; ES256 reads 32-byte candidates
// for the scalar and takes the first in [1, n-1] (rejection sampling, so
// the scalar stays uniform). crypto/ecdsa.GenerateKey cannot be used for
// this: since Go 1.26 it ignores the reader.
func GenerateKey(alg Alg, rand io.Reader) (*PrivateKey, error) {
	var seed [32]byte
	switch alg {
	case AlgEdDSA:
		if _, err := io.ReadFull(rand, seed[:]); err != nil {
			return nil, fmt.Errorf("pass: generate key: %w", err)
		}
		return newPrivateKey(alg, seed[:])
	case AlgES256:
		// A candidate is out of range with probability < 2^-32; the bound
		// only stops a broken reader from looping forever.
		for range 64 {
			if _, err := io.ReadFull(rand, seed[:]); err != nil {
				return nil, fmt.Errorf("pass: generate key: %w", err)
			}
			if k, err := newPrivateKey(alg, seed[:]); err == nil {
				return k, nil
			}
		}
		return nil, errors.New("pass: generate key: reader gives no valid P-256 scalar")
	}
	return nil, fmt.Errorf("pass: generate key: %w: %d", ErrUnsupportedAlg, int(alg))
}

// newPrivateKey builds a key from an Ed25519 seed or a P-256 scalar.
func newPrivateKey(alg Alg, secret []byte) (*PrivateKey, error) {
	k := &PrivateKey{alg: alg}
	var raw []byte
	switch alg {
	case AlgEdDSA:
		if len(secret) != ed25519.SeedSize {
			return nil, errors.New("pass: Ed25519 seed must be 32 bytes")
		}
		k.ed = ed25519.NewKeyFromSeed(secret)
		raw = k.ed.Public().(ed25519.PublicKey)
	case AlgES256:
		ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), secret)
		if err != nil {
			return nil, fmt.Errorf("pass: P-256 scalar: %w", err)
		}
		k.ec = ec
		u, err := ec.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, fmt.Errorf("pass: P-256 public key: %w", err)
		}
		raw = compressP256(u)
	default:
		return nil, fmt.Errorf("pass: %w: %d", ErrUnsupportedAlg, int(alg))
	}
	pub, err := ParsePublicKey(alg, raw)
	if err != nil {
		return nil, err
	}
	k.pub = pub
	return k, nil
}

// compressP256 turns an uncompressed SEC1 point into the compressed form.
func compressP256(u []byte) []byte {
	c := make([]byte, p256RawLen)
	c[0] = 2 | u[64]&1
	copy(c[1:], u[1:33])
	return c
}

// Public returns the verification key. It is shared: do not modify it.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// sign signs msg: Ed25519 over msg, or ES256 over SHA-256(msg) in r||s form.
func (k *PrivateKey) sign(msg []byte) ([]byte, error) {
	switch k.alg {
	case AlgEdDSA:
		return ed25519.Sign(k.ed, msg), nil
	case AlgES256:
		h := sha256.Sum256(msg)
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, h[:])
		if err != nil {
			return nil, fmt.Errorf("pass: sign: %w", err)
		}
		sig := make([]byte, sigLen)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	}
	return nil, fmt.Errorf("pass: sign: %w", ErrUnsupportedAlg)
}

// Private key encoding: one tag byte, then the 32-byte secret.
const (
	privTagEd25519 = 0x01 // followed by the Ed25519 seed (RFC 8032)
	privTagP256    = 0x02 // followed by the big-endian P-256 scalar
	privLen        = 1 + 32
)

// MarshalBinary encodes the private key (algorithm and seed/scalar) for
// storage: 33 bytes, a tag byte (0x01 Ed25519 seed, 0x02 P-256 scalar)
// followed by the 32-byte secret. The encoding holds the secret in clear;
// protect it at rest.
func (k *PrivateKey) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, privLen)
	switch k.alg {
	case AlgEdDSA:
		b = append(b, privTagEd25519)
		b = append(b, k.ed.Seed()...)
	case AlgES256:
		sc, err := k.ec.Bytes()
		if err != nil {
			return nil, fmt.Errorf("pass: marshal key: %w", err)
		}
		b = append(b, privTagP256)
		b = append(b, sc...)
	default:
		return nil, errors.New("pass: marshal key: empty key")
	}
	return b, nil
}

// ParsePrivateKey decodes what MarshalBinary produced.
func ParsePrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != privLen {
		return nil, fmt.Errorf("pass: private key is %d bytes, want %d", len(b), privLen)
	}
	switch b[0] {
	case privTagEd25519:
		return newPrivateKey(AlgEdDSA, b[1:])
	case privTagP256:
		return newPrivateKey(AlgES256, b[1:])
	}
	return nil, fmt.Errorf("pass: unknown private key tag 0x%02x", b[0])
}
