package pass

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
)

func TestGenerateKeyDeterministic(t *testing.T) {
	t.Parallel()
	for _, alg := range []Alg{AlgEdDSA, AlgES256} {
		a := mustKey(t, alg, "same")
		b := mustKey(t, alg, "same")
		c := mustKey(t, alg, "other")
		if !bytes.Equal(a.Public().Raw, b.Public().Raw) || a.Public().KID != b.Public().KID {
			t.Errorf("%v: same reader gave different keys", alg)
		}
		if bytes.Equal(a.Public().Raw, c.Public().Raw) {
			t.Errorf("%v: different readers gave the same key", alg)
		}
		want := map[Alg]int{AlgEdDSA: 32, AlgES256: 33}[alg]
		if len(a.Public().Raw) != want {
			t.Errorf("%v: raw public key is %d bytes, want %d", alg, len(a.Public().Raw), want)
		}
	}
	// Ed25519 keys are exactly NewKeyFromSeed of the 32 bytes read.
	seed := bytes.Repeat([]byte{0x01}, 32)
	k, err := GenerateKey(AlgEdDSA, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey); !bytes.Equal(k.Public().Raw, want) {
		t.Error("Ed25519 key is not NewKeyFromSeed(read bytes)")
	}
	// ES256 skips scalars out of range: an all-0xff candidate (> n) is
	// followed by a valid one.
	k, err = GenerateKey(AlgES256, bytes.NewReader(append(bytes.Repeat([]byte{0xff}, 32), seed...)))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := k.MarshalBinary(); !bytes.Equal(b[1:], seed) {
		t.Errorf("ES256 scalar = %x, want the second candidate", b[1:])
	}
	if _, err := GenerateKey(AlgES256, bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("short reader accepted")
	}
	if _, err := GenerateKey(Alg(-257), bytes.NewReader(seed)); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("alg -257: err = %v", err)
	}
}

func TestPrivateKeyEncoding(t *testing.T) {
	t.Parallel()
	for _, alg := range []Alg{AlgEdDSA, AlgES256} {
		k := mustKey(t, alg, "enc")
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 33 {
			t.Fatalf("%v: encoding is %d bytes", alg, len(b))
		}
		k2, err := ParsePrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if k2.Public().KID != k.Public().KID {
			t.Errorf("%v: round trip changed the key", alg)
		}
		msg := []byte("message")
		sig, err := k2.sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 64 || !k.Public().Verify(msg, sig) {
			t.Errorf("%v: signature of parsed key does not verify", alg)
		}
	}
	for _, b := range [][]byte{nil, {0x01}, append([]byte{0x03}, make([]byte, 32)...), append([]byte{0x02}, make([]byte, 32)...) /* zero scalar */, append([]byte{0x01}, make([]byte, 33)...)} {
		if _, err := ParsePrivateKey(b); err == nil {
			t.Errorf("ParsePrivateKey(%x) accepted", b)
		}
	}
}

func TestParsePublicKey(t *testing.T) {
	t.Parallel()
	ec := mustKey(t, AlgES256, "pub").Public()
	notOnCurve := bytes.Clone(ec.Raw)
	for i := 0; ; i++ { // find an x with no point
		notOnCurve[32] = byte(i)
		if x, _ := elliptic.UnmarshalCompressed(elliptic.P256(), notOnCurve); x == nil {
			break
		}
	}
	for _, tc := range []struct {
		name string
		alg  Alg
		raw  []byte
		ok   bool
	}{
		{"Ed25519", AlgEdDSA, mustKey(t, AlgEdDSA, "pub").Public().Raw, true},
		{"Ed25519 zero (small order)", AlgEdDSA, make([]byte, 32), false},
		{"Ed25519 short", AlgEdDSA, make([]byte, 31), false},
		{"P-256", AlgES256, ec.Raw, true},
		{"P-256 uncompressed prefix", AlgES256, append([]byte{0x04}, ec.Raw[1:]...), false},
		{"P-256 32 bytes", AlgES256, ec.Raw[:32], false},
		{"P-256 not on curve", AlgES256, notOnCurve, false},
		{"P-256 x >= p", AlgES256, append([]byte{0x02}, bytes.Repeat([]byte{0xff}, 32)...), false},
		{"unsupported alg", Alg(-35), ec.Raw, false},
	} {
		k, err := ParsePublicKey(tc.alg, tc.raw)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if err == nil && k.KID != keyID(tc.alg, tc.raw) {
			t.Errorf("%s: KID not set", tc.name)
		}
	}
}

// TestKeyID checks the hand-written KeyID input against the library's
// deterministic encoding of [alg, raw].
func TestKeyID(t *testing.T) {
	t.Parallel()
	for _, alg := range []Alg{AlgEdDSA, AlgES256} {
		k := mustKey(t, alg, "kid").Public()
		enc, err := encMode.Marshal([]any{int(alg), k.Raw})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(enc)
		if !bytes.Equal(k.KID[:], sum[:8]) {
			t.Errorf("%v: KID %x, want %x", alg, k.KID, sum[:8])
		}
	}
	// The same bytes under another alg get another id.
	raw := make([]byte, 33)
	if keyID(AlgEdDSA, raw) == keyID(AlgES256, raw) {
		t.Error("KeyID ignores the algorithm")
	}
}

// TestES256RawSignature checks r||s handling against crypto/ecdsa's ASN.1
// form, including values with leading zero bytes and the high bit set.
func TestES256RawSignature(t *testing.T) {
	t.Parallel()
	k := mustKey(t, AlgES256, "es256")
	pub := k.Public()
	msg := []byte("Sig_structure bytes")
	h := sha256.Sum256(msg)
	seenShort, seenHigh := false, false
	for i := range 400 {
		der, err := ecdsa.SignASN1(nil, k.ec, h[:])
		if err != nil {
			t.Fatal(err)
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 64)
		rs.R.FillBytes(raw[:32])
		rs.S.FillBytes(raw[32:])
		seenShort = seenShort || raw[0] == 0 || raw[32] == 0
		seenHigh = seenHigh || raw[0]&0x80 != 0
		if !pub.Verify(msg, raw) {
			t.Fatalf("signature %d (%x) does not verify", i, raw)
		}
		if got := rawToASN1(nil, raw); !bytes.Equal(got, der) {
			t.Fatalf("rawToASN1 = %x, want %x", got, der)
		}
		if pub.Verify(append([]byte("x"), msg...), raw) {
			t.Fatal("signature verifies another message")
		}
	}
	if !seenShort || !seenHigh {
		t.Logf("edge cases seen: leading zero %v, high bit %v", seenShort, seenHigh)
	}
	if pub.Verify(msg, make([]byte, 64)) {
		t.Error("zero signature verifies")
	}
	if pub.Verify(msg, make([]byte, 63)) {
		t.Error("63-byte signature verifies")
	}
}
