package pass

import (
	"bytes"
	"crypto/ecdh"
	"crypto/elliptic"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"

	"filippo.io/edwards25519"
)

// ed25519SmallOrder are the canonical encodings of the eight points of
// order dividing 8 (libsodium's blacklist, canonical part).
var ed25519SmallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0000000000000000000000000000000000000000000000000000000000000080", // order 4
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
}

// ed25519NonCanonical are encodings that decode to a point but are not the
// point's encoding: y >= p, or the sign bit set on x = 0.
var ed25519NonCanonical = []string{
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p (≡ 0)
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1 (≡ 1, the identity)
	"0100000000000000000000000000000000000000000000000000000000000080", // identity, sign bit set
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = -1, sign bit set
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// le32 is v as 32 bytes little-endian.
func le32(v *big.Int) []byte {
	b := v.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// hostileEd25519 builds the table of refused Ed25519 keys, the fixed ones
// and those found by search (a large-order point with y < 19 written as
// y + p, an encoding not on the curve).
func hostileEd25519(t testing.TB) map[string][]byte {
	t.Helper()
	bad := map[string][]byte{}
	for i, s := range ed25519SmallOrder {
		bad["small order "+string(rune('0'+i))] = mustHex(t, s)
	}
	for i, s := range ed25519NonCanonical {
		bad["non-canonical "+string(rune('0'+i))] = mustHex(t, s)
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	var foundHigh, foundOff bool
	for v := int64(0); v < 19; v++ {
		enc := le32(new(big.Int).Add(p, big.NewInt(v)))
		pt, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil {
			if !foundOff {
				bad["y not on the curve (y = p+"+big.NewInt(v).String()+")"] = enc
				foundOff = true
			}
			continue
		}
		if new(edwards25519.Point).MultByCofactor(pt).Equal(edwards25519.NewIdentityPoint()) == 0 && !foundHigh {
			bad["large order, y = p+"+big.NewInt(v).String()] = enc
			foundHigh = true
		}
	}
	for v := int64(2); !foundOff; v++ {
		enc := le32(big.NewInt(v))
		if _, err := new(edwards25519.Point).SetBytes(enc); err != nil {
			bad["not on the curve, y = "+big.NewInt(v).String()] = enc
			foundOff = true
		}
	}
	if !foundHigh {
		t.Fatal("no large-order point with y < 19: the table lost a case")
	}
	bad["short"] = make([]byte, 31)
	bad["long"] = make([]byte, 33)
	bad["empty"] = nil
	return bad
}

// uncompressedP256 is the SEC 1 uncompressed encoding 04 || x || y.
func uncompressedP256(x, y *big.Int) []byte {
	enc := append([]byte{4}, x.FillBytes(make([]byte, 32))...)
	return append(enc, y.FillBytes(make([]byte, 32))...)
}

// hostileP256 builds the table of refused P-256 keys.
func hostileP256(t testing.TB) map[string][]byte {
	t.Helper()
	curve := elliptic.P256().Params()
	bad := map[string][]byte{
		"infinity (SEC1 00)":     {0},
		"33 zero bytes":          make([]byte, 33),
		"prefix 04, 33 bytes":    append([]byte{4}, make([]byte, 32)...),
		"prefix 05":              append([]byte{5}, bytes.Repeat([]byte{1}, 32)...),
		"x = p":                  append([]byte{2}, curve.P.FillBytes(make([]byte, 32))...),
		"x all ones":             append([]byte{3}, bytes.Repeat([]byte{0xff}, 32)...),
		"uncompressed generator": uncompressedP256(curve.Gx, curve.Gy),
		"short":                  {2, 1, 2, 3},
	}
	// An x whose x³ - 3x + b is not a square: no point has it.
	for x := int64(1); ; x++ {
		enc := append([]byte{2}, big.NewInt(x).FillBytes(make([]byte, 32))...)
		if px, _ := elliptic.UnmarshalCompressed(elliptic.P256(), enc); px == nil {
			bad["off the curve, x = "+big.NewInt(x).String()] = enc
			break
		}
	}
	return bad
}

func TestParsePublicKeyRefusesHostileKeys(t *testing.T) {
	t.Parallel()
	for alg, table := range map[Alg]map[string][]byte{AlgEdDSA: hostileEd25519(t), AlgES256: hostileP256(t)} {
		for name, raw := range table {
			if _, err := ParsePublicKey(alg, raw); !errors.Is(err, ErrBadKey) {
				t.Errorf("%v %s (%x): err = %v, want ErrBadKey", alg, name, raw, err)
			}
		}
	}
	if _, err := ParsePublicKey(Alg(-257), make([]byte, 32)); !errors.Is(err, ErrBadKey) || !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("unknown alg: err = %v", err)
	}
	// Real keys still parse.
	for _, alg := range []Alg{AlgEdDSA, AlgES256} {
		for _, seed := range []string{"a", "b", "c"} {
			k := mustKey(t, alg, seed)
			if _, err := ParsePublicKey(alg, k.Public().Raw); err != nil {
				t.Errorf("%v key %s refused: %v", alg, seed, err)
			}
		}
	}
}

// A small-order issuer key signs passes without a private key: the
// identity point "verifies" the signature (R = identity, s = 0) under
// plain Ed25519 rules. A certificate carrying it must not parse.
func TestCertWithSmallOrderKeyRefused(t *testing.T) {
	t.Parallel()
	root := mustKey(t, AlgEdDSA, "root")
	ident := &PublicKey{Alg: AlgEdDSA, Raw: mustHex(t, ed25519SmallOrder[0])}
	if _, err := IssueCert(root, Cert{Key: ident, District: "310115", Appliance: "a1",
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour)}); !errors.Is(err, ErrBadKey) {
		t.Errorf("IssueCert with the identity point: err = %v", err)
	}
}

func FuzzParsePublicKey(f *testing.F) {
	for _, table := range []map[string][]byte{hostileEd25519(f), hostileP256(f)} {
		for _, raw := range table {
			f.Add(int8(AlgEdDSA), raw)
			f.Add(int8(AlgES256), raw)
		}
	}
	f.Add(int8(AlgEdDSA), mustKey(f, AlgEdDSA, "f").Public().Raw)
	f.Add(int8(AlgES256), mustKey(f, AlgES256, "f").Public().Raw)
	f.Fuzz(func(t *testing.T, alg int8, raw []byte) {
		k, err := ParsePublicKey(Alg(alg), raw)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error does not wrap ErrBadKey: %v", err)
			}
			return
		}
		if !bytes.Equal(k.Raw, raw) || k.KID != keyID(k.Alg, raw) {
			t.Fatal("accepted key is not the input")
		}
		switch k.Alg {
		case AlgEdDSA:
			p, err := new(edwards25519.Point).SetBytes(raw)
			if err != nil || !bytes.Equal(p.Bytes(), raw) {
				t.Fatalf("accepted a non-canonical Ed25519 key %x", raw)
			}
			if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
				t.Fatalf("accepted a small-order Ed25519 key %x", raw)
			}
		case AlgES256:
			x, y := elliptic.UnmarshalCompressed(elliptic.P256(), raw)
			if x == nil {
				t.Fatalf("accepted an off-curve P-256 key %x", raw)
			}
			// crypto/ecdh checks the point is on the curve, independently of
			// the decoder under test.
			if _, err := ecdh.P256().NewPublicKey(uncompressedP256(x, y)); err != nil {
				t.Fatalf("accepted an off-curve P-256 key %x", raw)
			}
		default:
			t.Fatalf("accepted alg %d", alg)
		}
	})
}
