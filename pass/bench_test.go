package pass

import (
	"crypto/ed25519"
	"testing"
	"time"
)

func benchVerify(b *testing.B, rootAlg, issuerAlg Alg, checkSig bool) {
	f := newFixture(b, rootAlg, issuerAlg)
	text := mustSign(b, f.signer, sampleClaims(Phone))
	v := f.verifier()
	if _, err := v.Verify(text, testNow, time.Minute); err != nil { // certificate now cached
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.verify(text, testNow, time.Minute, checkSig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEdDSA is the steady state of a checker: certificate
// cached, one Ed25519 verification per pass.
func BenchmarkVerifyEdDSA(b *testing.B) { benchVerify(b, AlgEdDSA, AlgEdDSA, true) }

// BenchmarkVerifyES256 is the same with an ES256 issuer key.
func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, AlgEdDSA, AlgES256, true) }

// BenchmarkDecodeNoSignature is everything Verify does except the pass
// signature: Base45, zlib, COSE and claims decoding, certificate cache.
func BenchmarkDecodeNoSignature(b *testing.B) { benchVerify(b, AlgEdDSA, AlgEdDSA, false) }

// BenchmarkVerifyUncachedCert verifies with a fresh Verifier each time:
// two signature verifications, what the cache saves.
func BenchmarkVerifyUncachedCert(b *testing.B) {
	f := newFixture(b, AlgEdDSA, AlgEdDSA)
	text := mustSign(b, f.signer, sampleClaims(Phone))
	roots := []Root{{testDistrict, f.root.Public()}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewVerifier(roots).Verify(text, testNow, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyParallel runs the cached EdDSA path on all cores.
func BenchmarkVerifyParallel(b *testing.B) {
	f := newFixture(b, AlgEdDSA, AlgEdDSA)
	text := mustSign(b, f.signer, sampleClaims(Phone))
	v := f.verifier()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(text, testNow, time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b, AlgEdDSA, AlgEdDSA)
	c := sampleClaims(Phone)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.signer.Sign(&c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorEd25519 is crypto/ed25519.Verify alone over a pass's
// Sig_structure: the floor for BenchmarkVerifyEdDSA, measured in the same
// run (this machine's speed varies with its load).
func BenchmarkFloorEd25519(b *testing.B) {
	f := newFixture(b, AlgEdDSA, AlgEdDSA)
	m, err := decodeSign1(unwrapText(b, mustSign(b, f.signer, sampleClaims(Phone))), true)
	if err != nil {
		b.Fatal(err)
	}
	tbs := appendSigStructure(nil, m.protected, m.payload)
	pub := ed25519.PublicKey(f.issuer.Public().Raw)
	for b.Loop() {
		if !ed25519.Verify(pub, tbs, m.sig) {
			b.Fatal("does not verify")
		}
	}
}
